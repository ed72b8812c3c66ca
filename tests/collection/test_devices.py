"""Device registration, snapshots and push tokens, gated by consent (issue 4)."""
import uuid

import pytest

from models import Device, DeviceReport, PushToken
from models.device import GATED_DEVICE_FIELDS
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import FULL_DETAILS, add_device, device_body, point

TOKEN = "fcm-token-" + "a" * 140


def stored_device(device_id):
    return Device.get_by_id(device_id)


def test_without_device_info_only_the_basics_are_kept(client, user):
    response = client.post("/v1/devices", json=device_body(installation_id="install-0001"), headers=user["headers"])
    assert response.status_code == 201
    body = response.json
    assert sorted(body["stored"]) == ["app_version", "installation_id", "platform"]
    assert body["dropped"] == {name: "device_info:not_asked" for name in GATED_DEVICE_FIELDS}
    row = stored_device(body["device"]["id"])
    assert (row.installation_id, row.platform, row.app_version) == ("install-0001", "android", "3.12.0")
    for name in GATED_DEVICE_FIELDS:
        assert getattr(row, name) is None


@pytest.mark.parametrize("name", GATED_DEVICE_FIELDS)
def test_each_gated_field_is_stored_only_while_device_info_is_in_effect(client, user, name):
    device = add_device(client, user["headers"])
    assert getattr(stored_device(device["id"]), name) is None

    put_consents(client, user["headers"], device_info=True)
    response = client.post(f"/v1/devices/{device['id']}/reports", json={"app_version": "3.12.1",
                                                                        name: FULL_DETAILS[name]},
                           headers=user["headers"])
    assert response.status_code == 201
    assert name in response.json["stored"]
    assert getattr(stored_device(device["id"]), name) == FULL_DETAILS[name]
    assert getattr(DeviceReport.get(DeviceReport.device == device["id"]), name) == FULL_DETAILS[name]

    put_consents(client, user["headers"], device_info=False)
    assert getattr(stored_device(device["id"]), name) is None
    assert DeviceReport.select().where(DeviceReport.device == device["id"]).count() == 0

    response = client.post(f"/v1/devices/{device['id']}/reports", json={"app_version": "3.12.2",
                                                                        name: FULL_DETAILS[name]},
                           headers=user["headers"])
    assert response.json["dropped"] == {name: "device_info:withdrawn"}
    assert getattr(stored_device(device["id"]), name) is None
    assert getattr(DeviceReport.get(DeviceReport.device == device["id"]), name) is None


def test_a_report_becomes_the_devices_current_details_that_campaign_filters_read(client, user, admin):
    put_consents(client, user["headers"], device_info=True, personalization=True, service_push=True)
    device = add_device(client, user["headers"])  # FULL_DETAILS: a Pixel 9 on China Mobile
    client.put(f"/v1/devices/{device['id']}/push-token", json={"token": TOKEN}, headers=user["headers"])
    snapshot = {"app_version": "4.0.0", "model": "Mate 70", "manufacturer": "HUAWEI", "os_name": "HarmonyOS"}
    response = client.post(f"/v1/devices/{device['id']}/reports", json=snapshot, headers=user["headers"])
    assert response.status_code == 201

    row = stored_device(device["id"])
    assert {name: getattr(row, name) for name in GATED_DEVICE_FIELDS} == {
        name: snapshot.get(name) for name in GATED_DEVICE_FIELDS}  # no SIM now: no carrier
    assert (row.app_version, row.app_version_num) == ("4.0.0", Device.version_number("4.0.0"))
    campaign = client.post("/v1/admin/campaigns", headers=admin["headers"], json={
        "name": "carrier", "kind": "service", "title": "t", "body": "b",
        "audience": {"carriers": ["China Mobile"]}}).json
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview == {"eligible": 0, "excluded": {"filter:carriers": 1}}


def test_a_minors_device_details_need_guardian_consent(client):
    from tests.consent_helpers import years_ago

    minor = new_user(client, birth_date=years_ago(13).isoformat())
    put_consents(client, minor["headers"], device_info=True)
    body = client.post("/v1/devices", json=device_body(), headers=minor["headers"]).json
    assert body["dropped"]["model"] == "device_info:guardian_required"
    assert stored_device(body["device"]["id"]).model is None


