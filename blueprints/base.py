"""What every blueprint builds on: ``ApiBlueprint`` (its ``auth``
decorator checks the bearer token first), ``StrictParser`` (unknown query
parameters and non-JSON bodies refused), the flask-jwt-extended callbacks
that answer token errors in the envelope, and the marshmallow fields and
schemas several blueprints share."""
import base64
import binascii
from datetime import datetime, timedelta
from functools import wraps

from flask import g, request
from flask_jwt_extended import current_user, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

import consent
from auth.revocations import UserRef
from auth.sessions import revocations, token_kind
from core import http
from core.errors import Forbidden, Unauthorized, ValidationFailed
from core.http import error_response
from models import User
from models.base import utcnow
from core.schemas import (  # noqa: F401  (the blueprints' names for the shared input pieces)
    FullMatch,
    StrictBoolean,
    StrictSchema,
    UtcDateTime,
    first_unstorable,
    unstorable,
)
from models.base import keyset_page


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


class Unchecked(fields.Nested):
    """Documented as the nested schema, loaded as a plain object: the view
    loads each item itself, so that one bad item does not refuse the others."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("Not a valid mapping type.")
        return value


def page_schema(item_schema, name, cursor=Cursor):
    """``{items: [...], next_cursor}`` around ``item_schema``."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": cursor(allow_none=True, metadata={"description": "Pass as `cursor` for the next page; null at the end."}),
    })


# -- authentication --------------------------------------------------------------

BEARER = {"bearerAuth": []}
SECURITY_SCHEMES = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
BAD_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def user_row():
    """``current_user`` as a User row. A user erased since its token was
    issued gets the 401 a revoked token gets."""
    user = current_user
    if isinstance(user, UserRef):
        user = User.get_or_none(User.id == user.id)
        if user is None:
            raise Unauthorized("The token has been revoked.", code="token_revoked", headers=BAD_TOKEN)
    return user


# -- flask-jwt-extended callbacks -------------------------------------------

def _unauthorized(code, message):
    # RFC 6750 §3.1: a token was sent but cannot be used -> error="invalid_token"
    headers = None if code == "authorization_required" else BAD_TOKEN
    return error_response(401, code, message, headers=headers)


def register_jwt_callbacks(jwt_manager):
    @jwt_manager.token_in_blocklist_loader
    def is_revoked(_header, payload):
        user = revocations().live_user(payload, row=g.get("jwt_load_user", True))
        g.jwt_user = user
        return user is None

    @jwt_manager.user_lookup_loader
    def load_user(_header, payload):
        return g.get("jwt_user")

    jwt_manager.unauthorized_loader(
        lambda reason: _unauthorized("authorization_required", "A bearer token is required.")
    )
    jwt_manager.invalid_token_loader(lambda reason: _unauthorized("invalid_token", "The token is not valid."))
    jwt_manager.expired_token_loader(lambda h, p: _unauthorized("token_expired", "The token has expired."))
    jwt_manager.revoked_token_loader(lambda h, p: _unauthorized("token_revoked", "The token has been revoked."))
    jwt_manager.user_lookup_error_loader(lambda h, p: _unauthorized("token_revoked", "The token has been revoked."))
    jwt_manager.token_verification_failed_loader(lambda h, p: _unauthorized("invalid_token", "The token is not valid."))
    jwt_manager.needs_fresh_token_loader(lambda h, p: _unauthorized("fresh_token_required", "Log in again."))


# -- the decorator views wear -----------------------------------------------

class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields: a typo
    such as ``?limt=5`` must not be silently ignored."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req):
        """A body in another format is 415, not "missing data"; JSON is read
        within ``http.load_json``'s bounds."""
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if body:
                raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
            return core.missing
        return http.load_json(body.decode("utf-8"))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        reason = error.msg if isinstance(error, http.JsonLimitExceeded) else "Invalid JSON body."
        abort(400, exc=error, messages={"json": [reason]})


def takes_query(view):
    """Whether ``view`` declares query arguments (``arguments(..., location="query")``)."""
    declared = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(p.get("in") in ("query", "querystring") for p in declared if isinstance(p, dict))


