"""Liveness, readiness and metrics, at the root for load balancers and
Prometheus."""
import hmac
import ipaddress

from flask import Blueprint, Response, current_app, jsonify, request

from core import metrics, readiness
from core.http import error_response

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """200 naming each check ok, or 503 ``not_ready`` naming every check
    that failed and why (``details``)."""
    results = readiness.run()
    failed = readiness.failures(results)
    if failed:
        return error_response(503, "not_ready", f"Not ready: {', '.join(failed)}.", failed)
    return jsonify(status="ok", **{result.name: "ok" for result in results})


def _is_loopback(address):
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def metrics_refusal():
    """Why this scrape is refused, as a response, or None. With
    ``METRICS_TOKEN`` set, its bearer token is required from anywhere;
    without, only loopback clients are served unless
    ``METRICS_ALLOW_REMOTE`` opens it."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return error_response(401, "authorization_required", "The metrics token is required.",
                                  headers={"WWW-Authenticate": "Bearer"})
        return None
    if not current_app.config["METRICS_ALLOW_REMOTE"] and not _is_loopback(request.remote_addr):
        return error_response(403, "forbidden", "Metrics are served to local clients only; set METRICS_TOKEN.")
    return None


@blp.get("/metrics")
def prometheus_metrics():
    """Prometheus text format: every process's counters and the live gauges."""
    refused = metrics_refusal()
    if refused is not None:
        return refused
    body = metrics.exposition(current_app.extensions.get("metrics_live"))
    response = Response(body, mimetype=None, content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