def test_same_installation_again_is_200_and_updates(client, user):
    put_consents(client, user["headers"], device_info=True)
    first = client.post("/v1/devices", json=device_body(installation_id="install-same"), headers=user["headers"])
    again = client.post("/v1/devices", json=device_body(installation_id="install-same", app_version="3.13",
                                                        model="Pixel 10"), headers=user["headers"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["device"]["id"] == again.json["device"]["id"]
    row = stored_device(first.json["device"]["id"])
    assert (row.app_version, row.model) == ("3.13", "Pixel 10")
    assert Device.select().count() == 1


def test_two_accounts_may_register_the_same_installation(client, user):
    other = new_user(client)
    a = add_device(client, user["headers"], installation_id="install-shared")
    b = add_device(client, other["headers"], installation_id="install-shared")
    assert a["id"] != b["id"]


@pytest.mark.parametrize("field,value", [
    ("installation_id", "short"),
    ("installation_id", "x" * 129),
    ("installation_id", "bad id with spaces"),
    ("platform", "symbian"),
    ("app_version", "v3"),
    ("app_version", "3..1"),
    ("model", "m" * 10_000),
    ("manufacturer", "m" * 65),
    ("carrier", ""),
    ("resolution", "1080*2400"),
    ("locale", "not a tag"),
    ("timezone", "Mars/Olympus"),
    ("timezone", "../../etc/passwd"),
    ("os_version", 15),
])
def test_malformed_device_is_422_naming_the_field_and_stores_nothing(client, user, field, value):
    put_consents(client, user["headers"], device_info=True)
    response = client.post("/v1/devices", json=device_body(**{field: value}), headers=user["headers"])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["details"]
    assert Device.select().count() == 0


def test_device_limit_per_account(make_app):
    app = make_app(MAX_DEVICES_PER_USER=2)
    client = app.test_client()
    user = new_user(client)
    add_device(client, user["headers"])
    add_device(client, user["headers"])
    response = client.post("/v1/devices", json=device_body(), headers=user["headers"])
    assert response.status_code == 409 and response.json["error"]["code"] == "too_many_devices"


def test_list_get_and_delete(client, user):
    a = add_device(client, user["headers"])
    b = add_device(client, user["headers"], platform="ios")
    listed = client.get("/v1/devices", headers=user["headers"]).json["devices"]
    assert [d["id"] for d in listed] == [a["id"], b["id"]]
    assert client.get(f"/v1/devices/{a['id']}", headers=user["headers"]).json["platform"] == "android"
    assert client.delete(f"/v1/devices/{a['id']}", headers=user["headers"]).status_code == 204
    assert client.get(f"/v1/devices/{a['id']}", headers=user["headers"]).status_code == 404
    assert [d.id for d in Device.select()] == [uuid.UUID(b["id"])]


@pytest.mark.parametrize("method,suffix,body", [
    ("GET", "", None),
    ("DELETE", "", None),
    ("POST", "/reports", {"app_version": "1.0"}),
    ("PUT", "/push-token", {"token": TOKEN}),
    ("DELETE", "/push-token", None),
    ("POST", "/locations", point()),
    ("POST", "/locations/batch", {"locations": [{"latitude": 1}]}),
])
def test_another_users_device_is_404_not_403(client, user, method, suffix, body):
    put_consents(client, user["headers"], device_info=True, service_push=True, location=True)
    victim = new_user(client)
    device = add_device(client, victim["headers"])
    response = client.open(f"/v1/devices/{device['id']}{suffix}", method=method, json=body, headers=user["headers"])
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert Device.select().where(Device.id == device["id"]).exists()


def test_push_token_needs_a_push_permission(client, user):
    device = add_device(client, user["headers"])
    response = client.put(f"/v1/devices/{device['id']}/push-token", json={"token": TOKEN}, headers=user["headers"])
    assert response.status_code == 403
    assert response.json["error"]["code"] == "consent_required"
    assert response.json["error"]["details"]["permission"] == "service_push"
    assert PushToken.select().count() == 0

    put_consents(client, user["headers"], marketing_push=True)
    response = client.put(f"/v1/devices/{device['id']}/push-token", json={"token": TOKEN, "provider": "fcm"},
                          headers=user["headers"])
    assert response.status_code == 200
    assert PushToken.get().token == TOKEN
    assert client.get(f"/v1/devices/{device['id']}", headers=user["headers"]).json["push"]["provider"] == "fcm"


def test_withdrawing_both_push_permissions_deletes_tokens(client, user):
    put_consents(client, user["headers"], service_push=True, marketing_push=True)
    device = add_device(client, user["headers"])
    client.put(f"/v1/devices/{device['id']}/push-token", json={"token": TOKEN}, headers=user["headers"])
    put_consents(client, user["headers"], marketing_push=False)
    assert PushToken.select().count() == 1  # service notifications still allowed
    put_consents(client, user["headers"], service_push=False)
    assert PushToken.select().count() == 0


def test_token_moves_when_another_account_signs_in_on_the_same_phone(client):
    first, second = new_user(client), new_user(client)
    for account in (first, second):
        put_consents(client, account["headers"], service_push=True)
    phone_a = add_device(client, first["headers"], installation_id="phone-install-1")
    phone_b = add_device(client, second["headers"], installation_id="phone-install-1")
    client.put(f"/v1/devices/{phone_a['id']}/push-token", json={"token": TOKEN}, headers=first["headers"])
    assert PushToken.get().device_id.hex == phone_a["id"].replace("-", "")

    response = client.put(f"/v1/devices/{phone_b['id']}/push-token", json={"token": TOKEN}, headers=second["headers"])
    assert response.status_code == 200
    tokens = list(PushToken.select())
    assert len(tokens) == 1
    assert str(tokens[0].device_id) == phone_b["id"]
    assert client.get(f"/v1/devices/{phone_a['id']}", headers=first["headers"]).json["push"] is None


@pytest.mark.parametrize("same_account", [False, True], ids=["another account", "the same account"])
def test_a_token_held_by_another_installation_is_409_and_its_holder_keeps_it(client, user, same_account):
    other = user if same_account else new_user(client)
    for account in (user, other):
        put_consents(client, account["headers"], service_push=True)
    holder = add_device(client, user["headers"], installation_id="phone-install-1")
    taker = add_device(client, other["headers"], installation_id="phone-install-2")
    client.put(f"/v1/devices/{holder['id']}/push-token", json={"token": TOKEN}, headers=user["headers"])

    response = client.put(f"/v1/devices/{taker['id']}/push-token", json={"token": TOKEN}, headers=other["headers"])
    assert response.status_code == 409
    assert response.json["error"]["code"] == "token_in_use"
    assert [(str(row.device_id), row.token) for row in PushToken.select()] == [(holder["id"], TOKEN)]


def test_a_device_gets_a_new_token_in_place(client, user):
    put_consents(client, user["headers"], service_push=True)
    device = add_device(client, user["headers"])
    for token in (TOKEN, TOKEN + "b"):
        client.put(f"/v1/devices/{device['id']}/push-token", json={"token": token, "notifications_enabled": False},
                   headers=user["headers"])
    assert [(t.token, t.notifications_enabled) for t in PushToken.select()] == [(TOKEN + "b", False)]
    assert client.delete(f"/v1/devices/{device['id']}/push-token", headers=user["headers"]).status_code == 204
    assert PushToken.select().count() == 0


@pytest.mark.parametrize("body,field", [
    ({"token": "short"}, "token"),
    ({"token": TOKEN, "provider": "apns"}, "provider"),
    ({"token": "x" * 4097}, "token"),
    ({"token": TOKEN + " with space"}, "token"),
])
def test_malformed_push_token_is_422(client, user, body, field):
    put_consents(client, user["headers"], service_push=True)
    device = add_device(client, user["headers"])
    response = client.put(f"/v1/devices/{device['id']}/push-token", json=body, headers=user["headers"])
    assert response.status_code == 422 and field in response.json["error"]["details"]
    assert PushToken.select().count() == 0


def test_consent_change_may_name_the_users_device_only(client, user):
    device = add_device(client, user["headers"])
    response = client.put("/v1/me/consents", json={"consents": {"location": True}, "device_id": device["id"]},
                          headers=user["headers"])
    assert response.status_code == 200
    other = new_user(client)
    foreign = add_device(client, other["headers"])
    response = client.put("/v1/me/consents", json={"consents": {"location": False}, "device_id": foreign["id"]},
                          headers=user["headers"])
    assert response.status_code == 422 and "device_id" in response.json["error"]["details"]
