"""Response policy: headers every answer carries, caching rules, CORS only
for configured origins, and no version banners; and the bounds every JSON
body is parsed within."""
import json

from flask import request
from flask.json.provider import DefaultJSONProvider

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
