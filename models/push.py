"""Push campaigns, the slices their fan-out walks, and one delivery row per
(campaign, device)."""
import json
import uuid

from peewee import (
    BigAutoField,
    BooleanField,
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
from models.device import Device


class JSONField(TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Campaign(BaseModel):
    DRAFT, SCHEDULED, SENDING, PAUSED, COMPLETED, CANCELLED = (
        "draft", "scheduled", "sending", "paused", "completed", "cancelled")
    STATUSES = (DRAFT, SCHEDULED, SENDING, PAUSED, COMPLETED, CANCELLED)
    KINDS = ("service", "marketing")
    # a notification to one user (POST /notifications) or an audience campaign
    TARGETS = ("user", "audience")

    id = UUIDField(primary_key=True, default=uuid.uuid4)
    name = CharField(max_length=200)
    kind = CharField(max_length=16)
    title = CharField(max_length=200)
    body = TextField()
    data = JSONField(default=dict)
    audience = JSONField(default=dict)
    target_user = ForeignKeyField(User, null=True, on_delete="CASCADE", backref="+")
    status = CharField(max_length=16, default=DRAFT, index=True)
    paused_reason = CharField(max_length=200, null=True)
    send_at = DateTimeField(null=True)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    planned = BooleanField(default=False)
    plan_cursor = UUIDField(null=True)
    plan_lease_until = DateTimeField(null=True)

    class Meta:
        table_name = "campaign"

    @property
    def target(self):
        return "audience" if self.target_user_id is None else "user"

    @classmethod
    def newest(cls, kind=None, status=None, target=None, limit=100):
        """The newest campaigns, one-user notifications included, narrowed
        by whichever of ``kind``, ``status`` and ``target`` are given."""
        query = cls.select()
        if kind is not None:
            query = query.where(cls.kind == kind)
        if status is not None:
            query = query.where(cls.status == status)
        if target is not None:
            query = query.where(cls.target_user.is_null(target == "audience"))
        return query.order_by(cls.created_at.desc(), cls.id).limit(limit)


class CampaignSlice(BaseModel):
    """Devices with ``after < id <= upto`` (by device id), sent by one worker
    at a time: the one holding the lease."""

    PENDING, DONE = "pending", "done"

    id = BigAutoField()
    campaign = ForeignKeyField(Campaign, backref="slices", on_delete="CASCADE")
    after = UUIDField(null=True)
    upto = UUIDField()
    status = CharField(max_length=12, default=PENDING)
    materialized = BooleanField(default=False)
    lease_owner = CharField(max_length=64, null=True)
    lease_until = DateTimeField(null=True)
    runs = IntegerField(default=0)
    queued_at = DateTimeField(null=True)

    class Meta:
        table_name = "campaign_slice"
        indexes = ((("campaign", "status"), False),)

    @classmethod
    def acquire(cls, slice_id, owner, lease_seconds):
        """Take the slice's lease if it is pending and free (or its lease ran out)."""
        from datetime import timedelta

        now = utcnow()
        taken = (
            cls.update(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds), runs=cls.runs + 1)
            .where((cls.id == slice_id) & (cls.status == cls.PENDING)
                   & (cls.lease_until.is_null() | (cls.lease_until < now)))
            .execute()
        )
        return taken == 1

    @classmethod
    def extend(cls, slice_id, owner, lease_seconds):
        from datetime import timedelta

        return cls.update(lease_until=utcnow() + timedelta(seconds=lease_seconds)).where(
            (cls.id == slice_id) & (cls.lease_owner == owner)).execute() == 1

    @classmethod
    def abandon(cls, slice_id, owner):
        """A run that failed gives the slice up at once, for a resume to retry."""
        return cls.update(lease_until=utcnow()).where((cls.id == slice_id) & (cls.lease_owner == owner)).execute()

    @classmethod
    def release(cls, slice_id, owner, done=False):
        values = {cls.lease_until: None}
        if done:
            values[cls.status] = cls.DONE
        return cls.update(values).where((cls.id == slice_id) & (cls.lease_owner == owner)).execute()


class CampaignExclusion(BaseModel):
    """Devices the fan-out found the campaign may not reach, by reason:
    counted, not stored one by one (a filtered campaign over millions of
    devices would otherwise write a row for each)."""

    campaign = ForeignKeyField(Campaign, backref="exclusions", on_delete="CASCADE")
    reason = CharField(max_length=64)
    count = IntegerField(default=0)

    class Meta:
        table_name = "campaign_exclusion"
        indexes = ((("campaign", "reason"), True),)

    @classmethod
    def add(cls, campaign_id, counts):
        # one order for every writer: two slices counting the same reasons
        # in different orders would deadlock
        for reason, count in sorted(counts.items()):
            (cls.insert(campaign=campaign_id, reason=reason, count=count)
             .on_conflict(conflict_target=[cls.campaign, cls.reason], update={cls.count: cls.count + count})
             .execute())

    @classmethod
    def counts(cls, campaign):
        return {row.reason: row.count for row in cls.select().where(cls.campaign == campaign)}


def forget_device_boundaries(device_id, other_devices):
    """Erasure: slice boundaries and plan cursors name devices by id. Replace
    an erased device's id with the id of the nearest device below it (or
    the nil UUID): every slice still covers the same remaining devices."""
    below = (Device.select(Device.id).where((Device.id < device_id) & other_devices)
             .order_by(Device.id.desc()).first())
    replacement = below.id if below else uuid.UUID(int=0)
    CampaignSlice.update(upto=replacement).where(CampaignSlice.upto == device_id).execute()
    CampaignSlice.update(after=replacement).where(CampaignSlice.after == device_id).execute()
    Campaign.update(plan_cursor=replacement).where(Campaign.plan_cursor == device_id).execute()


class Delivery(BaseModel):
    PENDING, CLAIMED, SENT, FAILED, INVALID_TOKEN, SKIPPED, CANCELLED, UNKNOWN = (
        "pending", "claimed", "sent", "failed", "invalid_token", "skipped", "cancelled", "unknown")
    OPEN = (PENDING,)

    id = BigAutoField()
    campaign = ForeignKeyField(Campaign, backref="deliveries", on_delete="CASCADE")
    slice = ForeignKeyField(CampaignSlice, null=True, on_delete="SET NULL", backref="deliveries")
    device = ForeignKeyField(Device, null=True, on_delete="SET NULL", backref="deliveries")
    user = ForeignKeyField(User, backref="deliveries", on_delete="CASCADE")
    status = CharField(max_length=16)
    reason = CharField(max_length=64, null=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(null=True)
    claim_owner = CharField(max_length=64, null=True)
    message_id = CharField(max_length=200, null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "delivery"
        indexes = (
            (("campaign", "device"), True),
            (("slice", "status"), False),
            (("campaign", "status"), False),
            (("user", "status"), False),
        )

    @classmethod
    def counts(cls, campaign):
        query = (cls.select(cls.status, fn.COUNT(cls.id).alias("n"))
                 .where(cls.campaign == campaign).group_by(cls.status))
        return {row.status: row.n for row in query}

    @classmethod
    def reasons(cls, campaign):
        """``{(status, reason): deliveries}`` of ``campaign`` (reason None when none was given)."""
        query = (cls.select(cls.status, cls.reason, fn.COUNT(cls.id).alias("n"))
                 .where(cls.campaign == campaign).group_by(cls.status, cls.reason))
        return {(row.status, row.reason): row.n for row in query}

    @classmethod
    def cancel_open_for_user(cls, user, kind):
        campaigns = Campaign.select(Campaign.id).where(Campaign.kind == kind)
        return (
            cls.update(status=cls.CANCELLED, reason="consent_withdrawn", updated_at=utcnow())
            .where((cls.user == user) & (cls.status.in_(cls.OPEN)) & cls.campaign.in_(campaigns))
            .execute()
        )
