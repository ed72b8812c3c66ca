"""The user's rights (policy section 5): profile and corrections, a complete
export, erasure, and the location history (``/v1/me``)."""
from datetime import date

from flask import Response, stream_with_context
from flask_jwt_extended import current_user
from marshmallow import ValidationError, fields, validate, validates

from blueprints.auth import PHONE, UserSchema
from blueprints.base import ApiBlueprint, FullMatch, PageArgs, StrictSchema, TimeCursor, page_schema
from blueprints.devices import LocationSchema
from models.device import Location
from rights import correction, erasure, export

blp = ApiBlueprint("me", __name__, url_prefix="/v1/me", description="The user's own data")

EXPORT_FORMAT = """Export format, version 1: one JSON object with `format_version`, `exported_at`
and these sections, each a list of objects unless noted: `profile` (object), `consents` (object, as
`GET /v1/me/consents`), `ledger` (every consent change: permission, granted, policy_version, source,
reason, device_id, ip, user_agent, created_at, hash, adopted_from), `consent_receipts` (every consent receipt, as
`GET /v1/me/consent-receipts/{receipt_id}`: receipt_id, jws, receipt), `guardian_consents`, `devices` (as stored),
`push_tokens`, `device_reports` (device-details history), `locations` (as stored: latitude,
longitude, precision, geohash, accuracy_m, captured_at), `deliveries` (campaign, kind, title,
device, status, time), `unsubscribes` (created_at, policy_version). Times are UTC (ISO 8601, `Z`)."""


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
@blp.doc(description=EXPORT_FORMAT, responses={"200": {
    "description": "Everything held about the user (streamed JSON)",
    "content": {"application/json": {"schema": {"type": "object", "properties": {
        "format_version": {"type": "integer"}, "exported_at": {"type": "string", "format": "date-time"}}}}}}})
def export_me():
    """Everything held about the user, machine-readable (streamed)."""
    user = current_user._get_current_object()
    response = Response(stream_with_context(export.export(user)), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@blp.route("", methods=["DELETE"])
@blp.auth()
@blp.response(204)
def delete_me():
    """Erase the account and everything held about the user; every token stops working."""
    erasure.erase(current_user._get_current_object())


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
