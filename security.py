"""Passwords, JWT sessions and their revocation, and the ``auth`` decorator
that every protected view wears."""
import uuid
from datetime import timedelta
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    current_user,
    verify_jwt_in_request,
)
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

import hardening
from errors import Forbidden, Unauthorized, ValidationFailed, error_response
from extensions import jwt
from models import AuthSession, User
from revocations import DatabaseRevocations, RedisRevocations, UserRef

BEARER = {"bearerAuth": []}
SECURITY_SCHEMES = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


# -- passwords ---------------------------------------------------------------

def _hasher():
    config = current_app.config
    return PasswordHasher(
        time_cost=config["PASSWORD_HASH_TIME_COST"], memory_cost=config["PASSWORD_HASH_MEMORY_KIB"]
    )


def hash_password(password):
    return _hasher().hash(password)


def password_matches(password_hash, password):
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_password_check(password):
    """Spend the time a real check costs, so that an unknown email cannot be
    told from a wrong password by timing."""
    _hasher().hash(password)


# -- revocation stores (revocations.py) --------------------------------------

def user_row():
    """``current_user`` as a User row. A user erased since its token was
    issued gets the 401 a revoked token gets."""
    user = current_user
    if isinstance(user, UserRef):
        user = User.get_or_none(User.id == user.id)
        if user is None:
            raise Unauthorized("The token has been revoked.", code="token_revoked")
    return user


def revocations():
    return current_app.extensions["revocations"]


def init_revocations(app):
    url = app.config["REDIS_URL"]
    if url:
        import redis

        ttl = int(app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
        app.extensions["revocations"] = RedisRevocations(
            redis.Redis.from_url(url, **app.config["REDIS_CLIENT_OPTIONS"]), ttl)
    else:
        app.extensions["revocations"] = DatabaseRevocations()


# -- sessions ---------------------------------------------------------------

def _token_pair(user, session_id, refresh_jti):
    claims = {"sid": str(session_id)}
    access = create_access_token(identity=str(user.id), additional_claims=claims)
    refresh = create_refresh_token(identity=str(user.id), additional_claims={**claims, "jti": refresh_jti})
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def open_session(user):
    jti = uuid.uuid4().hex
    session = AuthSession.open(user, jti, current_app.config["JWT_REFRESH_TOKEN_EXPIRES"])
    return _token_pair(user, session.id, jti)


class RefreshReused(Exception):
    """A refresh token that was already rotated came back: the family is revoked."""


def rotate_session(user, payload):
    """New tokens for the session of ``payload`` (a refresh token). The same
    token presented again within ``REFRESH_REUSE_GRACE_SECONDS`` of its
    rotation (an app refreshing from several requests at once) gets the same
    successor. Presented later, it is taken as stolen: the whole session,
    including its newest refresh token, is revoked."""
    config = current_app.config
    grace = timedelta(seconds=config["REFRESH_REUSE_GRACE_SECONDS"])
    jti = AuthSession.rotate(payload["sid"], payload["jti"], uuid.uuid4().hex,
                             config["JWT_REFRESH_TOKEN_EXPIRES"], grace)
    if jti is None:
        revocations().revoke([payload["sid"]], "refresh_reused")
        raise RefreshReused()
    return _token_pair(user, payload["sid"], jti)


def close_session(payload):
    revocations().revoke([payload["sid"]], "logout")


def revoke_all_sessions(user, reason):
    ids = [s.id for s in AuthSession.select(AuthSession.id).where(AuthSession.user == user)]
    if ids:
        revocations().revoke(ids, reason)


def change_credentials(user, *, password=None, role=None):
    """Set a new password and/or role. Every session of the account is
    revoked: tokens issued before must not carry the new role, nor outlive
    the password they were obtained with."""
    reason = "role_changed" if role not in (None, user.role) else "password_changed"
    if password is not None:
        user.password_hash = hash_password(password)
    if role is not None:
        user.role = role
    user.save()
    revoke_all_sessions(user, reason)


# -- flask-jwt-extended callbacks -------------------------------------------

def _unauthorized(code, message):
    return error_response(401, code, message)


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


register_jwt_callbacks(jwt)


# -- the decorator views wear -----------------------------------------------

class StrictParser(FlaskParser):
    """Unknown query parameters are refused like unknown body fields: a typo
    such as ``?limt=5`` must not be silently ignored."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req):
        """A body in another format is 415, not "missing data"; JSON is read
        within ``hardening.load_json``'s bounds."""
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if body:
                raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
            return core.missing
        return hardening.load_json(body.decode("utf-8"))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        reason = error.msg if isinstance(error, hardening.JsonLimitExceeded) else "Invalid JSON body."
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
    token (and the admin role) before anything else and documents it, and
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

    def auth(self, *, admin=False, refresh=False, any_token=False, load_user=True):
        """``load_user=False``: where revocations live in Redis, the view's
        ``current_user`` may be a ``UserRef`` (only ``id``), sparing a query
        on hot routes; ``user_row()`` gives the row."""
        def decorator(view):
            @wraps(view)
            def wrapper(*args, **kwargs):
                g.jwt_load_user = load_user or admin
                verify_jwt_in_request(refresh=refresh, verify_type=not any_token)
                if admin and not current_user.is_admin:
                    raise Forbidden("This route is for administrators.")
                if not query_declared:
                    refuse_query_parameters()
                return view(*args, **kwargs)

            query_declared = takes_query(view)
            wrapper.checks_query = True  # after the token check, so anonymous callers get their 401 first

            wrapper = self.doc(security=[BEARER])(wrapper)
            wrapper = self.alt_response(401, response="UNAUTHORIZED", description="Missing, invalid, expired or revoked token")(wrapper)
            if admin:
                wrapper = self.alt_response(403, response="FORBIDDEN", description="Not an administrator")(wrapper)
            return wrapper

        return decorator
