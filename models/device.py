"""Devices, their report history, push tokens and locations."""
import uuid

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    Tuple,
    UUIDField,
    fn,
)

from models.account import User
from models.base import BaseModel, utcnow

PLATFORMS = ("android", "ios", "harmonyos", "web")

# The device details kept only while ``device_info`` is in effect (policy
# §1.2(3); docs/architecture.md), with their column lengths: the one list every use derives from.
GATED_DEVICE_COLUMNS = {"model": 64, "manufacturer": 64, "os_name": 64, "os_version": 64, "carrier": 64,
                        "resolution": 16, "locale": 35, "timezone": 64}
GATED_DEVICE_FIELDS = tuple(GATED_DEVICE_COLUMNS)

# The phone's own permission switches, as the OS reports them, with their
# values. Not device details: they are what honouring the user's choices on
# this device needs (``consent.os_permissions``), kept without ``device_info``.
OS_PERMISSIONS = {
    "notifications": ("authorized", "provisional", "denied", "not_determined"),
    "location": ("none", "approximate", "precise"),
    "tracking": ("authorized", "denied", "restricted", "not_determined"),  # iOS App Tracking Transparency
}
OS_PERMISSION_COLUMNS = {name: f"os_{name}" for name in OS_PERMISSIONS}


def _add_gated_columns(model):
    for name, length in GATED_DEVICE_COLUMNS.items():
        model._meta.add_field(name, CharField(max_length=length, null=True))


class Device(BaseModel):
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    user = ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    installation_id = CharField(max_length=128)
    platform = CharField(max_length=16)
    app_version = CharField(max_length=32)
    app_version_num = BigIntegerField(default=0)  # sortable form of app_version, for audience filters
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow, index=True)
    os_notifications = CharField(max_length=16, null=True)  # OS_PERMISSIONS; null: never reported
    os_location = CharField(max_length=16, null=True)
    os_tracking = CharField(max_length=16, null=True)

    class Meta:
        table_name = "device"
        indexes = ((("user", "installation_id"), True),)

    @staticmethod
    def version_number(text):
        """"3.12.0" -> 3_0012_0000_0000: dotted versions compare as numbers."""
        parts = [min(int(part), 9999) for part in str(text).split(".")[:4] if part.isdigit()]
        parts += [0] * (4 - len(parts))
        return ((parts[0] * 10000 + parts[1]) * 10000 + parts[2]) * 10000 + parts[3]

    @classmethod
    def for_user(cls, user):
        return cls.select().where(cls.user == user).order_by(cls.created_at, cls.id)

    @classmethod
    def owned(cls, user, device_id):
        """The user's device, or None: another user's device is as absent as a missing one."""
        return cls.get_or_none((cls.id == device_id) & (cls.user == user))

    @property
    def os_permissions(self):
        """``{notifications, location, tracking}`` as last reported (None where never)."""
        return {name: getattr(self, column) for name, column in OS_PERMISSION_COLUMNS.items()}

    @classmethod
    def blank_gated_fields(cls, user):
        return cls.update({getattr(cls, name): None for name in GATED_DEVICE_FIELDS}).where(cls.user == user).execute()


class DeviceReport(BaseModel):
    """A snapshot of a device's details, kept as history for the user's export."""

    id = BigAutoField()
    device = ForeignKeyField(Device, backref="reports", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="device_reports", on_delete="CASCADE")
    app_version = CharField(max_length=32, null=True)
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "device_report"
        indexes = ((("user", "id"), False),)


_add_gated_columns(Device)
_add_gated_columns(DeviceReport)


class PushToken(BaseModel):
    """A device's push token. One row per device and per token: a token
    registered again by another device row moves there."""

    id = BigAutoField()
    device = ForeignKeyField(Device, backref="push_tokens", on_delete="CASCADE", unique=True)
    token = CharField(max_length=4096, unique=True)
    provider = CharField(max_length=16, default="fcm")
    notifications_enabled = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "push_token"

    @classmethod
    def holder(cls, token):
        """The device row holding ``token`` (with its installation id), or None."""
        return (Device.select(Device.id, Device.installation_id).join(cls, on=(cls.device == Device.id))
                .where(cls.token == token).first())

    @classmethod
    def delete_for_user(cls, user):
        devices = Device.select(Device.id).where(Device.user == user)
        return cls.delete().where(cls.device.in_(devices)).execute()


class Location(BaseModel):
    id = BigAutoField()
    device = ForeignKeyField(Device, backref="locations", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="locations", on_delete="CASCADE")
    latitude = DoubleField()
    longitude = DoubleField()
    geohash = CharField(max_length=5, index=True)
    precision = CharField(max_length=12)  # approximate | precise
    accuracy_m = DoubleField(null=True)
    captured_at = DateTimeField(index=True)
    received_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "location"
        indexes = ((("device", "captured_at"), True), (("user", "id"), False), (("user", "captured_at", "id"), False))

    @classmethod
    def newest_first(cls, user, after=None, limit=50):
        """A page of the user's locations by capture time, newest first, ties
        by id: stable while points arrive out of order (an offline queue
        uploads old fixes late). Returns (rows, key of the last row if more follow)."""
        query = cls.select().where(cls.user == user)
        if after is not None:
            captured_at, key = after
            query = query.where(Tuple(cls.captured_at, cls.id) < Tuple(cls.captured_at.db_value(captured_at), key))
        rows = list(query.order_by(cls.captured_at.desc(), cls.id.desc()).limit(limit + 1))
        if len(rows) > limit:
            rows = rows[:limit]
            return rows, (rows[-1].captured_at, rows[-1].id)
        return rows, None

    @classmethod
    def delete_for_user(cls, user):
        return cls.delete().where(cls.user == user).execute()

    @classmethod
    def precise_cells(cls, user):
        query = cls.select(fn.DISTINCT(cls.geohash)).where((cls.user == user) & (cls.precision == "precise"))
        return [row.geohash for row in query]
