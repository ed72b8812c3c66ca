"""Extensions created unbound; ``create_app`` binds them."""
from flask import request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_smorest import Api
from peewee import DatabaseProxy

import ratelimit  # noqa: F401  (registers the counted+redis:// storage scheme)


def client_address():
    return request.remote_addr or "unknown"


class EnvelopeApi(Api):
    """flask-smorest, documenting our error envelope and leaving error
    handling to the app-level handlers in ``errors``."""

    def _register_error_handlers(self):
        pass


db = DatabaseProxy()
jwt = JWTManager()
limiter = Limiter(key_func=client_address)
api = EnvelopeApi()
