"""Devices, device snapshots, push tokens and locations (``/v1/devices``)."""
import zoneinfo
from datetime import datetime, timedelta

from flask import current_app, request
from flask_jwt_extended import current_user, get_jwt_identity
from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates

import consent
from blueprints.base import ApiBlueprint, FullMatch, StrictSchema, Unchecked, UtcDateTime, user_row
from collection import devices, locations, tokens
from core.errors import NotFound
from core.openapi import OPTIONAL
from core.schemas import FiniteNumber
from core.extensions import limiter
from models.base import utcnow
from models.device import GATED_DEVICE_COLUMNS, GATED_DEVICE_FIELDS, OS_PERMISSIONS, PLATFORMS, Device, PushToken

blp = ApiBlueprint("devices", __name__, url_prefix="/v1/devices", description="Devices and their reports")
# An account's token or an installation's: the app does before sign-in what
# it does signed in, within the consent of the subject the token stands for.
SUBJECTS = ("account", "installation")

MAX_BATCH = 500
TIMEZONES = frozenset(zoneinfo.available_timezones())
EARLIEST_EVENT = datetime(2000, 1, 1)
FUTURE_TOLERANCE = timedelta(minutes=5)


def _text(limit):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=limit))


# Gated details whose form is checked beyond their length.
_FORMED_DETAILS = {
    "resolution": lambda: fields.String(load_default=None, allow_none=True, validate=FullMatch(
        r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", error="WIDTHxHEIGHT in pixels, e.g. 1080x2400.")),
    "locale": lambda: fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=35), FullMatch(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,4}$", error="A language tag, e.g. zh-CN.")]),
    "timezone": lambda: fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64)),
}

OS_PERMISSION_DESCRIPTIONS = {
    "notifications": "The OS notification permission; denied: the device is not sent pushes "
                     "(os_notifications_off), provisional (iOS quiet delivery) still receives them.",
    "location": "The location access the OS grants; approximate: points are stored as the geohash-5 cell "
                "centre even with precise_location; none: points are refused (os_location_off).",
    "tracking": "iOS App Tracking Transparency; anything but authorized takes partner_sharing out of effect "
                "on an iOS device (os_tracking_off). Ignored on other platforms.",
}


OsPermissionsSchema = StrictSchema.from_dict({
    name: fields.String(load_default=None, allow_none=True, validate=validate.OneOf(values),
                        metadata={"description": OS_PERMISSION_DESCRIPTIONS[name]})
    for name, values in OS_PERMISSIONS.items()
}, name="OsPermissionsSchema")


_Details = StrictSchema.from_dict({
    "app_version": fields.String(required=True, validate=[
        validate.Length(max=32), FullMatch(r"^\d+(\.\d+){0,3}$", error="Dotted numbers, e.g. 3.12.0.")]),
    **{name: _FORMED_DETAILS[name]() if name in _FORMED_DETAILS else _text(GATED_DEVICE_COLUMNS[name])
       for name in GATED_DEVICE_FIELDS},
    "os_permissions": fields.Nested(OsPermissionsSchema, metadata={
        "description": "The phone's own permissions, kept without device_info: they narrow what consent "
                       "allows on this device. Each one reported replaces the stored value."}),
})


class DeviceDetailsSchema(_Details):
    """Details a device reports; all but the app version need ``device_info``."""

    @validates("timezone")
    def known_zone(self, value, **kwargs):
        if value is not None and value not in TIMEZONES:
            raise ValidationError("Not an IANA time zone, e.g. Asia/Shanghai.")


class DeviceRegisterSchema(DeviceDetailsSchema):
    installation_id = fields.String(required=True, validate=FullMatch(
        r"^[A-Za-z0-9_-]{8,128}$", error="8 to 128 characters of A-Z, a-z, 0-9, _ and -."))
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))


class PushStatusSchema(Schema):
    provider = fields.String()
    notifications_enabled = fields.Boolean()
    updated_at = UtcDateTime()


class ReportedSchema(Schema.from_dict({name: fields.String(allow_none=True)
                                      for name in ("app_version", *GATED_DEVICE_FIELDS)})):
    """The details a device reports, as stored (null where not kept)."""


class OsPermissionsStateSchema(Schema):
    notifications = fields.String(allow_none=True, metadata={"description": "null: never reported"})
    location = fields.String(allow_none=True, metadata={"description": "null: never reported"})
    tracking = fields.String(allow_none=True, metadata={"description": "null: never reported"})


class MismatchSchema(Schema):
    permission = fields.String(metadata={"description": "A permission in effect, e.g. precise_location"})
    consent = fields.String(metadata={"description": "The user's choice: granted"})
    os = fields.String(allow_none=True, metadata={"description": "What the phone's permission says, e.g. approximate"})
    effect = fields.String(metadata={"description": "stored as approximate, not stored, not sent or not in effect"})


