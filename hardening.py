"""Response policy: headers every answer carries, caching rules, CORS only
for configured origins, and no version banners."""
from flask import request

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


def register(app):
    app.after_request(secure_headers)
    init_cors(app)
