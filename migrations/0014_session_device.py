"""``auth_session.device`` and ``auth_session.address``: what ``GET
/v1/me/sessions`` shows of a login so that the user can tell sessions
apart: the device (as the app named it, or the cleaned start of the
User-Agent) and the client's network (/24 or /48), never the whole address.
Sessions opened before have neither."""
from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("auth_session", "device", CharField(max_length=64, null=True)),
        migrator.add_column("auth_session", "address", CharField(max_length=45, null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("auth_session", "address"),
        migrator.drop_column("auth_session", "device"),
    )