class DeviceMismatchesSchema(Schema):
    device_id = fields.UUID()
    mismatches = fields.List(fields.Nested(MismatchSchema))


class DeviceSchema(ReportedSchema):
    id = fields.UUID()
    installation_id = fields.String()
    platform = fields.String()
    created_at = UtcDateTime()
    last_seen_at = UtcDateTime()
    push = fields.Nested(PushStatusSchema, allow_none=True, metadata={"description": "Push registration, null if none"})
    os_permissions = fields.Nested(OsPermissionsStateSchema)
    mismatches = fields.List(fields.Nested(MismatchSchema), metadata={
        "description": "Permissions in effect that the phone's own permissions narrow on this device"})

    def get_attribute(self, obj, attr, default):
        if attr == "push":
            return PushToken.get_or_none(PushToken.device == obj.id)
        if attr == "mismatches":
            return consent.device_mismatches(obj)
        return super().get_attribute(obj, attr, default)


class GatedResultSchema(Schema):
    stored = fields.List(fields.String(), metadata={"description": "Fields kept"})
    dropped = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Fields not kept -> why, e.g. device_info:not_asked"})


class DeviceResultSchema(GatedResultSchema):
    device = fields.Nested(DeviceSchema)


class DeviceListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceSchema))


class ReportSchema(ReportedSchema):
    id = fields.Integer()
    created_at = UtcDateTime()


class ReportResultSchema(GatedResultSchema):
    report = fields.Nested(ReportSchema)


class PushTokenSchema(StrictSchema):
    token = fields.String(required=True, validate=[
        validate.Length(min=16, max=4096), FullMatch(r"^[\x21-\x7e]+$", error="Printable ASCII only.")])
    provider = fields.String(load_default="fcm", validate=validate.OneOf(["fcm"]))
    notifications_enabled = fields.Boolean(load_default=True)


class LocationInSchema(StrictSchema):
    latitude = FiniteNumber(required=True, validate=validate.Range(min=-90, max=90))
    longitude = FiniteNumber(required=True, validate=validate.Range(min=-180, max=180))
    accuracy_m = FiniteNumber(load_default=None, allow_none=True, validate=validate.Range(min=0, max=100_000))
    captured_at = UtcDateTime(required=True, metadata={
        "description": "When the phone took the fix, with a zone offset; not more than 5 minutes ahead, "
                       "not older than LOCATION_RETENTION_DAYS (90) nor 2000-01-01."})

    @validates("captured_at")
    def recent(self, value, **kwargs):
        now = utcnow()
        if value > now + FUTURE_TOLERANCE:
            raise ValidationError("Must not be more than 5 minutes in the future.")
        oldest = max(EARLIEST_EVENT, now - timedelta(days=current_app.config["LOCATION_RETENTION_DAYS"]))
        if value < oldest:
            raise ValidationError("Older than the retention window; it would be purged at once.")


class LocationSchema(Schema):
    id = fields.Integer()
    latitude = fields.Float()
    longitude = fields.Float()
    precision = fields.String(metadata={"description": "approximate (geohash-5 cell centre) or precise"})
    geohash = fields.String()
    accuracy_m = fields.Float(allow_none=True)
    captured_at = UtcDateTime()


class LocationResultSchema(Schema):
    location = fields.Nested(LocationSchema)


class LocationBatchSchema(StrictSchema):
    locations = fields.List(
        Unchecked(LocationInSchema), required=True, validate=validate.Length(min=1, max=MAX_BATCH),
        metadata={"description": "Up to 500 items, each a LocationIn; invalid items are rejected one by one"})

    @pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        return data  # LocationInSchema refuses it item by item, so one bad point keeps the others


class BatchItemResultSchema(Schema):
    index = fields.Integer()
    status = fields.String(metadata={"description": "stored, duplicate (its captured_at is already stored) or "
                                                    "rejected"})
    errors = fields.Dict(metadata={OPTIONAL: True, "description": "Why an item was rejected, or why a duplicate is not the point "
                                                  "stored at its time: field -> messages"})


class BatchResultSchema(Schema):
    precision = fields.String()
    stored = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
    results = fields.List(fields.Nested(BatchItemResultSchema))


def own_device(device_id, user=None):
    device = Device.owned(user or current_user, device_id)
    if device is None:
        raise NotFound("No such device.")
    return device


def gated_answer(gated, **extra):
    return {**extra, "stored": gated.stored, "dropped": gated.dropped}


@blp.route("", methods=["POST"])
@blp.auth(subjects=SUBJECTS)
@blp.arguments(DeviceRegisterSchema)
@blp.response(201, DeviceResultSchema, description="A new installation")
@blp.alt_response(200, schema=DeviceResultSchema, description="The same installation again", success=True)
def register_device(data):
    """Register the installation or update it. Details that need
    ``device_info`` are dropped (and listed) unless it is in effect."""
    device, created, gated = devices.register_device(current_user, data)
    return gated_answer(gated, device=device), 201 if created else 200


