"""The user's rights (policy section 5): profile and corrections, a complete
export, erasure, and the location history (``/v1/me``)."""
from datetime import date

from flask import Response, current_app, stream_with_context
from flask_jwt_extended import current_user, get_jwt
from marshmallow import Schema, ValidationError, fields, validate, validates

from auth.passwords import password_matches
from auth.sessions import change_credentials, is_fresh, revoke_session
from blueprints.auth import PASSWORD_RULES, PHONE, UserSchema
from blueprints.base import ApiBlueprint, FullMatch, PageArgs, StrictSchema, TimeCursor, UtcDateTime, page_schema
from blueprints.consents import ConsentOverviewSchema, ReceiptSchema
from blueprints.devices import LocationSchema
from core.errors import Forbidden, NotFound
from core.extensions import limiter
from models import AuthSession
from models.device import GATED_DEVICE_FIELDS, OS_PERMISSION_COLUMNS, Location
from rights import correction, erasure, export

blp = ApiBlueprint("me", __name__, url_prefix="/v1/me", description="The user's own data")

EXPORT_FORMAT = """Export format, version 1: one JSON object with `format_version`, `exported_at`
and these sections, each a list of objects unless noted: `profile` (object), `consents` (object, as
`GET /v1/me/consents`), `ledger` (every consent change: permission, granted, policy_version, source,
reason, device_id, ip, user_agent, created_at, hash, adopted_from), `consent_receipts` (every consent receipt, as
`GET /v1/me/consent-receipts/{receipt_id}`: receipt_id, jws, receipt), `guardian_consents`, `devices` (as stored,
with the phone's own permissions as os_notifications, os_location, os_tracking),
`push_tokens`, `device_reports` (device-details history), `locations` (as stored: latitude,
longitude, precision, geohash, accuracy_m, captured_at), `deliveries` (campaign, kind, title,
device, status, time), `sessions` (id, device, address, created_at, refreshed_at, expires_at, revoked_at),
`unsubscribes` (created_at, policy_version). Times are UTC (ISO 8601, `Z`)."""


class StoredDeviceSchema(Schema):
    id = fields.UUID()
    installation_id = fields.String()
    platform = fields.String()
    app_version = fields.String(allow_none=True)
    created_at = UtcDateTime()
    last_seen_at = UtcDateTime()


class ExportReportSchema(Schema):
    id = fields.Integer()
    device = fields.UUID(metadata={"description": "The device's id"})
    app_version = fields.String(allow_none=True)
    created_at = UtcDateTime()


for _name in GATED_DEVICE_FIELDS:
    for _schema in (StoredDeviceSchema, ExportReportSchema):
        _schema._declared_fields[_name] = fields.String(allow_none=True, metadata={
            "description": "Stored only while device_info is in effect"})
for _name, _column in OS_PERMISSION_COLUMNS.items():
    StoredDeviceSchema._declared_fields[_column] = fields.String(allow_none=True, metadata={
        "description": f"The phone's own {_name} permission; null: never reported"})


class ExportLedgerEntrySchema(Schema):
    id = fields.Integer()
    permission = fields.String()
    granted = fields.Boolean()
    policy_version = fields.String()
    source = fields.String()
    reason = fields.String(allow_none=True)
    device_id = fields.UUID(allow_none=True)
    ip = fields.String(allow_none=True, metadata={"description": "Truncated to /24 (IPv4) or /48 (IPv6)"})
    user_agent = fields.String(allow_none=True)
    created_at = UtcDateTime()
    hash = fields.String()
    adopted_from = fields.String(allow_none=True, metadata={
        "description": "A choice adopted from an installation at sign-in: the hash of its entry; null otherwise"})


class ExportGuardianConsentSchema(Schema):
    guardian_name = fields.String()
    relationship = fields.String()
    evidence_ref = fields.String()
    recorded_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)


class ExportPushTokenSchema(Schema):
    device = fields.UUID(metadata={"description": "The device's id"})
    token = fields.String()
    provider = fields.String()
    notifications_enabled = fields.Boolean()
    updated_at = UtcDateTime()


