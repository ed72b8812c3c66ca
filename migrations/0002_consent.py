"""Consent engine: policy versions, consent state, guardian consents, the ledger,
and the first policy version."""
import datetime
import uuid

from peewee import (
    BigAutoField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField, UUIDField,
)

PERMISSIONS = ("device_info", "location", "precise_location", "service_push", "marketing_push",
               "personalization", "partner_sharing", "usage_statistics")

FIRST_POLICY = """Sample policy, version 1.

We keep the details of your phone, your location and your notification
choices only for the purposes you allow in the app's permission settings.
Each permission can be turned off at any time, and turning one off removes
or rounds the data it covered. Location is kept to about 5 km unless you
allow precise location. Statistics count devices only in groups large enough
that nobody can be picked out. Users under 18 need the written consent of a
parent or guardian. You can download or delete everything we hold about you
from the app.
"""


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "user"

    class PolicyVersion(Model):
        version = CharField(max_length=32, unique=True)
        text = TextField()
        published_at = DateTimeField()
        published_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

        class Meta:
            database = db
            table_name = "policy_version"

    class PolicyChange(Model):
        policy = ForeignKeyField(PolicyVersion, on_delete="CASCADE")
        permission = CharField(max_length=32)

        class Meta:
            database = db
            table_name = "policy_change"
            indexes = ((("permission", "policy"), True),)

    class Consent(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        permission = CharField(max_length=32)
        granted = BooleanField()
        policy = ForeignKeyField(PolicyVersion, on_delete="RESTRICT")
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "consent"
            indexes = ((("user", "permission"), True),)

    class GuardianConsent(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        user = ForeignKeyField(User, on_delete="CASCADE")
        guardian_name = CharField(max_length=120)
        relationship = CharField(max_length=60)
        evidence_ref = CharField(max_length=200)
        recorded_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
        recorded_at = DateTimeField()
        revoked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "guardian_consent"

    class LedgerEntry(Model):
        id = BigAutoField()
        subject = UUIDField()
        seq = IntegerField()
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        permission = CharField(max_length=32)
        granted = BooleanField()
        policy_version = CharField(max_length=32)
        source = CharField(max_length=20)
        reason = CharField(max_length=40, null=True)
        device_id = UUIDField(null=True)
        ip = CharField(max_length=64, null=True)
        user_agent = CharField(max_length=256, null=True)
        pii_salt = CharField(max_length=64, null=True)
        pii_digest = CharField(max_length=64)
        created_at = DateTimeField()
        prev_hash = CharField(max_length=64)
        hash = CharField(max_length=64)

        class Meta:
            database = db
            table_name = "ledger_entry"
            indexes = ((("subject", "seq"), True), (("user", "id"), False))

    db.create_tables([PolicyVersion, PolicyChange, Consent, GuardianConsent, LedgerEntry])
    first = PolicyVersion.create(version="1", text=FIRST_POLICY,
                                 published_at=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))
    for permission in PERMISSIONS:
        PolicyChange.create(policy=first, permission=permission)


def down(migrator, db):
    for table in ("ledger_entry", "guardian_consent", "consent", "policy_change", "policy_version"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
