"""Schema changes are ``playhouse.migrations`` scripts in ``migrations/``."""
import os

import click
from flask.cli import with_appcontext
from playhouse.migrations import Runner

from models.base import db

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def migration_runner():
    return Runner(db.obj, directory=MIGRATIONS_DIR)


def migrate():
    """Apply pending migrations; returns the names applied."""
    with db.connection_context():
        return migration_runner().up()


def pending_migrations():
    with db.connection_context():
        return [m.name for m in migration_runner().status() if m.path and not m.applied]


def migrations_check():
    """Readiness: every migration in ``migrations/`` is applied to the
    database in use (on the request's connection)."""
    pending = [m.name for m in migration_runner().status() if m.path and not m.applied]
    return f"not applied: {', '.join(pending)}" if pending else None


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply pending schema migrations."""
    applied = migrate()
    click.echo("applied: " + ", ".join(applied) if applied else "nothing to apply")
