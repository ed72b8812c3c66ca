"""Hostile input answers 400/422 in the envelope, never 500 (issue 14, item 13),
and the smaller parsing promises of item 20: 415 for a body that is not JSON,
422 for query parameters a route does not take, Retry-After only on refusals."""
import json
import uuid
from datetime import datetime

import pytest

from models import LedgerEntry, User
from tests.consent_helpers import new_user, put_consents
from tests.installation_helpers import new_installation
from tests.device_helpers import add_device, ago, point
from tests.routes import openapi_body_operations

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
# Raw JSON put where a value belongs: each must be refused (400 or 422).
REFUSED_JSON = {
    "nested_100000_deep": DEEP,
    "integer_5000_digits": "1" * 5000,
    "number_401_digits": "1" * 401,
    "decimal_401_digits": "0." + "1" * 401,
}
# Text appended to a string (or standing for a value): each must be refused.
REFUSED_TEXT = {"nul": "\x00", "lone_surrogate": "\ud800"}
OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"]
PLACEHOLDER = "__hostile__"


def valid_bodies(world):
    """A body each operation accepts, so that the hostile part is the only fault."""
    fresh = world["fresh"]
    return {
        "POST /v1/auth/register": ("anonymous", lambda: {"email": f"{fresh()}@example.com",
                                                         "password": "0123456789ab", "birth_date": "1990-01-02",
                                                         "phone": "+8613800000000"}),
        "POST /v1/auth/login": ("anonymous", lambda: {"email": world["user"]["user"]["email"],
                                                      "password": "correct horse battery"}),
        "PATCH /v1/me": ("user", lambda: {"phone": "+8613800000001", "email": f"{fresh()}@example.com"}),
        # the same password again: the user keeps it for every later request
        "POST /v1/me/password": ("user", lambda: {"current_password": "correct horse battery",
                                                  "new_password": "correct horse battery"}),
        "DELETE /v1/me": ("erasable", lambda: {"password": "correct horse battery"}),
        "PUT /v1/me/consents": ("user", lambda: {"consents": {"usage_statistics": True},
                                                 "device_id": world["device"]["id"], "source": "app"}),
        "POST /v1/devices": ("user", lambda: {
            "installation_id": "inst-" + fresh(), "platform": "android", "app_version": "3.12.0",
            "model": "Pixel 9", "manufacturer": "Google", "os_name": "Android", "os_version": "15",
            "carrier": "China Mobile", "resolution": "1080x2424", "locale": "zh-CN", "timezone": "Asia/Shanghai"}),
        "POST /v1/devices/{device_id}/reports": ("user", lambda: {"app_version": "3.12.1", "model": "Pixel 9"}),
        "PUT /v1/devices/{device_id}/push-token": ("user", lambda: {"token": "tok-" + fresh() + "x" * 30,
                                                                    "provider": "fcm",
                                                                    "notifications_enabled": True}),
        "POST /v1/devices/{device_id}/locations": ("user", lambda: point(accuracy_m=12.5,
                                                                         captured_at=ago(seconds=world["tick"]()))),
        "POST /v1/devices/{device_id}/locations/batch": ("user", lambda: {"locations": [
            point(accuracy_m=5, captured_at=ago(seconds=world["tick"]()))]}),
        "POST /v1/admin/policies": ("admin", lambda: {"version": "v" + fresh(), "text": "Policy text.",
                                                      "changed_permissions": ["usage_statistics"],
                                                      "notify": False}),
        "POST /v1/admin/users/{user_id}/guardian-consent": ("admin", lambda: {
            "guardian_name": "Guardian", "relationship": "mother", "evidence_ref": "doc-1"}),
        "DELETE /v1/admin/users/{user_id}": ("admin", lambda: {"confirm": world["user"]["user"]["id"]}),
        "POST /v1/admin/campaigns": ("admin", lambda: {
            "name": "Spring", "kind": "marketing", "title": "Sale", "body": "Today only", "data": {"screen": "home"},
            "audience": {"platforms": ["android"], "app_version_min": "3.0", "os_names": ["Android"],
                         "models": ["Pixel 9"], "carriers": ["China Mobile"], "active_within_days": 30,
                         "area": {"latitude": 31.2, "longitude": 121.4, "radius_km": 10}},
            "send_at": ago(minutes=-60)}),
        "POST /v1/notifications": ("admin", lambda: {"user_id": world["user"]["user"]["id"], "title": "Order",
                                                     "body": "Shipped", "data": {"order": "42"}}),
        "PATCH /v1/admin/staff/{staff_id}": ("admin", lambda: {"role": "campaigns"}),  # the role it has
        "POST /v1/installations": ("anonymous", lambda: {"installation_id": "inst-" + fresh(), "platform": "ios",
                                                         "app_version": "3.12.0"}),
        "PUT /v1/installation/consents": ("installation", lambda: {"consents": {"usage_statistics": True},
                                                                   "source": "app"}),
    }


