"""Schema changes are ``playhouse.migrations`` scripts in ``migrations/``."""
import os

from playhouse.migrations import Runner

from extensions import db

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
