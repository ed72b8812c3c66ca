"""The marshmallow pieces every input is read with, by the API's schemas
and by the console's forms alike: times with a zone, whole-value patterns,
finite numbers, and schemas that refuse unknown fields and text that
cannot be stored."""
import math
import re
from collections.abc import Mapping
from datetime import timezone

from marshmallow import Schema, ValidationError, fields, pre_load, validate


def to_naive_utc(value):
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


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


class FiniteNumber(fields.Float):
    """A JSON number: not a string, not a boolean, not NaN or infinite."""

    def __init__(self, **kwargs):
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("description", "A finite JSON number (no NaN or Infinity).")
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Must be a number.")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond any float
            raise ValidationError("Must be a finite number.") from None
        if not math.isfinite(value):
            raise ValidationError("Must be a finite number.")
        return value
