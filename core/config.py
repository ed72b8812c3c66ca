"""Configuration in layers: defaults, then environment variables, then the
dict a caller (usually a test) passes to ``create_app``."""
import os
import secrets
from datetime import timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class ConfigError(RuntimeError):
    """Start-up refused because the configuration is unusable."""


MIN_SECRET_BYTES = 32
SECRET_NAMES = ("SECRET_KEY", "JWT_SECRET_KEY")

# name -> default; the default's type says how an environment value is parsed.
DEFAULTS = {
    "APP_ENV": "development",
    "DATABASE_URL": None,  # None: SQLite file under the instance folder
    "DB_POOL_SIZE": 16,
    "DB_CONNECT_TIMEOUT_SECONDS": 5,
    "REDIS_URL": None,
    "REDIS_TIMEOUT_SECONDS": 2.0,
    "SECRET_KEY": None,
    "JWT_SECRET_KEY": None,
    "ACCESS_TOKEN_MINUTES": 15,
    "REFRESH_TOKEN_DAYS": 30,
    "REFRESH_REUSE_GRACE_SECONDS": 10,
    "PUSH_PROVIDER": "log",
    "FCM_CREDENTIALS_FILE": None,
    "FCM_PROJECT_ID": None,
    "FCM_ENDPOINT": None,
    "PUSH_RATE_PER_MINUTE": 500_000,
    "PUSH_SLICE_SIZE": 500,
    "PUSH_SLICE_LEASE_SECONDS": 120,
    "PUSH_RETRY_BASE_SECONDS": 2.0,
    "PUSH_RETRY_MAX_SECONDS": 300.0,
    "PUSH_INLINE_RETRY_MAX_SECONDS": 5.0,
    "LOCATION_RETENTION_DAYS": 90,
    "DEVICE_REPORT_RETENTION_DAYS": 180,
    "INSTALLATION_RETENTION_DAYS": 180,
    "STALE_GRANT_GRACE_DAYS": 30,
    "STATS_MIN_GROUP_SIZE": 10,
    "MAX_DEVICES_PER_USER": 100,
    # per address: sized for a carrier-grade NAT address shared by thousands of phones (README)
    "RATELIMIT_LOGIN": "100 per 15 minutes",
    "RATELIMIT_LOGIN_ACCOUNT": "5 per 15 minutes",
    "RATELIMIT_REGISTER": "500 per hour",
    "RATELIMIT_INSTALLATION": "500 per hour",
    "RATELIMIT_REFRESH": "60 per hour",
    "RATELIMIT_UNSUBSCRIBE": "30 per minute",
    "UNSUBSCRIBE_TOKEN_DAYS": 90,
    "RATELIMIT_LOCATIONS": "120 per minute",
    "RATELIMIT_LOCATION_BATCHES": "30 per minute",
    "CORS_ORIGINS": None,
    # Consent receipts (consent/receipts.py): the Ed25519 key that signs them, as a PEM
    # file's path or PEM text (generated into instance/ outside production), and who the
    # receipts name as the controller of the personal data and where its policy is.
    "RECEIPT_SIGNING_KEY": None,
    "RECEIPT_JURISDICTION": "CN",
    "RECEIPT_CONTROLLER_NAME": "",
    "RECEIPT_CONTROLLER_CONTACT": "",
    "RECEIPT_CONTROLLER_ADDRESS": "",
    "RECEIPT_CONTROLLER_EMAIL": "",
    "RECEIPT_CONTROLLER_PHONE": "",
    "RECEIPT_POLICY_URL": "",
    "PASSWORD_HASH_TIME_COST": 3,
    "PASSWORD_HASH_MEMORY_KIB": 65536,
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "WORKER_THREADS": 2,
    # the heartbeat task runs every minute: three missed beats mean no consumer takes tasks
    "WORKER_HEARTBEAT_SECONDS": 180,
    "LOG_FORMAT": "json",  # or "text"; make run is the production server, so its logs are too
    "METRICS_TOKEN": None,  # unset: /metrics answers loopback clients only
    "METRICS_ALLOW_REMOTE": False,
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto/-Host
    # (werkzeug's ProxyFix, one hop each); 0 trusts no such header.
    "PROXY_FIX_HOPS": 0,
}