class ExportLocationSchema(Schema):
    id = fields.Integer()
    device = fields.UUID(metadata={"description": "The device's id"})
    latitude = fields.Float()
    longitude = fields.Float()
    precision = fields.String(metadata={"description": "approximate (geohash-5 cell centre) or precise"})
    geohash = fields.String()
    accuracy_m = fields.Float(allow_none=True)
    captured_at = UtcDateTime()


class ExportDeliverySchema(Schema):
    id = fields.Integer()
    campaign = fields.String(metadata={"description": "The campaign's name"})
    kind = fields.String()
    title = fields.String()
    device = fields.UUID(metadata={"description": "The device's id"})
    status = fields.String()
    time = UtcDateTime()


class ExportSessionSchema(Schema):
    id = fields.UUID()
    device = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    created_at = UtcDateTime()
    refreshed_at = UtcDateTime(allow_none=True)
    expires_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)


class ExportUnsubscribeSchema(Schema):
    created_at = UtcDateTime()
    policy_version = fields.String()


class ExportSchema(Schema):
    """The export document, section by section (``rights.export``)."""
    format_version = fields.Integer()
    exported_at = UtcDateTime()
    profile = fields.Nested(UserSchema)
    consents = fields.Nested(ConsentOverviewSchema, metadata={"description": "As GET /v1/me/consents"})
    ledger = fields.List(fields.Nested(ExportLedgerEntrySchema), metadata={"description": "Every consent change"})
    consent_receipts = fields.List(fields.Nested(ReceiptSchema), metadata={
        "description": "Every consent receipt, as GET /v1/me/consent-receipts/{receipt_id}"})
    guardian_consents = fields.List(fields.Nested(ExportGuardianConsentSchema))
    devices = fields.List(fields.Nested(StoredDeviceSchema), metadata={"description": "As stored"})
    push_tokens = fields.List(fields.Nested(ExportPushTokenSchema))
    device_reports = fields.List(fields.Nested(ExportReportSchema), metadata={"description": "Device-details history"})
    locations = fields.List(fields.Nested(ExportLocationSchema), metadata={"description": "As stored"})
    deliveries = fields.List(fields.Nested(ExportDeliverySchema))
    sessions = fields.List(fields.Nested(ExportSessionSchema))
    unsubscribes = fields.List(fields.Nested(ExportUnsubscribeSchema))


class ProfilePatchSchema(StrictSchema):
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(allow_none=True, validate=FullMatch(PHONE, error="Use digits, optionally with a leading +."))
    birth_date = fields.Date()

    @validates("birth_date")
    def plausible(self, value, **kwargs):
        if not (date(1900, 1, 1) <= value <= date.today()):
            raise ValidationError("Must be between 1900-01-01 and today.")


class ProfileSchema(UserSchema):
    stopped = fields.List(fields.String(), dump_only=True, metadata={
        "description": "Permissions withdrawn because the correction made them unlawful (e.g. now a minor)"})


class PasswordChangeSchema(StrictSchema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD_RULES)


class ErasureConfirmationSchema(StrictSchema):
    password = fields.String(load_default=None, load_only=True, validate=validate.Length(max=1024), metadata={
        "description": "The account's password; not needed with an access token from a login in the last 5 minutes"})


class SessionInfoSchema(Schema):
    id = fields.UUID(required=True)
    device = fields.String(required=True, allow_none=True, metadata={
        "description": "As the app named it at login, or the start of its User-Agent"})
    address = fields.String(required=True, allow_none=True, metadata={
        "description": "The network the login came from (/24 of IPv4, /48 of IPv6), never the whole address"})
    created_at = UtcDateTime(required=True)
    last_used_at = UtcDateTime(required=True, metadata={"description": "The last token refresh, or the login"})
    current = fields.Boolean(required=True, metadata={"description": "Whether this request's token belongs to it"})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionInfoSchema), required=True, metadata={
        "description": "The open sessions, newest first (at most 100)"})


def _password_failed(response):
    return response.status_code == 403


def _password_check_key():
    """A password asked again is guessed per account: a stolen access token
    must not make it an unlimited oracle."""
    return f"password-check:{current_user.id}"


def password_limit():
    """The login's limit, counting wrong passwords only."""
    return limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"], key_func=_password_check_key,
                         deduct_when=_password_failed)


