"""The task queue (huey): SQLite storage under ``instance/`` by default,
Redis when ``REDIS_URL`` is set. ``create_app`` binds it; tasks run inside
the app's context with a database connection of their own."""
import os
from contextlib import contextmanager

from flask import current_app, has_app_context
from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from redis import ConnectionPool

import redaction
from extensions import db

QUEUE_READ_TIMEOUT = 1  # seconds a consumer's blocking pop waits for a task
huey = Huey("mobile-backend", storage_class=MemoryStorage, utc=True)
huey.flask_app = None


@huey.on_startup()
def redact_worker_logs():
    """huey_consumer adds its log handler after the app is built."""
    redaction.install()


def configure_worker(app):
    """Point the queue at the app's storage (immediate mode for tests that ask)."""
    if app.config.get("HUEY_IMMEDIATE"):
        huey.storage_class, huey.storage_kwargs = MemoryStorage, {}
        huey._immediate = True
    elif app.config["REDIS_URL"]:
        huey.storage_class, huey.storage_kwargs = RedisStorage, {
            "connection_pool": redis_pool(app.config), "read_timeout": QUEUE_READ_TIMEOUT}
        huey._immediate = False
    else:
        filename = app.config.get("HUEY_SQLITE_FILE") or os.path.join(app.instance_path, "huey.db")
        huey.storage_class, huey.storage_kwargs = SqliteStorage, {"filename": filename}
        huey._immediate = False
    huey.storage = huey.create_storage()
    huey.flask_app = app


def redis_pool(config):
    """The queue's connections, with the app's Redis timeouts; a read also
    waits out the consumer's blocking pop."""
    options = dict(config["REDIS_CLIENT_OPTIONS"])
    options["socket_timeout"] += QUEUE_READ_TIMEOUT
    return ConnectionPool.from_url(config["REDIS_URL"], **options)


@contextmanager
def task_context():
    """App context and a database connection for the length of a task (the
    caller's connection when a task runs inline, in immediate mode)."""
    app = current_app._get_current_object() if has_app_context() else huey.flask_app
    with app.app_context():
        opened = db.is_closed()
        if opened:
            db.connect()
        try:
            yield
        finally:
            if opened and not db.is_closed():
                db.close()
