"""Per-campaign counts of devices the fan-out excluded, by reason."""
import uuid

from peewee import CharField, ForeignKeyField, IntegerField, Model, UUIDField


def up(migrator, db):
    class Campaign(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db
            table_name = "campaign"

    class CampaignExclusion(Model):
        campaign = ForeignKeyField(Campaign, on_delete="CASCADE")
        reason = CharField(max_length=64)
        count = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "campaign_exclusion"
            indexes = ((("campaign", "reason"), True),)

    db.create_tables([CampaignExclusion])


def down(migrator, db):
    db.execute_sql("DROP TABLE IF EXISTS campaign_exclusion")
