"""Marshmallow fields and schemas shared by several blueprints."""
import base64
import binascii
from datetime import datetime, timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate

from models.base import keyset_page, to_naive_utc


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


class StrictBoolean(fields.Boolean):
    """JSON true or false, nothing that merely looks like one."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class Cursor(fields.String):
    """An opaque page cursor wrapping an integer key."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 40:
            raise ValidationError("Not a cursor from this API.")
        try:
            decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            key = int(decoded)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationError("Not a cursor from this API.") from None
        if key < 0 or key > 2**63:
            raise ValidationError("Not a cursor from this API.")
        return key


class TimeCursor(fields.String):
    """An opaque page cursor wrapping (time, id): the key of a list ordered
    by an event time, ties broken by the row's id."""

    EPOCH = datetime(1970, 1, 1)
    LATEST = datetime(9999, 12, 31)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        moment, key = value
        micros = (moment - self.EPOCH) // timedelta(microseconds=1)
        return base64.urlsafe_b64encode(f"{micros}.{key}".encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 64:
            raise ValidationError("Not a cursor from this API.")
        try:
            micros, key = (int(part) for part in
                           base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split("."))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationError("Not a cursor from this API.") from None
        if not (0 <= micros <= (self.LATEST - self.EPOCH) // timedelta(microseconds=1) and 0 <= key <= 2**63):
            raise ValidationError("Not a cursor from this API.")
        return self.EPOCH + timedelta(microseconds=micros), key


class PageArgs(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = Cursor(load_default=None)


def newest_first(query, key, args):
    """One page of ``query`` (newest first by ``key``) as ``{items, next_cursor}``."""
    items, next_key = keyset_page(query, key, args["cursor"], args["limit"])
    return {"items": items, "next_cursor": next_key}


def page_schema(item_schema, name, cursor=Cursor):
    """``{items: [...], next_cursor}`` around ``item_schema``."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": cursor(allow_none=True, metadata={"description": "Pass as `cursor` for the next page; null at the end."}),
    })
