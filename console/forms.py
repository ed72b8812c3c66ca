"""Console forms loaded by marshmallow schemas, as the API loads its JSON
bodies: limits and choices are declared once per form, never checked by
hand in a view."""
from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from core.schemas import first_unstorable


class FormSchema(Schema):
    """A posted form: the CSRF field and anything unknown are left out; text
    that cannot be stored is refused in every field."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        errors = {name: [first_unstorable(value)] for name, value in data.items() if first_unstorable(value)}
        if errors:
            raise ValidationError(errors)
        return data


def form_data(schema):
    """The posted values of ``schema``'s fields (lists for list fields)."""
    data = {}
    for name, field in schema.fields.items():
        if isinstance(field, fields.List):
            data[name] = request.form.getlist(name)
        elif name in request.form:
            data[name] = request.form[name]
    return data


def load_form(schema):
    """``(data, {})`` for a valid form, ``(None, {field: messages})`` otherwise."""
    try:
        return schema.load(form_data(schema)), {}
    except ValidationError as error:
        return None, error.messages


def load_query(schema):
    """As ``load_form``, for a GET form's query string; an empty field means "not given"."""
    try:
        return schema.load({name: request.args[name] for name in schema.fields if request.args.get(name)}), {}
    except ValidationError as error:
        return None, error.messages
