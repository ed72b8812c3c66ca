"""What a campaign is made of, as the API and the console read it: the
fields, the audience filters and their limits, in one schema both use."""
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from core.schemas import FiniteNumber, FullMatch, StrictSchema, UtcDateTime
from models.base import utcnow
from models.device import PLATFORMS
from models.push import Campaign

SUBJECTS = ("accounts", "installations", "all")
RESERVED_DATA_KEYS = {"campaign_id", "unsubscribe_token", "from", "notification", "message_type", "collapse_key"}
MAX_DATA_BYTES = 2048


def _text_list(limit=100):
    return fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=None,
                       allow_none=True, validate=validate.Length(min=1, max=limit))


class AreaSchema(StrictSchema):
    latitude = FiniteNumber(required=True, validate=validate.Range(min=-90, max=90))
    longitude = FiniteNumber(required=True, validate=validate.Range(min=-180, max=180))
    radius_km = FiniteNumber(required=True, validate=validate.Range(min=0.5, max=1000))


class AudienceSchema(StrictSchema):
    platforms = fields.List(fields.String(validate=validate.OneOf(PLATFORMS)), load_default=None, allow_none=True,
                            validate=validate.Length(min=1, max=len(PLATFORMS)))
    app_version_min = fields.String(load_default=None, allow_none=True, validate=FullMatch(
        r"^\d+(\.\d+){0,3}$", error="Dotted numbers, e.g. 3.12.0."))
    os_names = _text_list()
    models = _text_list()
    carriers = _text_list()
    area = fields.Nested(AreaSchema, load_default=None, allow_none=True)
    active_within_days = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=365))
    subjects = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SUBJECTS), metadata={
        "description": "Whose devices: `accounts` (the default), `installations` (the app before sign-in, "
                       "no account) or `all`; the same consent rules and exclusions hold for each"})


def push_data_field():
    return fields.Dict(
        keys=fields.String(validate=FullMatch(r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                                                    error="Letters, digits and _; starting with a letter.")),
        values=fields.String(validate=validate.Length(max=1000)),
        load_default=dict, validate=validate.Length(max=20),
        metadata={"description": "String key-value pairs delivered with the notification"})


def check_push_data(data):
    if not data:
        return
    reserved = sorted(k for k in data if k in RESERVED_DATA_KEYS or k.lower().startswith(("google", "gcm")))
    if reserved:
        raise ValidationError({"data": [f"Reserved keys: {', '.join(reserved)}."]})
    if sum(len(k) + len(v.encode()) for k, v in data.items()) > MAX_DATA_BYTES:
        raise ValidationError({"data": [f"At most {MAX_DATA_BYTES} bytes in all."]})


class CampaignCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(Campaign.KINDS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    data = push_data_field()
    audience = fields.Nested(AudienceSchema, load_default=None, allow_none=True)
    send_at = UtcDateTime(load_default=None, allow_none=True, metadata={"description": "Schedule; now if omitted"})

    @validates("send_at")
    def within_a_year(self, value, **kwargs):
        if value is not None and (value - utcnow()).days > 366:
            raise ValidationError("At most a year ahead.")

    @validates_schema
    def data_limits(self, data, **kwargs):
        check_push_data(data.get("data"))
