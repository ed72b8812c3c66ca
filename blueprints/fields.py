"""Marshmallow fields and schemas shared by several blueprints."""
import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from marshmallow import Schema, ValidationError, fields, pre_load, validate

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
        try:
            return to_naive_utc(parsed)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+23:59 is before year 1 in UTC
            raise ValidationError("Out of range once converted to UTC.") from None


class FullMatch(validate.Regexp):
    """``validate.Regexp`` matching the whole value: with ``re.match`` an
    ``^...$`` pattern also takes a trailing newline. The pattern keeps its
    ``^...$`` form, which means the whole value in the OpenAPI document's
    (ECMA-262) regular expressions too."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


SURROGATES = re.compile("[\ud800-\udfff]")


def unstorable(text):
    """Why ``text`` cannot be stored, or None: PostgreSQL refuses NUL in
    text, and a lone surrogate (JSON's "\\ud800") has no UTF-8 form."""
    if "\x00" in text:
        return "Must not contain NUL characters."
    if not text.isascii() and SURROGATES.search(text):
        return "Must not contain unpaired surrogates."
    return None


def first_unstorable(value):
    """The reason of the first unstorable string in ``value`` (keys and
    items of any depth included), or None."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            reason = unstorable(node)
            if reason:
                return reason
        elif isinstance(node, Mapping):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return None


class StrictSchema(Schema):
    """Input schemas: unknown fields are refused (marshmallow's default,
    stated here so that nobody relaxes it by accident), and so is text that
    cannot be stored, in every field, before any field reads it."""

    class Meta:
        unknown = "raise"

    @pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        if not isinstance(data, Mapping):
            return data
        errors = {}
        for name in data:
            reason = first_unstorable(name) or first_unstorable(data[name])
            if reason:
                errors[name] = [reason]
        if errors:
            raise ValidationError(errors)
        return data


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
