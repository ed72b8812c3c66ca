"""The app as gunicorn serves it in the benchmarks, plus one ceiling route
that decodes the same JWT and answers JSON without any query."""
from flask import jsonify, request
from flask_jwt_extended import decode_token

from bench import appside


def app():
    application = appside.create_app()

    @application.post("/bench/jwt")
    def jwt_only():
        claims = decode_token(request.headers.get("Authorization", "")[len("Bearer "):])
        return jsonify(sub=claims["sub"])

    return application
