"""Entry point for ``huey_consumer consumer.huey``: builds the app from the
environment, which binds the database and the queue storage, and registers
every task."""
from app import create_app
from worker import huey  # noqa: F401  (huey_consumer imports it from here)

create_app()
