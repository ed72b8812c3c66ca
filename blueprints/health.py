"""Liveness and readiness, at the root for load balancers."""
from flask import Blueprint, jsonify

from core.http import error_response
from models.base import db
from push import sender

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    try:
        db.execute_sql("SELECT 1")
    except Exception as error:  # any driver error means not ready
        return error_response(503, "not_ready", "The database is not reachable.", {"database": type(error).__name__})
    fault = sender.provider().configuration_fault()
    if fault is not None:
        return error_response(503, "not_ready", "The push provider cannot be built from its configuration.",
                              {"push": fault})
    return jsonify(status="ok", database="ok", push="ok")