def confirm_password(user, password, field):
    if not password_matches(user.password_hash, password):
        raise Forbidden("The password is wrong.", code="wrong_password", details={field: ["Wrong password."]})


LocationPageSchema = page_schema(LocationSchema, "LocationPage", cursor=TimeCursor)


class LocationPageArgs(PageArgs):
    cursor = TimeCursor(load_default=None)


@blp.route("", methods=["GET"])
@blp.auth()
@blp.response(200, UserSchema)
def get_me():
    """The user's profile."""
    return current_user


@blp.route("", methods=["PATCH"])
@blp.auth()
@blp.arguments(ProfilePatchSchema)
@blp.response(200, ProfileSchema)
@blp.alt_response(409, response="CONFLICT", description="Email already registered")
def patch_me(data):
    """Correct email, phone or birth date. A birth-date change re-evaluates
    minor status at once."""
    if data.get("phone"):
        data["phone"] = "".join(ch for ch in data["phone"] if ch.isdigit() or ch == "+")
    stopped = correction.correct(current_user, data, correction.system_context())
    return {**export.profile(current_user), "stopped": stopped}


@blp.route("/export", methods=["GET"])
@blp.auth()
@blp.doc(description=EXPORT_FORMAT)
@blp.response(200, ExportSchema, description="Everything held about the user (streamed JSON)")
def export_me():
    """Everything held about the user, machine-readable (streamed)."""
    user = current_user._get_current_object()
    response = Response(stream_with_context(export.export(user)), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@blp.route("", methods=["DELETE"])
@blp.auth()
@password_limit()
@blp.arguments(ErasureConfirmationSchema, required=False)
@blp.response(204)
@blp.alt_response(403, response="FORBIDDEN", description="Wrong password, or none with a token older than 5 minutes")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def delete_me(data):
    """Erase the account and everything held about the user; every token
    stops working. Confirmed by the password (``{"password"}``) or by an
    access token from a login in the last 5 minutes."""
    user = current_user._get_current_object()
    if data.get("password") is not None:
        confirm_password(user, data["password"], "password")
    elif not is_fresh(get_jwt()):
        raise Forbidden("Confirm the erasure: send the password, or log in again and erase within 5 minutes.",
                        code="reauthentication_required", details={"password": ["Required with this token."]})
    erasure.erase(user)


@blp.route("/password", methods=["POST"])
@blp.auth()
@password_limit()
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@blp.alt_response(403, response="FORBIDDEN", description="Wrong current password")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def change_password(data):
    """Change the password. Every other session ends; this one stays."""
    user = current_user._get_current_object()
    confirm_password(user, data["current_password"], "current_password")
    change_credentials(user, password=data["new_password"], keep=get_jwt()["sid"])


@blp.route("/sessions", methods=["GET"])
@blp.auth()
@blp.response(200, SessionListSchema)
def my_sessions():
    """The account's open sessions (logins on each device), this one marked ``current``."""
    current = get_jwt()["sid"]
    return {"items": [
        {"id": s.id, "device": s.device, "address": s.address, "created_at": s.created_at,
         "last_used_at": s.refreshed_at or s.created_at, "current": str(s.id) == current}
        for s in AuthSession.open_for(current_user.id)]}


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@blp.auth()
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="No open session of the user with this id")
def end_session(session_id):
    """End one session (e.g. a lost phone's): its tokens stop working."""
    if not revoke_session(current_user, session_id, "ended_by_user"):
        raise NotFound("No open session with this id.", code="session_not_found")


@blp.route("/locations", methods=["GET"])
@blp.auth()
@blp.arguments(LocationPageArgs, location="query")
@blp.response(200, LocationPageSchema)
def my_locations(args):
    """The user's stored locations, newest first by ``captured_at``."""
    items, next_key = Location.newest_first(current_user.id, args["cursor"], args["limit"])
    return {"items": items, "next_cursor": next_key}


@blp.route("/locations", methods=["DELETE"])
@blp.auth()
@blp.response(204)
def delete_my_locations():
    """Delete every stored location (consent stays as it is)."""
    Location.delete_for_user(current_user.id)
