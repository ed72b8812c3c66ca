"""Marshmallow fields and schemas shared by several blueprints."""
from datetime import timezone

from marshmallow import Schema, ValidationError, fields, validate

from models.base import to_naive_utc


class UtcDateTime(fields.DateTime):
    """ISO 8601 with an offset on the wire, naive UTC in the database.
    Input without an offset is refused: an event time must say its zone."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            raise ValidationError("Give a time zone offset, e.g. 2026-01-31T12:00:00Z.")
        return to_naive_utc(parsed)


class StrictSchema(Schema):
    """Input schemas: unknown fields are refused (marshmallow's default,
    stated here so that nobody relaxes it by accident)."""

    class Meta:
        unknown = "raise"


class PageArgs(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
