"""Log output: JSON lines (``LOG_FORMAT=json``, the default) or plain text
(``text``, for reading by eye), for the API, the task consumers and
gunicorn's own logs alike. One line per request and one per task carry
what an on-call engineer correlates by: request id, route (the URL rule,
never the path), status, latency and a pseudonymous user reference, a
keyed digest of the user id that names nobody outside this deployment.
The redaction filter (``core.redaction``) stays on every handler."""
import hashlib
import hmac
import logging
import sys

from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from core import redaction

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_LOG = logging.getLogger("app.request")
ACCESS_ROUTE, ACCESS_USER = "app.route", "app.user_ref"  # WSGI environ keys gunicorn's access log reads


def formatter(kind):
    """The formatter of ``kind`` (``json`` or ``text``)."""
    if kind == "text":
        return logging.Formatter(TEXT_FORMAT)
    if kind != "json":
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {kind!r}")
    return JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"})


def configure(kind, level=logging.INFO):
    """One stderr handler on the root logger in ``kind``'s format, every
    handler there is (gunicorn's, huey's) in the same format and redacted.
    For processes that own their output: ``python app.py``, ``flask worker``."""
    root = logging.getLogger()
    if not any(getattr(handler, "_app_root", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._app_root = True
        root.addHandler(handler)
    root.setLevel(level)
    apply_format(kind)


def apply_format(kind):
    """Put ``kind``'s formatter and the redaction filter on every handler
    there is now (``huey_consumer`` adds its own after the app is built)."""
    chosen = formatter(kind)
    for handler in redaction.all_handlers():
        if handler is not logging.lastResort:
            handler.setFormatter(chosen)
    redaction.install()


def user_reference(user_id, secret):
    """A stable pseudonym of ``user_id`` for logs: 16 hex digits of an HMAC
    keyed from ``secret`` (the app's ``SECRET_KEY``). Without the key it
    cannot be turned back into the id, nor computed from an id."""
    if user_id is None:
        return None
    key = hashlib.sha256(b"log-user-reference\x00" + str(secret).encode()).digest()
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]


def log_request(request_id, method, route, status, latency_ms, user_ref):
    REQUEST_LOG.info("%s %s %s %.1f ms", method, route, status, latency_ms,
                     extra={"request_id": request_id, "method": method, "route": route, "status": status,
                            "latency_ms": latency_ms, "user_ref": user_ref})


class AccessLogger(GunicornLogger):
    """gunicorn's logger with its error and access logs in the app's format.
    An access line names the route the app matched, the status, the time
    and the request id and user reference the app's own line carries; not
    the path, query, address or user agent, which can name a person."""

    kind = "json"

    def setup(self, cfg):
        super().setup(cfg)
        apply_format(self.kind)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status
        status = int(status.split(None, 1)[0]) if isinstance(status, str) else status
        headers = {name.lower(): value for name, value in (resp.headers or ())}
        route = environ.get(ACCESS_ROUTE, "unmatched")
        latency_ms = round(request_time.total_seconds() * 1000, 1)
        self.access_log.info("%s %s %s %.1f ms", req.method, route, status, latency_ms, extra={
            "request_id": headers.get("x-request-id"), "method": req.method, "route": route, "status": status,
            "latency_ms": latency_ms, "bytes": getattr(resp, "sent", None), "user_ref": environ.get(ACCESS_USER)})


def access_logger_class(kind):
    """``AccessLogger`` writing ``kind`` (gunicorn takes a class, not an instance)."""
    return type("AccessLogger", (AccessLogger,), {"kind": kind})
