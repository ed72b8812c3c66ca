"""The app's routes, read from its URL map, for tests that must cover all of them."""
import re
import tempfile

from app import create_app

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/assets/<path:filename>"),
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/installations"),
    ("GET", "/v1/permissions"),
    ("GET", "/v1/policy"),
    ("GET", "/v1/consent-receipts/keys"),
    ("GET", "/v1/unsubscribe/<token>"),
    ("POST", "/v1/unsubscribe/<token>"),
}
SAMPLE = {"uuid": "0b6b1b7e-3f4a-4f7e-9a59-6f3c5d1f2a10", "int": "1", "default": "0b6b1b7e-3f4a-4f7e-9a59-6f3c5d1f2a10"}


def _app(tmp):
    return create_app({"INSTANCE_PATH": tmp, "DATABASE_URL": "sqlite:///:memory:",
                       "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40})


def openapi_operations():
    """Labels ("GET /v1/...") of every operation in the OpenAPI document."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = _app(tmp).test_client().get("/openapi.json").json
    methods = ("get", "put", "post", "delete", "patch")
    return sorted(f"{m.upper()} {path}" for path, item in spec["paths"].items() for m in item if m in methods)


def openapi_body_operations():
    """{"POST /v1/...": names of the body's top-level properties} for every
    operation of the OpenAPI document that takes a JSON body."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = _app(tmp).test_client().get("/openapi.json").json
    schemas = spec["components"]["schemas"]
    operations = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"]
                operations[f"{method.upper()} {path}"] = sorted(schemas[ref.rsplit("/", 1)[1]]["properties"])
    return operations


def _rules():
    with tempfile.TemporaryDirectory() as tmp:
        return list(_app(tmp).url_map.iter_rules())


def all_routes():
    """(method, rule, sample path) for every route of the API (the console's
    pages, HTML behind a cookie, have ``console_routes``)."""
    routes = []
    for rule in _rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, sample_path(rule)))
    return sorted(routes)


def console_routes():
    """(method, rule, sample path, endpoint) for every route of the console."""
    with tempfile.TemporaryDirectory() as tmp:
        app = _app(tmp)
        views = dict(app.view_functions)
        rules = list(app.url_map.iter_rules())
    return sorted((method, rule.rule, sample_path(rule), rule.endpoint, views[rule.endpoint])
                  for rule in rules if rule.endpoint.startswith("console.")
                  for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))


def sample_path(rule):
    def fill(match):
        converter = match.group(1) or "default"
        return SAMPLE.get(converter, SAMPLE["default"])

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", fill, rule.rule)