@blp.route("", methods=["GET"])
@blp.auth(subjects=SUBJECTS)
@blp.response(200, DeviceListSchema)
def list_devices():
    """The user's devices."""
    return {"devices": list(Device.for_user(current_user))}


@blp.route("/<uuid:device_id>", methods=["GET"])
@blp.auth(subjects=SUBJECTS)
@blp.response(200, DeviceSchema)
def get_device(device_id):
    return own_device(device_id)


@blp.route("/<uuid:device_id>", methods=["DELETE"])
@blp.auth(subjects=SUBJECTS)
@blp.response(204)
def delete_device(device_id):
    """Remove the device with its push token, reports and locations."""
    devices.delete_device(own_device(device_id))


@blp.route("/<uuid:device_id>/reports", methods=["POST"])
@blp.auth(subjects=SUBJECTS)
@blp.arguments(DeviceDetailsSchema)
@blp.response(201, ReportResultSchema)
def post_report(data, device_id):
    """A snapshot of the device's details, gated like registration."""
    report, gated = devices.record_report(current_user, own_device(device_id), data)
    return gated_answer(gated, report=report)


@blp.route("/<uuid:device_id>/push-token", methods=["PUT"])
@blp.auth(subjects=SUBJECTS)
@blp.arguments(PushTokenSchema)
@blp.response(200, PushStatusSchema)
@blp.alt_response(403, response="FORBIDDEN", description="consent_required: neither push permission is in effect")
@blp.alt_response(409, response="CONFLICT", description="token_in_use: another installation holds the token")
def put_push_token(data, device_id):
    """Store the device's push token (needs service_push or marketing_push)."""
    return tokens.set_push_token(current_user, own_device(device_id), data["token"], data["provider"],
                                  data["notifications_enabled"])


@blp.route("/<uuid:device_id>/push-token", methods=["DELETE"])
@blp.auth(subjects=SUBJECTS)
@blp.response(204)
def delete_push_token(device_id):
    """Forget the device's push token (e.g. on sign-out)."""
    tokens.remove_push_token(own_device(device_id))


def per_device():
    """Uploads count per device and account: a device's quota is used only
    by its owner, and another account's requests (404) count against that
    account alone, without a query to tell the two apart."""
    return f"device:{request.view_args.get('device_id')}/user:{get_jwt_identity()}"


@blp.route("/<uuid:device_id>/locations", methods=["POST"])
@blp.auth(load_user=False, subjects=SUBJECTS)
@limiter.limit(lambda: current_app.config["RATELIMIT_LOCATIONS"], key_func=per_device)
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Too many uploads from this device")
@blp.arguments(LocationInSchema)
@blp.response(201, LocationResultSchema, description="Stored")
@blp.alt_response(200, schema=LocationResultSchema, description="Already stored (a retry)", success=True)
@blp.alt_response(403, response="FORBIDDEN", description="consent_required: location is not in effect")
@blp.alt_response(409, response="CONFLICT", description="duplicate_location: a different point is stored at this "
                                                        "captured_at")
def post_location(data, device_id):
    """Store a location: approximate (geohash-5 cell centre) with
    ``location``, as reported with ``precise_location`` too."""
    location = locations.store_location_at_once(current_user.id, device_id, data)
    if location is not None:
        return {"location": location}, 201
    user = user_row()
    location, created = locations.store_location(user, own_device(device_id, user), data)
    return {"location": location}, 201 if created else 200


@blp.route("/<uuid:device_id>/locations/batch", methods=["POST"])
@blp.auth(subjects=SUBJECTS)
@limiter.limit(lambda: current_app.config["RATELIMIT_LOCATION_BATCHES"], key_func=per_device)
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Too many uploads from this device")
@blp.arguments(LocationBatchSchema)
@blp.response(200, BatchResultSchema)
@blp.alt_response(403, response="FORBIDDEN", description="consent_required: location is not in effect")
def post_location_batch(data, device_id):
    """Up to 500 locations; consent is checked once, each item is answered."""
    device = own_device(device_id)
    schema = LocationInSchema()
    items, errors = [], {}
    for index, raw in enumerate(data["locations"]):
        try:
            items.append(schema.load(raw))
        except ValidationError as error:
            items.append(None)
            errors[index] = error.messages
    statuses, precision, differing = locations.store_locations(current_user, device, items)
    errors.update(differing)
    results = [{"index": i, "status": status, **({"errors": errors[i]} if i in errors else {})}
               for i, status in enumerate(statuses)]
    return {
        "precision": precision,
        "stored": statuses.count("stored"),
        "duplicates": statuses.count("duplicate"),
        "rejected": statuses.count("rejected"),
        "results": results,
    }
