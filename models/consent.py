"""Consent state, policy versions, guardian consents and the append-only ledger."""
import uuid

from peewee import (
    JOIN,
    BigAutoField,
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    UUIDField,
    fn,
)

from models.account import User
from models.base import BaseModel, utcnow


# The permissions the schema has columns for (``consent_summary`` holds three
# per key; migrations add them). ``consent.catalogue`` describes each one and
# refuses to load if its keys differ from these.
KEYS = ("device_info", "location", "precise_location", "service_push", "marketing_push", "personalization",
        "partner_sharing", "usage_statistics")


class PolicyVersion(BaseModel):
    """A published privacy policy; ``id`` orders versions."""

    version = CharField(max_length=32, unique=True)
    text = TextField()
    published_at = DateTimeField(default=utcnow)
    published_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        table_name = "policy_version"

    @classmethod
    def current(cls):
        return cls.select().order_by(cls.id.desc()).first()

    @classmethod
    def history(cls):
        """Every published version, newest first, with who published it."""
        publisher = User.alias()
        return (cls.select(cls, publisher.email.alias("publisher_email"))
                .join(publisher, JOIN.LEFT_OUTER, on=(cls.published_by == publisher.id))
                .order_by(cls.id.desc()).objects())

    def changed_permissions(self):
        return [c.permission for c in self.changes.order_by(PolicyChange.permission)]


class PolicyChange(BaseModel):
    """A permission that a policy version changed materially: grants made
    under an earlier version are stale from then on."""

    policy = ForeignKeyField(PolicyVersion, backref="changes", on_delete="CASCADE")
    permission = CharField(max_length=32)

    class Meta:
        table_name = "policy_change"
        indexes = ((("permission", "policy"), True),)


class Consent(BaseModel):
    """The user's current choice for one permission (the ledger has the history)."""

    user = ForeignKeyField(User, backref="consents", on_delete="CASCADE")
    permission = CharField(max_length=32)
    granted = BooleanField()
    policy = ForeignKeyField(PolicyVersion, on_delete="RESTRICT")
    updated_at = DateTimeField(default=utcnow)
    # Granted while a rule refused it (consent.REFUSING_REASONS): never valid
    # consent, so it stays out of effect until the user grants again.
    refused = BooleanField(default=False)

    class Meta:
        table_name = "consent"
        indexes = ((("user", "permission"), True),)

    @classmethod
    def chosen_at(cls, user_ids, permission):
        """``{user id: updated_at}`` of these users' current choice of ``permission``."""
        query = (cls.select(cls.user, cls.updated_at)
                 .where(cls.user.in_(list(user_ids)) & (cls.permission == permission)))
        return {user_id: updated_at for user_id, updated_at in query.tuples()}


class ConsentSummary(BaseModel):
    """``consent`` pivoted: one row per user who chose anything, with each
    permission's ``<key>_granted``, ``<key>_policy`` and ``<key>_refused`` side by side, so that
    an audience of a million users joins one row per user rather than one
    ``consent`` row per permission (four joins were most of a preview's time).
    Never written on its own: ``refresh`` rebuilds a user's row from
    ``consent`` in the transaction that changed it."""

    user = ForeignKeyField(User, primary_key=True, on_delete="CASCADE", backref="+")

    class Meta:
        table_name = "consent_summary"

    @classmethod
    def granted(cls, key):
        return getattr(cls, f"{key}_granted")

    @classmethod
    def policy(cls, key):
        return getattr(cls, f"{key}_policy")

    @classmethod
    def refused(cls, key):
        return getattr(cls, f"{key}_refused")

    @classmethod
    def pivot(cls):
        """``consent`` grouped by user into the summary's columns."""
        columns = [Consent.user]
        for key in KEYS:
            picked = Consent.permission == key
            columns.append(fn.MAX(Case(None, [(picked, Case(None, [(Consent.granted, 1)], 0))])) == 1)
            columns.append(fn.MAX(Case(None, [(picked, Consent.policy)])))
            columns.append(fn.MAX(Case(None, [(picked, Case(None, [(Consent.refused, 1)], 0))])) == 1)
        return Consent.select(*columns).group_by(Consent.user)

    @classmethod
    def refresh(cls, user_ids):
        """Rebuild these users' rows from ``consent`` (the caller holds their locks)."""
        user_ids = list(user_ids)
        cls.delete().where(cls.user.in_(user_ids)).execute()
        cls.insert_from(cls.pivot().where(Consent.user.in_(user_ids)), cls.columns()).execute()

    @classmethod
    def columns(cls):
        return [cls.user, *[field for key in KEYS for field in (cls.granted(key), cls.policy(key), cls.refused(key))]]


for _key in KEYS:
    ConsentSummary._meta.add_field(f"{_key}_granted", BooleanField(null=True))
    ConsentSummary._meta.add_field(f"{_key}_policy", IntegerField(null=True))
    ConsentSummary._meta.add_field(f"{_key}_refused", BooleanField(null=True))


class GuardianConsent(BaseModel):
    """A parent's or guardian's written consent for a minor (policy §7)."""

    id = UUIDField(primary_key=True, default=uuid.uuid4)
    user = ForeignKeyField(User, backref="guardian_consents", on_delete="CASCADE")
    guardian_name = CharField(max_length=120)
    relationship = CharField(max_length=60)
    evidence_ref = CharField(max_length=200)
    recorded_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    recorded_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "guardian_consent"

    @classmethod
    def active_for(cls, user):
        return (
            cls.select()
            .where((cls.user == user) & cls.revoked_at.is_null())
            .order_by(cls.recorded_at.desc())
            .first()
        )


class LedgerEntry(BaseModel):
    """One grant or withdrawal. Rows are only ever inserted; each carries the
    hash of its subject's previous entry. Personal data (IP, user agent,
    device) is kept outside the hashed fields, behind a salted digest, so
    erasure can blank it and the chain still verifies."""

    id = BigAutoField()
    subject = UUIDField()
    seq = IntegerField()
    user = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="ledger")
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
    # At a merge, the hash of the installation's entry this one adopted (hashed with it).
    adopted_from = CharField(max_length=64, null=True)
    created_at = DateTimeField()
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64)

    class Meta:
        table_name = "ledger_entry"
        indexes = ((("subject", "seq"), True), (("user", "id"), False))