def refuse_query_parameters():
    """A route without query arguments refuses any, as StrictParser refuses
    unknown ones where there are some."""
    if request.args:
        raise ValidationFailed({name: ["Unknown field."] for name in request.args})


def _refusing_query(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        refuse_query_parameters()
        return view(*args, **kwargs)

    return wrapper


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose ``auth`` decorator checks the bearer
    token (and the staff role) before anything else and documents it, and
    whose routes refuse query parameters they do not declare."""

    ARGUMENTS_PARSER = StrictParser()

    def add_url_rule(self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **kwargs):
        if view_func is not None and not getattr(view_func, "checks_query", False) and not takes_query(view_func):
            view_func = _refusing_query(view_func)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **kwargs)

    def arguments(self, schema, *args, **kwargs):
        """As flask-smorest's, with a schema class instantiated once here:
        webargs would build a new instance (and copy its fields) per request."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def auth(self, *, roles=(), refresh=False, any_token=False, load_user=True, subjects=("account",)):
        """``roles``: staff roles that may call the route (``admin`` always
        may; ``("admin",)`` means administrators only).
        ``subjects``: the kinds of token the route serves, ``account`` (a
        signed-in user's) and/or ``installation`` (the app's before sign-in):
        one view serves both, the consent engine deciding for whichever
        subject the token stands for. Another kind's token gets 403
        ``installation_token_refused`` or ``installation_token_required``.
        ``load_user=False``: where revocations live in Redis, the view's
        ``current_user`` may be a ``UserRef`` (only ``id``), sparing a query
        on hot routes; ``user_row()`` gives the row."""
        if isinstance(roles, str):
            raise TypeError("roles is a tuple of role names")
        def decorator(view):
            @wraps(view)
            def wrapper(*args, **kwargs):
                g.jwt_load_user = load_user or bool(roles)
                verify_jwt_in_request(refresh=refresh, verify_type=not any_token, locations=["headers"])
                kind = token_kind(get_jwt())
                if kind not in subjects:
                    if kind == "installation":
                        raise Forbidden("This route needs a signed-in account, not an installation's token.",
                                        code="installation_token_refused")
                    raise Forbidden("This route is for an installation's token (POST /v1/installations).",
                                    code="installation_token_required")
                if kind == "installation":
                    _seen(current_user)
                if roles and not current_user.has_role(*roles):
                    raise Forbidden(f"This route is for staff with the role {' or '.join(sorted(set(roles) | {'admin'}))}.")
                if not query_declared:
                    refuse_query_parameters()
                return view(*args, **kwargs)

            query_declared = takes_query(view)
            wrapper.checks_query = True  # after the token check, so anonymous callers get their 401 first

            wrapper = self.doc(security=[BEARER])(wrapper)
            wrapper = self.alt_response(401, response="UNAUTHORIZED", description="Missing, invalid, expired or revoked token")(wrapper)
            if roles:
                allowed = ", ".join(sorted(set(roles) | {"admin"}))
                refused = f"Not staff with a role among: {allowed}; or an installation's token"
            else:
                refused = f"A token of another kind than {' or '.join(subjects)}"
            wrapper = self.alt_response(403, response="FORBIDDEN", description=refused)(wrapper)
            return wrapper

        return decorator


def _seen(installation):
    """An installation's activity, for its retention: written at most once a
    day, so that its requests do not each cost a write. Without its row (a
    ``UserRef`` on a hot route) the condition is the database's."""
    now = utcnow()
    if isinstance(installation, User):
        if installation.last_seen_at is not None and installation.last_seen_at >= now - timedelta(days=1):
            return
        installation.last_seen_at = now
    User.update(last_seen_at=now).where(
        (User.id == installation.id)
        & (User.last_seen_at.is_null() | (User.last_seen_at < now - timedelta(days=1)))
    ).execute()


# -- the consent checks' per-request cache -----------------------------------------

def open_consent_cache():
    """Each request reads a user's consents once (``consent.subject_for``);
    a change of them drops the cached copy."""
    g.consent_cache = consent.open_cache()


def close_consent_cache(_exc):
    token = g.pop("consent_cache", None)
    if token is not None:
        consent.close_cache(token)


def register_request_hooks(app):
    app.before_request(open_consent_cache)
    app.teardown_request(close_consent_cache)
