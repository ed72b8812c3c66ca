"""Every input limit, just inside and just outside (issue 7)."""
from datetime import datetime, timedelta, timezone

import pytest

from models import Location
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, ago, device_body, iso, point


@pytest.fixture
def ready(client, user, admin):
    put_consents(client, user["headers"], location=True, device_info=True, service_push=True)
    device = add_device(client, user["headers"])
    return {"user": user, "admin": admin, "device": device["id"]}


def now_plus(**delta):
    return iso(datetime.now(timezone.utc) + timedelta(**delta))


def register_body(**fields):
    return {"email": "limit-" + str(abs(hash(str(fields))))[:10] + "@example.com", "password": "p" * 10, **fields}


def campaign(**fields):
    return {"name": "n", "kind": "service", "title": "t", "body": "b", **fields}


# (name, method, path, body inside, body outside, who); "{device}" is the user's device
LIMITS = [
    ("password min 10", "POST", "/v1/auth/register", register_body(password="p" * 10),
     register_body(password="p" * 9), None),
    ("password max 1024", "POST", "/v1/auth/register", register_body(password="p" * 1024),
     register_body(password="p" * 1025), None),
    ("email max 254", "POST", "/v1/auth/register",
     register_body(email="a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"),
     register_body(email="a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"), None),
    ("installation id min 8", "POST", "/v1/devices", device_body(installation_id="a" * 8),
     device_body(installation_id="a" * 7), "user"),
    ("installation id max 128", "POST", "/v1/devices", device_body(installation_id="b" * 128),
     device_body(installation_id="b" * 129), "user"),
    ("model max 64", "POST", "/v1/devices", device_body(model="m" * 64), device_body(model="m" * 65), "user"),
    ("app version max 32", "POST", "/v1/devices", device_body(app_version="1." * 3 + "1" * 26),
     device_body(app_version="1." * 3 + "1" * 27), "user"),
    ("resolution digits", "POST", "/v1/devices", device_body(resolution="99999x99999"),
     device_body(resolution="100000x99999"), "user"),
    ("push token min 16", "PUT", "/v1/devices/{device}/push-token", {"token": "t" * 16}, {"token": "t" * 15}, "user"),
    ("push token max 4096", "PUT", "/v1/devices/{device}/push-token", {"token": "t" * 4096}, {"token": "t" * 4097},
     "user"),
    ("latitude max 90", "POST", "/v1/devices/{device}/locations", point(90, 0), point(90.000001, 0), "user"),
    ("latitude min -90", "POST", "/v1/devices/{device}/locations", point(-90, 1), point(-90.000001, 1), "user"),
    ("longitude max 180", "POST", "/v1/devices/{device}/locations", point(1, 180), point(1, 180.000001), "user"),
    ("accuracy max 100 km", "POST", "/v1/devices/{device}/locations", point(2, 2, accuracy_m=100_000),
     point(2, 2, accuracy_m=100_000.1), "user"),
    ("captured at most 5 minutes ahead", "POST", "/v1/devices/{device}/locations",
     lambda: point(3, 3, captured_at=now_plus(minutes=4, seconds=50)),
     lambda: point(3, 3, captured_at=now_plus(minutes=5, seconds=10)), "user"),
    ("captured within retention", "POST", "/v1/devices/{device}/locations",
     lambda: point(4, 4, captured_at=ago(days=89, hours=23)),
     lambda: point(4, 4, captured_at=ago(days=90, minutes=10)), "user"),
    ("batch max 500", "POST", "/v1/devices/{device}/locations/batch",
     lambda: {"locations": [point(5, 5, captured_at=ago(seconds=i + 1)) for i in range(500)]},
     lambda: {"locations": [point(5, 5, captured_at=ago(seconds=i + 1)) for i in range(501)]}, "user"),
    ("batch min 1", "POST", "/v1/devices/{device}/locations/batch", {"locations": [point(6, 6)]},
     {"locations": []}, "user"),
    ("page limit max 100", "GET", "/v1/me/locations?limit=100", None, None, "user"),
    ("campaign title max 200", "POST", "/v1/admin/campaigns", campaign(title="t" * 200), campaign(title="t" * 201),
     "admin"),
    ("campaign body max 1000", "POST", "/v1/admin/campaigns", campaign(body="b" * 1000), campaign(body="b" * 1001),
     "admin"),
    ("campaign data max 20 keys", "POST", "/v1/admin/campaigns",
     campaign(data={f"k{i}": "v" for i in range(20)}), campaign(data={f"k{i}": "v" for i in range(21)}), "admin"),
    ("campaign data max 2048 bytes", "POST", "/v1/admin/campaigns",
     campaign(data={"k": "v" * 1000, "l": "v" * 1000, "m": "v" * 45}),
     campaign(data={"k": "v" * 1000, "l": "v" * 1000, "m": "v" * 46}), "admin"),
    ("area radius max 1000 km", "POST", "/v1/admin/campaigns",
     campaign(audience={"area": {"latitude": 1, "longitude": 1, "radius_km": 1000}}),
     campaign(audience={"area": {"latitude": 1, "longitude": 1, "radius_km": 1000.1}}), "admin"),
    ("active within max 365 days", "POST", "/v1/admin/campaigns", campaign(audience={"active_within_days": 365}),
     campaign(audience={"active_within_days": 366}), "admin"),
    ("send_at at most a year ahead", "POST", "/v1/admin/campaigns", lambda: campaign(send_at=now_plus(days=365)),
     lambda: campaign(send_at=now_plus(days=368)), "admin"),
    ("policy version max 32", "POST", "/v1/admin/policies",
     {"version": "v" * 32, "text": "t", "changed_permissions": []},
     {"version": "v" * 33, "text": "t", "changed_permissions": []}, "admin"),
    ("guardian name max 120", "POST", "/v1/admin/users/{user_id}/guardian-consent",
     {"guardian_name": "g" * 120, "relationship": "r", "evidence_ref": "e"},
     {"guardian_name": "g" * 121, "relationship": "r", "evidence_ref": "e"}, "admin"),
]


