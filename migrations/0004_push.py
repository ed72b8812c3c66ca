"""Push campaigns, their fan-out slices and deliveries."""
import uuid

from peewee import (
    BigAutoField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField, UUIDField,
)


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "user"

    class Device(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "device"

    class Campaign(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        name = CharField(max_length=200)
        kind = CharField(max_length=16)
        title = CharField(max_length=200)
        body = TextField()
        data = TextField(null=True)
        audience = TextField(null=True)
        target_user = ForeignKeyField(User, null=True, on_delete="CASCADE", backref="+")
        status = CharField(max_length=16, index=True)
        paused_reason = CharField(max_length=200, null=True)
        send_at = DateTimeField(null=True)
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        planned = BooleanField(default=False)
        plan_cursor = UUIDField(null=True)
        plan_lease_until = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "campaign"

    class CampaignSlice(Model):
        id = BigAutoField()
        campaign = ForeignKeyField(Campaign, on_delete="CASCADE")
        after = UUIDField(null=True)
        upto = UUIDField()
        status = CharField(max_length=12)
        materialized = BooleanField(default=False)
        lease_owner = CharField(max_length=64, null=True)
        lease_until = DateTimeField(null=True)
        runs = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "campaign_slice"
            indexes = ((("campaign", "status"), False),)

    class Delivery(Model):
        id = BigAutoField()
        campaign = ForeignKeyField(Campaign, on_delete="CASCADE")
        slice = ForeignKeyField(CampaignSlice, null=True, on_delete="SET NULL")
        device = ForeignKeyField(Device, null=True, on_delete="SET NULL")
        user = ForeignKeyField(User, on_delete="CASCADE")
        status = CharField(max_length=16)
        reason = CharField(max_length=64, null=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(null=True)
        claim_owner = CharField(max_length=64, null=True)
        message_id = CharField(max_length=200, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "delivery"
            indexes = (
                (("campaign", "device"), True),
                (("slice", "status"), False),
                (("campaign", "status"), False),
                (("user", "status"), False),
            )

    db.create_tables([Campaign, CampaignSlice, Delivery])


def down(migrator, db):
    for table in ("delivery", "campaign_slice", "campaign"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
