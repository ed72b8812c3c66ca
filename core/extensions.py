"""Extensions created unbound; ``create_app`` binds them."""
import ipaddress

from flask import request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_smorest import Api

from core import ratelimit  # noqa: F401  (registers the counted+redis:// storage scheme)


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


jwt = JWTManager()
limiter = AppLimiter(key_func=client_address)
api = EnvelopeApi()
