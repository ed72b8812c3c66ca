"""One JSON error envelope for every error the API can return (README,
"Errors"): ``{"error": {"code", "message", "details"}}``."""
import logging
import re
import uuid

import peewee
import redis.exceptions
from flask import g, jsonify, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

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


class ApiError(Exception):
    """An error a view or domain function raises to answer in the envelope."""

    status = 400
    code = "bad_request"
    message = "The request cannot be served."

    def __init__(self, message=None, *, code=None, status=None, details=None, headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.headers = headers or {}


class NotFound(ApiError):
    status, code, message = 404, "not_found", "No such resource."


class Conflict(ApiError):
    status, code, message = 409, "conflict", "The request conflicts with the current state."


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "You may not do this."


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "Authentication failed."


class ServiceUnavailable(ApiError):
    status, code, message = 503, "service_unavailable", "A part of the service is unavailable."


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_error", "The request has invalid fields."

    def __init__(self, details, message=None):
        super().__init__(message, details=details)


class ConsentRequired(ApiError):
    status, code = 403, "consent_required"

    def __init__(self, permission, reason=None):
        details = {"permission": permission}
        if reason:
            details["reason"] = reason
        super().__init__(f"Consent for '{permission}' is not in effect.", details=details)


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


def handle_api_error(error):
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def handle_database_unavailable(error):
    log.warning("database unavailable, request_id=%s: %s", getattr(g, "request_id", None), error)
    return error_response(
        503, "database_unavailable", "The service cannot reach its database; try again shortly.",
        headers={"Retry-After": "5"},
    )


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
    log.warning("redis unavailable, request_id=%s: %s", getattr(g, "request_id", None), error)
    return error_response(
        503, "redis_unavailable", "The service cannot reach its queue and counters; try again shortly.",
        headers={"Retry-After": "5"},
    )


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


def expose_request_id(response):
    if getattr(g, "request_id", None):
        response.headers["X-Request-ID"] = g.request_id
    return response


def register_error_handlers(app):
    app.before_request(assign_request_id)
    app.after_request(expose_request_id)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(peewee.IntegrityError, handle_integrity_error)
    app.register_error_handler(peewee.OperationalError, handle_database_unavailable)
    app.register_error_handler(peewee.InterfaceError, handle_database_unavailable)
    app.register_error_handler(redis.exceptions.ConnectionError, handle_redis_unavailable)
    app.register_error_handler(redis.exceptions.TimeoutError, handle_redis_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