@pytest.fixture
def world(client, auth, admin):
    user = new_user(client)
    put_consents(client, user["headers"], device_info=True, location=True, precise_location=True,
                 service_push=True, personalization=True)
    device = add_device(client, user["headers"])
    counter = iter(range(1, 10**6))
    return {"user": user, "admin": admin, "device": device, "anonymous": {"headers": {}},
            "installation": new_installation(client),
            "staff": auth.staff("campaigns"),
            "erasable": {"headers": lambda: new_user(client)["headers"]},  # a new account for each erasure
            "fresh": lambda: uuid.uuid4().hex[:12], "tick": lambda: next(counter) % 3000 + 1}


def path_of(label, world):
    return (label.split(" ", 1)[1].replace("{device_id}", world["device"]["id"])
            .replace("{user_id}", world["user"]["user"]["id"])
            .replace("{staff_id}", world["staff"]["user"]["id"]))


def leaves(value, path=()):
    """(path, value) of every scalar in ``value``, and ("key", path) markers
    for every dict key."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (("key", key),), key
            yield from leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, path + (index,))
    else:
        yield path, value


def replaced(body, path, new):
    """A copy of ``body`` with the value (or dict key) at ``path`` replaced."""
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    last = path[-1]
    if isinstance(last, tuple):
        target[new] = target.pop(last[1])
    else:
        target[last] = new
    return body


def is_time(value):
    try:
        return isinstance(value, str) and "T" in value and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


def hostile_variants(body, properties):
    """(name, raw JSON body, must_refuse) for every hostile value at every place of ``body``."""
    places = list(leaves(body)) + [((name,), None) for name in properties if name not in body]
    for path, value in places:
        where = "/".join(str(step[1] if isinstance(step, tuple) else step) for step in path)
        for kind, raw in REFUSED_JSON.items():
            if not isinstance(path[-1], tuple):
                yield f"{where}:{kind}", json.dumps(replaced(body, path, PLACEHOLDER)).replace(
                    json.dumps(PLACEHOLDER), raw), True
        for kind, text in REFUSED_TEXT.items():
            base = value if isinstance(value, str) else "x"
            yield f"{where}:{kind}", json.dumps(replaced(body, path, base + text)), True
        if isinstance(value, str):
            yield f"{where}:trailing_newline", json.dumps(replaced(body, path, value + "\n")), False
        if not isinstance(path[-1], tuple):
            for moment in OUT_OF_RANGE_TIMES:
                yield f"{where}:{moment}", json.dumps(replaced(body, path, moment)), is_time(value)


def assert_no_server_error(response, label, name, must_refuse):
    assert response.status_code < 500, (label, name, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.mimetype == "application/json", (label, name)
        assert set(response.json["error"]) == {"code", "message", "details"}, (label, name)
    if must_refuse:  # a batch refuses a bad item in its answer, keeping the others
        refused = response.status_code in (400, 422) or (response.status_code == 200 and response.json.get("rejected"))
        assert refused, (label, name, response.status_code)


BODY_OPERATIONS = openapi_body_operations()


def test_every_operation_with_a_body_has_a_valid_body_here():
    fake_world = {"fresh": lambda: "x", "tick": lambda: 1, "user": {}, "device": {}, "staff": {}}
    assert sorted(valid_bodies(fake_world)) == sorted(BODY_OPERATIONS)


@pytest.mark.parametrize("label", sorted(BODY_OPERATIONS))
def test_hostile_input_never_answers_5xx(client, world, label):
    role, make_body = valid_bodies(world)[label]
    headers = world[role]["headers"]
    path = path_of(label, world)
    method = label.split(" ", 1)[0]

    def send(data, content_type="application/json", extra_headers=None):
        base = headers() if callable(headers) else headers
        return client.open(path, method=method, data=data, content_type=content_type,
                           headers={**base, **(extra_headers or {})})

    valid = send(json.dumps(make_body()))
    assert valid.status_code < 300, (label, valid.get_data(as_text=True)[:300])
    assert "Retry-After" not in valid.headers
    for name, raw in [("whole_body_nested_array", DEEP), ("whole_body_nested_object", DEEP_OBJECT)]:
        response = send(raw)
        assert_no_server_error(response, label, name, True)
        assert response.status_code == 400 and response.json["error"]["code"] == "malformed_json"
    assert_no_server_error(send(b'{"email": "\xff\xfe"}'), label, "invalid_utf8", True)
    form = send("email=a%40example.com&password=x", content_type="application/x-www-form-urlencoded")
    assert_no_server_error(form, label, "form_encoded", False)
    assert form.status_code == 415 and form.json["error"]["code"] == "unsupported_media_type"
    hostile_agent = send(json.dumps(make_body()), extra_headers={"User-Agent": "Agent\x00/1.0\x01"})
    assert_no_server_error(hostile_agent, label, "user_agent_nul", False)
    for name, raw, must_refuse in hostile_variants(make_body(), BODY_OPERATIONS[label]):
        assert_no_server_error(send(raw), label, name, must_refuse)


def test_nul_in_user_agent_is_stored_without_it(client, user):
    response = client.put("/v1/me/consents", json={"consents": {"usage_statistics": True}},
                          headers={**user["headers"], "User-Agent": "Shop\x00App/3.1\x7f"})
    assert response.status_code == 200
    [entry] = LedgerEntry.select().where(LedgerEntry.user == user["user"]["id"])
    assert entry.user_agent == "ShopApp/3.1"


def test_a_batch_rejects_an_item_with_a_nul_and_keeps_the_others(client, world):
    device = world["device"]["id"]
    bad = point(captured_at=ago(seconds=7)[:-6] + "\x00+00:00")
    response = client.post(f"/v1/devices/{device}/locations/batch", json={"locations": [bad, point()]},
                           headers=world["user"]["headers"])
    assert response.status_code == 200
    assert (response.json["stored"], response.json["rejected"]) == (1, 1)
    assert "captured_at" in response.json["results"][0]["errors"]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_time_out_of_range_after_its_offset_is_422_naming_it(client, world, value):
    device = world["device"]["id"]
    response = client.post(f"/v1/devices/{device}/locations", json=point(captured_at=value),
                           headers=world["user"]["headers"])
    assert response.status_code == 422
    assert "captured_at" in response.json["error"]["details"]
    campaign = client.post("/v1/admin/campaigns", json={"name": "n", "kind": "service", "title": "t", "body": "b",
                                                        "send_at": value}, headers=world["admin"]["headers"])
    assert campaign.status_code == 422
    assert "send_at" in campaign.json["error"]["details"]


def test_lone_surrogate_in_password_is_422_naming_it_and_nothing_is_written(client):
    response = client.post("/v1/auth/register", data='{"email": "a@example.com", "password": "0123456789\\ud800"}',
                           content_type="application/json")
    assert response.status_code == 422
    assert "password" in response.json["error"]["details"]
    assert User.select().count() == 0


def test_lone_surrogate_in_device_model_is_422_naming_it(client, user):
    body = json.dumps({"installation_id": "inst-surrogate", "platform": "ios", "app_version": "1.0",
                       "model": "\ud800"})
    response = client.post("/v1/devices", data=body, content_type="application/json", headers=user["headers"])
    assert response.status_code == 422
    assert "model" in response.json["error"]["details"]


def test_too_deep_json_on_login_is_400_with_the_reason(client):
    response = client.post("/v1/auth/login", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"
    assert response.json["error"]["details"] == {"body": ["Nested deeper than 32 levels."]}


def test_json_nested_to_the_limit_is_read_and_one_deeper_is_not(client):
    def body(depth):  # the object is level 1, "pad" holds the rest
        return '{"email": "a@example.com", "password": "p", "pad": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    at_limit = client.post("/v1/auth/login", data=body(32), content_type="application/json")
    assert at_limit.status_code == 422 and "pad" in at_limit.json["error"]["details"]
    beyond = client.post("/v1/auth/login", data=body(33), content_type="application/json")
    assert beyond.status_code == 400 and beyond.json["error"]["code"] == "malformed_json"


def trailing_newline_cases(world):
    device = world["device"]["id"]
    user, admin = world["user"]["headers"], world["admin"]["headers"]
    campaign = {"name": "n", "kind": "service", "title": "t", "body": "b"}
    return {
        "installation_id": ("POST", "/v1/devices", user,
                            {"installation_id": "inst-newline\n", "platform": "ios", "app_version": "1.0"}),
        "app_version": ("POST", f"/v1/devices/{device}/reports", user, {"app_version": "1.0\n"}),
        "resolution": ("POST", f"/v1/devices/{device}/reports", user, {"app_version": "1.0",
                                                                      "resolution": "1080x2400\n"}),
        "locale": ("POST", f"/v1/devices/{device}/reports", user, {"app_version": "1.0", "locale": "zh-CN\n"}),
        "token": ("PUT", f"/v1/devices/{device}/push-token", user, {"token": "t" * 40 + "\n"}),
        "phone": ("PATCH", "/v1/me", user, {"phone": "+8613800000000\n"}),
        "version": ("POST", "/v1/admin/policies", admin, {"version": "v2\n", "text": "t",
                                                          "changed_permissions": []}),
        "audience": ("POST", "/v1/admin/campaigns", admin, {**campaign, "audience": {"app_version_min": "3.0\n"}}),
        "data": ("POST", "/v1/admin/campaigns", admin, {**campaign, "data": {"screen\n": "home"}}),
    }


@pytest.mark.parametrize("field", ["installation_id", "app_version", "resolution", "locale", "token", "phone",
                                   "version", "audience", "data"])
def test_trailing_newline_is_refused_naming_the_field(client, world, field):
    method, path, headers, body = trailing_newline_cases(world)[field]
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]


def test_phone_with_trailing_newline_is_refused_at_registration(client):
    response = client.post("/v1/auth/register", json={"email": "n@example.com", "password": "0123456789ab",
                                                      "phone": "+8613800000000\n"})
    assert response.status_code == 422
    assert "phone" in response.json["error"]["details"]


def test_form_encoded_body_is_415(client):
    response = client.post("/v1/auth/register", data={"email": "f@example.com", "password": "0123456789ab"})
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert User.select().count() == 0


def test_missing_body_is_still_422_naming_the_fields(client):
    response = client.post("/v1/auth/login")
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"email", "password"}


@pytest.mark.parametrize("path,role", [("/v1/me?x=1", "user"), ("/v1/devices?x=1", "user"),
                                       ("/v1/admin/campaigns?status=x", "admin"), ("/v1/permissions?x=1", "anonymous"),
                                       ("/v1/me/consents?verbose=1", "user")])
def test_unknown_query_parameter_on_a_route_without_any_is_422(client, world, path, role):
    response = client.get(path, headers=world[role]["headers"])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert set(response.json["error"]["details"]) == {path.split("?")[1].split("=")[0]}


def test_query_parameter_without_a_token_is_still_401(client):
    assert client.get("/v1/me?x=1").status_code == 401


def test_successful_answers_carry_no_retry_after(client, world):
    device = world["device"]["id"]
    answers = [
        client.post("/v1/auth/register", json={"email": "r@example.com", "password": "0123456789ab"}),
        client.post("/v1/auth/login", json={"email": "r@example.com", "password": "0123456789ab"}),
        client.post(f"/v1/devices/{device}/locations", json=point(), headers=world["user"]["headers"]),
    ]
    for response in answers:
        assert response.status_code < 300
        assert "X-RateLimit-Limit" in response.headers
        assert "Retry-After" not in response.headers
    refused = client.post("/v1/auth/login", json={"email": "r@example.com", "password": "wrong password"})
    assert refused.status_code == 401 and "Retry-After" not in refused.headers


def test_a_refusal_of_the_limiter_still_carries_retry_after(make_app):
    client = make_app(RATELIMIT_REGISTER="1 per minute").test_client()
    assert client.post("/v1/auth/register", json={"email": "a@example.com",
                                                  "password": "0123456789ab"}).status_code == 201
    limited = client.post("/v1/auth/register", json={"email": "b@example.com", "password": "0123456789ab"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path,role", [
    ("/v1/unsubscribe/abc%00def", "anonymous"),
    ("/v1/me/locations?cursor=%00", "user"),
    ("/v1/me/locations?limit=" + "9" * 5000, "user"),
    ("/v1/me/consents/history?cursor=MTA%00", "user"),
    ("/v1/admin/stats/devices?by=model%00", "admin"),
    ("/v1/devices/%00", "user"),
])
def test_hostile_query_and_path_values_never_answer_5xx(client, world, path, role):
    for method in ("GET", "POST"):
        response = client.open(path, method=method, headers=world[role]["headers"])
        assert_no_server_error(response, path, method, False)