def _parse(name, raw, default):
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, (int, float)):
        kind = type(default)
        try:
            return kind(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{name} must be {noun}, got {raw!r}") from None
    return raw


def from_environment(environ=None):
    """Defaults overlaid with whatever the environment sets."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, default in DEFAULTS.items():
        raw = environ.get(name)
        values[name] = default if raw in (None, "") else _parse(name, raw, default)
    return values


def _instance_secret(instance_path, name):
    """A secret generated on first start and kept under ``instance/``."""
    path = os.path.join(instance_path, name.lower())
    try:
        with open(path) as handle:
            value = handle.read().strip()
        if len(value.encode()) >= MIN_SECRET_BYTES:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def resolve_secrets(config, instance_path):
    """Production needs real secrets; elsewhere they are generated once."""
    for name in SECRET_NAMES:
        value = config.get(name)
        if config["APP_ENV"] == "production":
            if not value:
                raise ConfigError(f"{name} is required when APP_ENV=production")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{name} must be at least {MIN_SECRET_BYTES} bytes when APP_ENV=production"
                )
        elif not value:
            config[name] = _instance_secret(instance_path, name)
    resolve_receipt_key(config, instance_path)


RECEIPT_KEY_FILE = "receipt_signing_key.pem"


def _instance_receipt_key(instance_path):
    """An Ed25519 key generated on first start and kept under ``instance/``."""
    path = os.path.join(instance_path, RECEIPT_KEY_FILE)
    if not os.path.exists(path):
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path


def resolve_receipt_key(config, instance_path):
    """``RECEIPT_SIGNING_KEY`` (PEM text or a PEM file's path) becomes the
    PEM text of an unencrypted Ed25519 private key, or start-up stops: a
    receipt signed with a key nobody can check proves nothing. Production
    needs one; elsewhere it is generated once."""
    value = config.get("RECEIPT_SIGNING_KEY")
    if not value:
        if config["APP_ENV"] == "production":
            raise ConfigError("RECEIPT_SIGNING_KEY is required when APP_ENV=production (an Ed25519 private key, "
                              "PEM text or a PEM file's path)")
        value = _instance_receipt_key(instance_path)
    pem = value
    if "-----BEGIN" not in value:
        try:
            with open(value) as handle:
                pem = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"RECEIPT_SIGNING_KEY cannot be read: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("RECEIPT_SIGNING_KEY must be an unencrypted Ed25519 private key in PEM")
    config["RECEIPT_SIGNING_KEY"] = pem


def derived_settings(config, instance_path):
    """Settings of the libraries we use, computed from our own names."""
    database_url = config["DATABASE_URL"] or "sqlite:///" + os.path.join(instance_path, "app.db")
    redis_url = config["REDIS_URL"]
    # Every Redis client gives up after this: an unreachable Redis is a 503, never a hung request.
    redis_options = {"socket_connect_timeout": config["REDIS_TIMEOUT_SECONDS"],
                     "socket_timeout": config["REDIS_TIMEOUT_SECONDS"]}
    return {
        "DATABASE_URL": database_url,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "PROPAGATE_EXCEPTIONS": False,
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        # The API reads tokens from the Authorization header only; the console
        # reads its own from a cookie (each side names its location when it
        # verifies, so a console cookie never authenticates /v1).
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ACCESS_COOKIE_NAME": "console_session",
        "JWT_ACCESS_COOKIE_PATH": "/console",
        "JWT_ACCESS_CSRF_COOKIE_NAME": "console_csrf",
        "JWT_ACCESS_CSRF_COOKIE_PATH": "/console",
        "JWT_COOKIE_SAMESITE": "Strict",
        "JWT_COOKIE_SECURE": config["APP_ENV"] == "production",
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_CSRF_CHECK_FORM": True,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["REFRESH_TOKEN_DAYS"]),
        # ratelimit.CountedRedisStorage: the rate-limit headers cost no extra round trips
        "RATELIMIT_STORAGE_URI": "counted+" + redis_url if redis_url else "memory://",
        "RATELIMIT_STORAGE_OPTIONS": redis_options if redis_url else {},
        "REDIS_CLIENT_OPTIONS": redis_options,
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": config.get("RATELIMIT_KEY_PREFIX", "mobile-backend"),
        "API_TITLE": "Consent-aware mobile backend",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",  # blueprints/docs.py, from the swagger-ui-bundle-v2 package
    }