def call(client, ready, method, path, body, who):
    body = body() if callable(body) else body  # times are taken when the test runs
    path = path.replace("{device}", ready["device"]).replace("{user_id}", ready["user"]["user"]["id"])
    headers = ready[who]["headers"] if who else {}
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize("name,method,path,inside,outside,who", [pytest.param(*row, id=row[0]) for row in LIMITS])
def test_just_inside_a_limit_is_accepted(client, ready, name, method, path, inside, outside, who):
    response = call(client, ready, method, path, inside, who)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)[:300]


# query limits have their outside cases below
@pytest.mark.parametrize("name,method,path,inside,outside,who",
                         [pytest.param(*row, id=row[0]) for row in LIMITS if row[4] is not None])
def test_just_outside_a_limit_is_refused(client, ready, name, method, path, inside, outside, who):
    response = call(client, ready, method, path, outside, who)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.json["error"]["code"] == "validation_error"


@pytest.mark.parametrize("query,status", [("limit=100", 200), ("limit=101", 422), ("limit=1", 200),
                                          ("limit=0", 422), ("limit=abc", 422)])
def test_page_limit(client, ready, query, status):
    for path in ("/v1/me/locations", "/v1/me/consents/history"):
        assert call(client, ready, "GET", f"{path}?{query}", None, "user").status_code == status


def test_body_limit_is_one_mebibyte(client, ready):
    base = {"consents": {"location": True}}
    overhead = len(b'{"consents": {"location": true}, "pad": ""}')
    at_limit = {**base, "pad": "x" * (1024 * 1024 - overhead)}
    response = call(client, ready, "PUT", "/v1/me/consents", at_limit, "user")
    assert response.status_code == 422 and "pad" in response.json["error"]["details"]  # read, then refused
    over = {**base, "pad": "x" * (1024 * 1024 - overhead + 1)}
    response = call(client, ready, "PUT", "/v1/me/consents", over, "user")
    assert response.status_code == 413 and response.json["error"]["code"] == "payload_too_large"


def test_limits_are_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json
    schemas = spec["components"]["schemas"]
    assert "1 MiB" in spec["info"]["description"]
    assert schemas["LocationBatch"]["properties"]["locations"]["maxItems"] == 500
    assert schemas["DeviceRegister"]["properties"]["model"]["maxLength"] == 64
    assert schemas["LocationIn"]["properties"]["latitude"]["maximum"] == 90
    assert "finite" in schemas["LocationIn"]["properties"]["latitude"]["description"]
    assert "5 minutes" in schemas["LocationIn"]["properties"]["captured_at"]["description"]
    limit = next(p for p in spec["paths"]["/v1/me/locations"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100


@pytest.mark.parametrize("suffix,body", [
    ("/locations", lambda n: point(captured_at=ago(seconds=n + 1))),
    ("/locations/batch", lambda n: {"locations": [point(captured_at=ago(seconds=n + 1))]}),
], ids=["single", "batch"])
def test_another_account_hammering_a_device_does_not_use_up_its_owners_quota(make_app, suffix, body):
    app = make_app(RATELIMIT_LOCATIONS="3 per minute", RATELIMIT_LOCATION_BATCHES="3 per minute")
    client = app.test_client()
    owner, attacker = new_user(client), new_user(client)
    for account in (owner, attacker):
        put_consents(client, account["headers"], location=True)
    device = add_device(client, owner["headers"])
    url = f"/v1/devices/{device['id']}{suffix}"

    hammered = [client.post(url, json=body(n), headers=attacker["headers"]).status_code for n in range(10)]
    assert hammered == [404] * 3 + [429] * 7  # the attacker's own bucket, never the device's
    uploads = [client.post(url, json=body(20 + n), headers=owner["headers"]).status_code for n in range(4)]
    assert uploads == [201 if suffix == "/locations" else 200] * 3 + [429]
    assert Location.select().where(Location.device == device["id"]).count() == 3
