"""When a slice was last queued, so a slice whose task died unstarted is re-queued."""
from peewee import DateTimeField


def up(migrator, db):
    migrator.migrate(migrator.add_column("campaign_slice", "queued_at", DateTimeField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("campaign_slice", "queued_at"))
