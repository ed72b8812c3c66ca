"""HTTP plumbing: one JSON error envelope for every error the API can
return (``{"error": {"code", "message", "details"}}``) with the status of
each domain error, request ids, headers every answer carries, caching
rules, CORS only for configured origins, and the bounds every JSON body is
parsed within."""
import json
import logging
import re
import uuid
from contextvars import ContextVar

import peewee
import redis.exceptions
from flask import g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from core.errors import (
    BadRequest,
    Conflict,
    ConsentRequired,
    DomainError,
    Forbidden,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# The id of the request being served, for domain code (the audit log), which
# reads no ``flask.g``; None outside a request (a command, a worker task).
_request_id = ContextVar("request_id", default=None)



PRIVATE_PREFIXES = ("/v1/me", "/v1/auth", "/v1/devices", "/v1/admin", "/v1/notifications", "/v1/unsubscribe")
PUBLIC_CACHEABLE = ("/v1/permissions", "/v1/policy")


def secure_headers(response):
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if request.path.startswith(PRIVATE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    elif request.path.startswith(PUBLIC_CACHEABLE) and response.status_code == 200:
        response.headers["Cache-Control"] = "public, max-age=300"
    return response


def init_cors(app):
    """CORS stays off unless CORS_ORIGINS lists the origins allowed."""
    origins = [o.strip() for o in (app.config.get("CORS_ORIGINS") or "").split(",") if o.strip()]
    if not origins:
        return
    from flask_cors import CORS

    CORS(app, resources={r"/v1/*": {"origins": origins}}, supports_credentials=False, max_age=600,
         allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
         expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"])


MAX_JSON_DEPTH = 32
MAX_JSON_NUMBER_CHARS = 100


class JsonLimitExceeded(json.JSONDecodeError):
    """Valid JSON, but beyond what any request of this API needs."""

    def __init__(self, reason):
        super().__init__(reason, "(request body)", 0)  # webargs reads an empty doc as "no body"


def _bounded_number(kind):
    # Python's int() is quadratic in the digits (and refuses more than 4,300):
    # no field here needs more than a few dozen characters.
    def parse(text):
        if len(text) > MAX_JSON_NUMBER_CHARS:
            raise JsonLimitExceeded(f"A number is longer than {MAX_JSON_NUMBER_CHARS} characters.")
        return kind(text)

    return parse


_parse_int, _parse_float = _bounded_number(int), _bounded_number(float)


def _depth_exceeds(value, limit):
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def load_json(text):
    """``json.loads`` for request bodies: nesting at most MAX_JSON_DEPTH
    levels, numbers at most MAX_JSON_NUMBER_CHARS characters; beyond them
    ``JsonLimitExceeded`` (a ``JSONDecodeError``), never a RecursionError."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
    except RecursionError:
        raise JsonLimitExceeded(f"Nested deeper than {MAX_JSON_DEPTH} levels.") from None
    # Only a document with more brackets than the limit can be too deep.
    opening = (b"[", b"{") if isinstance(text, bytes) else ("[", "{")
    if sum(map(text.count, opening)) > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise JsonLimitExceeded(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with ``load_json`` (``request.get_json``)."""

    sort_keys = False

    def loads(self, s, **kwargs):
        return load_json(s)


def register(app):
    app.json = BoundedJSONProvider(app)
    app.after_request(secure_headers)
    init_cors(app)


# -- the error envelope ----------------------------------------------------------

class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "Field -> messages, or facts about the error."})


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


def error_response(status, code, message, details=None, headers=None):
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_locations(messages):
    """webargs nests messages by location ({"json": {...}, "query": {...}});
    clients want field -> messages."""
    if not isinstance(messages, dict):
        return {"_body": messages}
    flat = {}
    for location, errors in messages.items():
        if isinstance(errors, dict):
            flat.update(errors)
        else:
            flat[f"_{location}"] = errors
    return flat


def handle_http_exception(error):
    status = error.code or 500
    code = CODES.get(status, "error")
    message = error.description or error.name
    details = {}
    headers = {}
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        details = _flatten_locations(data["messages"])
        message = "The request has invalid fields."
    elif status == 400 and "messages" in data:
        code = "malformed_json"
        message = "The request body is not JSON this API reads (see details)."
        details = {"body": data["messages"].get("json") or ["Invalid JSON body."]}
    elif status == 405:
        details = {"allowed": sorted(error.valid_methods or [])}
    elif status == 429:
        message = "Too many requests; slow down."
        details = {"limit": str(getattr(error, "description", ""))}
    if data.get("headers"):
        headers.update(data["headers"])
    response = error.get_response()
    for name in ("Allow", "Retry-After"):
        if name in response.headers:
            headers[name] = response.headers[name]
    return error_response(status, code, message, details, headers)


STATUSES = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    ConsentRequired: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    ValidationFailed: 422,
    ServiceUnavailable: 503,
}


