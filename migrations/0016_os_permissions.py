"""The phone's own permission switches on each device (notifications,
location accuracy, iOS tracking), so that consent is narrowed to what the
OS grants; null until the app reports them."""
from peewee import CharField

COLUMNS = ("os_notifications", "os_location", "os_tracking")


def up(migrator, db):
    migrator.migrate(*[migrator.add_column("device", name, CharField(max_length=16, null=True)) for name in COLUMNS])


def down(migrator, db):
    migrator.migrate(*[migrator.drop_column("device", name) for name in COLUMNS])
