"""``flask --app app <command>``: operations that are not HTTP routes.
The commands live with what they operate on; ``create_app`` hands them to
``register``. The task consumer's command lives here."""
import click
from flask.cli import with_appcontext


@click.command("worker")
@with_appcontext
@click.option("--workers", default=2, show_default=True, help="Worker threads.")
def worker_command(workers):
    """Run the task consumer in the foreground (periodic tasks included)."""
    from flask import current_app

    from core import logs
    from core.worker import huey

    logs.configure(current_app.config["LOG_FORMAT"])

    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()


def register(app, commands):
    """Add ``commands`` (click commands) to ``flask --app app``."""
    for command in commands:
        app.cli.add_command(command)
