"""Extensions created unbound; ``create_app`` binds them."""
import ipaddress

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_smorest import Api
from flask_smorest.spec import prepare_response

from core import ratelimit  # noqa: F401  (registers the counted+redis:// storage scheme)
from core.openapi import ContractPlugin


def client_address():
    """The address per-address limits count. An IPv6 client counts by its
    /64: a phone or a home network gets one whole, so counting single
    addresses would let one client rotate through 2**64 of them."""
    address = request.remote_addr or "unknown"
    if ":" in address:
        try:
            return str(ipaddress.ip_network(address + "/64", strict=False))
        except ValueError:
            pass
    return address


def retry_after_only_on_refusals(response):
    # Flask-Limiter adds Retry-After to every answer of a limited route; it
    # means "come back later", so only a 429 or a 503 may carry it.
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


class AppLimiter(Limiter):
    def init_app(self, app, *args, **kwargs):
        # Flask runs after_request hooks last-registered first: registered
        # before Flask-Limiter's own, this one sees the headers it added.
        app.after_request(retry_after_only_on_refusals)
        super().init_app(app, *args, **kwargs)


class EnvelopeApi(Api):
    """flask-smorest, documenting our error envelope and leaving error
    handling to the app-level handlers in ``core.http``."""

    def _register_error_handlers(self):
        pass

    def _init_spec(self, *, marshmallow_plugin=None, extra_plugins=None, **kwargs):
        # After flask-smorest's own plugins: the contract plugin reads the
        # operations once their schemas are component references.
        marshmallow_plugin = marshmallow_plugin or MarshmallowPlugin()
        super()._init_spec(marshmallow_plugin=marshmallow_plugin,
                           extra_plugins=[*(extra_plugins or ()), ContractPlugin(marshmallow_plugin)], **kwargs)

    def _register_responses(self):
        super()._register_responses()
        # Every 401 names the scheme (RFC 6750 §3; core.http.tidy_status_answers)
        response = {"description": "Unauthorized", "schema": self.ERROR_SCHEMA, "headers": {"WWW-Authenticate": {
            "description": '`Bearer`, with `error="invalid_token"` when the token sent cannot be used',
            "required": True, "schema": {"type": "string"}}}}
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response("UNAUTHORIZED", response, lazy=True)


jwt = JWTManager()
limiter = AppLimiter(key_func=client_address)
api = EnvelopeApi()