def status_of(error):
    """The status that answers a domain error: its nearest class listed in ``STATUSES``."""
    for kind in type(error).__mro__:
        if kind in STATUSES:
            return STATUSES[kind]
    return 400


def handle_domain_error(error):
    return error_response(status_of(error), error.code, error.message, error.details, error.headers)


def _unavailable(part, code, message, error):
    """503 with Retry-After: a part the service needs is out of reach."""
    log.warning("%s unavailable, request_id=%s: %s", part, getattr(g, "request_id", None), error)
    return error_response(503, code, message, headers={"Retry-After": "5"})


def handle_database_unavailable(error):
    return _unavailable("database", "database_unavailable",
                        "The service cannot reach its database; try again shortly.", error)


def handle_integrity_error(error):
    """A unique or foreign key the request ran into that its own code did
    not answer (a race, usually): the serial answer is a conflict. The
    database's message is not logged: PostgreSQL's DETAIL quotes the
    conflicting value, a push token or an email."""
    log.warning("integrity error answered 409, request_id=%s, %s %s, constraint=%s", getattr(g, "request_id", None),
                request.method, request.path, _constraint_name(error))
    return error_response(409, "conflict", "The request conflicts with the current state; retry it or change it.")


def _constraint_name(error):
    """psycopg2 names the constraint; SQLite's message names only columns."""
    driver_error = error.args[0] if error.args else None
    return getattr(getattr(driver_error, "diag", None), "constraint_name", None)


def handle_redis_unavailable(error):
    return _unavailable("redis", "redis_unavailable",
                        "The service cannot reach its queue and counters; try again shortly.", error)


def handle_unexpected(error):
    request_id = getattr(g, "request_id", None)
    log.exception("unhandled error, request_id=%s, %s %s", request_id, request.method, request.path)
    return error_response(
        500,
        "internal_error",
        "Something went wrong on our side. Quote the request id if you contact us.",
        {"request_id": request_id},
    )


def assign_request_id():
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_id_token = _request_id.set(g.request_id)


def release_request_id(_exc):
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            _request_id.reset(token)
        except ValueError:  # torn down in another context than it was set in
            _request_id.set(None)


def current_request_id():
    """The id of the request being served; None outside a request (a CLI command, a task)."""
    return _request_id.get()


def expose_request_id(response):
    if getattr(g, "request_id", None):
        response.headers["X-Request-ID"] = g.request_id
    return response


def register_error_handlers(app):
    """The error envelope for every error, routing 404/405 and token errors included, and request ids."""
    app.before_request(assign_request_id)
    app.teardown_request(release_request_id)
    app.after_request(expose_request_id)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(peewee.IntegrityError, handle_integrity_error)
    app.register_error_handler(peewee.OperationalError, handle_database_unavailable)
    app.register_error_handler(peewee.InterfaceError, handle_database_unavailable)
    app.register_error_handler(redis.exceptions.ConnectionError, handle_redis_unavailable)
    app.register_error_handler(redis.exceptions.TimeoutError, handle_redis_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
