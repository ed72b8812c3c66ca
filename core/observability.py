"""Every request timed, counted (``core.metrics``) and logged in one line
(``core.logs``). The hooks go first, so that a request refused by a later
hook (a database that does not answer) is timed and counted too."""
import time

from flask import current_app, g, request
from flask_jwt_extended import get_jwt

from core import logs, metrics


def start_timer():
    g.request_started = time.perf_counter()


def _user_id():
    """The subject of the request's verified token, or None."""
    try:
        return get_jwt().get("sub")
    except RuntimeError:  # no token was verified for this request
        return None


def count_and_log(response):
    started = g.pop("request_started", None)
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else metrics.UNMATCHED_ROUTE
    status = response.status_code
    metrics.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
    metrics.HTTP_LATENCY.labels(request.method, route).observe(seconds)
    user_ref = logs.user_reference(_user_id(), current_app.config["SECRET_KEY"])
    request.environ[logs.ACCESS_ROUTE], request.environ[logs.ACCESS_USER] = route, user_ref
    logs.log_request(g.get("request_id"), request.method, route, status, round(seconds * 1000, 1), user_ref)
    return response


def register(app):
    app.before_request(start_timer)
    app.after_request(count_and_log)  # after_request hooks run last-registered first: this one runs last
