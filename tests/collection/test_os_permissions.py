"""The phone's own permissions (issue 17 §2): kept without device_info,
updated by snapshots, and narrowing what consent allows on the device."""
import json

import pytest

from collection import geohash as geo
from models import Device, Location
from tests.consent_helpers import put_consents
from tests.device_helpers import add_device, device_body, point

LAT, LON = 31.230416, 121.473701


def post_point(client, user, device, **fields):
    return client.post(f"/v1/devices/{device['id']}/locations", json=point(**fields), headers=user["headers"])


def os_columns(device_id):
    row = Device.get_by_id(device_id)
    return row.os_notifications, row.os_location, row.os_tracking


def my_mismatches(client, user, device_id):
    body = client.get("/v1/me/consents", headers=user["headers"]).json
    return next(entry["mismatches"] for entry in body["devices"] if entry["device_id"] == device_id)


def test_registration_keeps_os_permissions_without_device_info(client, user):
    response = client.post("/v1/devices", headers=user["headers"], json=device_body(os_permissions={
        "notifications": "provisional", "location": "approximate", "tracking": "denied"}))
    assert response.status_code == 201, response.json
    body = response.json
    assert "os_permissions" in body["stored"]
    assert body["dropped"]["model"] == "device_info:not_asked"
    assert os_columns(body["device"]["id"]) == ("provisional", "approximate", "denied")
    assert body["device"]["os_permissions"] == {"notifications": "provisional", "location": "approximate",
                                                "tracking": "denied"}


def test_a_snapshot_updates_the_permissions_it_carries_and_keeps_the_others(client, user):
    device = add_device(client, user["headers"], os_permissions={"notifications": "authorized", "location": "precise"})
    response = client.post(f"/v1/devices/{device['id']}/reports", headers=user["headers"],
                           json={"app_version": "3.12.1", "os_permissions": {"location": "approximate"}})
    assert response.status_code == 201, response.json
    assert os_columns(device["id"]) == ("authorized", "approximate", None)
    client.post(f"/v1/devices/{device['id']}/reports", headers=user["headers"], json={"app_version": "3.12.1"})
    assert os_columns(device["id"]) == ("authorized", "approximate", None)
    answer = client.get(f"/v1/devices/{device['id']}", headers=user["headers"]).json
    assert answer["os_permissions"] == {"notifications": "authorized", "location": "approximate", "tracking": None}


@pytest.mark.parametrize("os_permissions, field", [
    ({"notifications": "maybe"}, "notifications"),
    ({"location": "PRECISE"}, "location"),
    ({"tracking": 1}, "tracking"),
    ({"camera": "authorized"}, "camera"),
])
def test_hostile_values_are_422_naming_the_field(client, user, os_permissions, field):
    response = client.post("/v1/devices", headers=user["headers"], json=device_body(os_permissions=os_permissions))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["details"]["os_permissions"]
    assert Device.select().count() == 0


@pytest.mark.parametrize("value", ["approximate", ["precise"], 7, {"location": "approximate\u0000"}])
def test_os_permissions_must_be_an_object(client, user, value):
    device = add_device(client, user["headers"])
    response = client.post(f"/v1/devices/{device['id']}/reports", headers=user["headers"],
                           json={"app_version": "3.12.1", "os_permissions": value})
    assert response.status_code == 422
    assert "os_permissions" in response.json["error"]["details"]


@pytest.mark.parametrize("path", ["one", "batch"])
def test_precise_point_from_an_approximate_phone_is_stored_as_the_cell_centre(client, user, path):
    device = add_device(client, user["headers"], os_permissions={"location": "approximate"})
    put_consents(client, user["headers"], location=True, precise_location=True)
    if path == "one":
        response = post_point(client, user, device, latitude=LAT, longitude=LON, accuracy_m=5)
        assert response.status_code == 201
        assert response.json["location"]["precision"] == "approximate"
    else:
        response = client.post(f"/v1/devices/{device['id']}/locations/batch", headers=user["headers"],
                               json={"locations": [point(latitude=LAT, longitude=LON, accuracy_m=5)]})
        assert response.json["precision"] == "approximate" and response.json["stored"] == 1
    row = Location.get()
    assert row.precision == "approximate"
    assert row.geohash == geo.cell(LAT, LON)
    assert (row.latitude, row.longitude) == geo.cell_centre(row.geohash)
    assert row.accuracy_m is None


def test_the_same_consent_on_a_precise_phone_keeps_the_point(client, user):
    device = add_device(client, user["headers"], os_permissions={"location": "precise"})
    put_consents(client, user["headers"], location=True, precise_location=True)
    assert post_point(client, user, device, latitude=LAT, longitude=LON).status_code == 201
    row = Location.get()
    assert (row.latitude, row.longitude, row.precision) == (LAT, LON, "precise")


def test_after_the_phone_narrows_to_approximate_new_points_are_coarse(client, user):
    device = add_device(client, user["headers"], os_permissions={"location": "precise"})
    put_consents(client, user["headers"], location=True, precise_location=True)
    client.post(f"/v1/devices/{device['id']}/reports", headers=user["headers"],
                json={"app_version": "3.12.1", "os_permissions": {"location": "approximate"}})
    assert post_point(client, user, device, latitude=LAT, longitude=LON).status_code == 201
    assert Location.get().precision == "approximate"


@pytest.mark.parametrize("path", ["one", "batch"])
def test_a_phone_without_location_access_is_refused_with_the_os_reason(client, user, path):
    device = add_device(client, user["headers"], os_permissions={"location": "none"})
    put_consents(client, user["headers"], location=True, precise_location=True)
    if path == "one":
        response = post_point(client, user, device)
    else:
        response = client.post(f"/v1/devices/{device['id']}/locations/batch", headers=user["headers"],
                               json={"locations": [point()]})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "consent_required"
    assert response.json["error"]["details"] == {"permission": "location", "reason": "os_location_off"}
    assert Location.select().count() == 0


def test_mismatches_are_listed_per_device_in_me_consents(client, user):
    narrowed = add_device(client, user["headers"], platform="ios", os_permissions={
        "notifications": "denied", "location": "approximate", "tracking": "denied"})
    agreeing = add_device(client, user["headers"], platform="ios", os_permissions={
        "notifications": "authorized", "location": "precise", "tracking": "authorized"})
    put_consents(client, user["headers"], location=True, precise_location=True, marketing_push=True,
                 partner_sharing=True)
    body = client.get("/v1/me/consents", headers=user["headers"]).json
    assert body["consents"]["precise_location"]["effective"] is True  # the existing fields stay
    assert {entry["device_id"] for entry in body["devices"]} == {narrowed["id"], agreeing["id"]}
    assert my_mismatches(client, user, agreeing["id"]) == []
    assert sorted(my_mismatches(client, user, narrowed["id"]), key=lambda m: m["permission"]) == [
        {"permission": "marketing_push", "consent": "granted", "os": "denied", "effect": "not sent"},
        {"permission": "partner_sharing", "consent": "granted", "os": "denied", "effect": "not in effect"},
        {"permission": "precise_location", "consent": "granted", "os": "approximate",
         "effect": "stored as approximate"},
    ]


def test_a_permission_not_in_effect_is_no_mismatch(client, user):
    device = add_device(client, user["headers"], os_permissions={"location": "approximate", "notifications": "denied"})
    put_consents(client, user["headers"], location=True)
    assert my_mismatches(client, user, device["id"]) == []


def test_a_phone_without_location_access_shows_locations_not_stored(client, user):
    device = add_device(client, user["headers"], os_permissions={"location": "none"})
    put_consents(client, user["headers"], location=True)
    assert my_mismatches(client, user, device["id"]) == [
        {"permission": "location", "consent": "granted", "os": "none", "effect": "not stored"}]


@pytest.mark.parametrize("tracking", ["denied", "restricted", "not_determined", None])
def test_on_ios_partner_sharing_needs_att_authorized_per_device(client, user, tracking):
    reported = {"tracking": tracking} if tracking else {}
    iphone = add_device(client, user["headers"], platform="ios", os_permissions=reported)
    allowed = add_device(client, user["headers"], platform="ios", os_permissions={"tracking": "authorized"})
    android = add_device(client, user["headers"], platform="android", os_permissions={"tracking": "denied"})
    put_consents(client, user["headers"], partner_sharing=True)

    from consent import device_decision
    with client.application.app_context():
        decisions = {phone["id"]: device_decision(Device.get_by_id(phone["id"]), "partner_sharing")
                     for phone in (iphone, allowed, android)}
    assert decisions[iphone["id"]].effective is False and decisions[iphone["id"]].reason == "os_tracking_off"
    assert decisions[allowed["id"]].effective is True
    assert decisions[android["id"]].effective is True  # ATT is iOS's; Android is unaffected

    expected = [{"permission": "partner_sharing", "consent": "granted", "os": tracking or "not_determined",
                 "effect": "not in effect"}]
    assert my_mismatches(client, user, iphone["id"]) == expected
    assert my_mismatches(client, user, allowed["id"]) == []
    assert my_mismatches(client, user, android["id"]) == []
    answer = client.get(f"/v1/devices/{iphone['id']}", headers=user["headers"]).json
    assert answer["mismatches"] == expected
    assert client.get(f"/v1/devices/{android['id']}", headers=user["headers"]).json["mismatches"] == []


def test_the_export_shows_the_os_permissions(client, user):
    device = add_device(client, user["headers"], platform="ios", os_permissions={
        "notifications": "denied", "location": "approximate", "tracking": "restricted"})
    put_consents(client, user["headers"], marketing_push=True)
    response = client.get("/v1/me/export", headers=user["headers"])
    assert response.status_code == 200
    export = json.loads(response.get_data(as_text=True))
    row, = export["devices"]
    assert (row["os_notifications"], row["os_location"], row["os_tracking"]) == ("denied", "approximate", "restricted")
    mismatched, = export["consents"]["devices"]
    assert mismatched["device_id"] == device["id"]
    assert mismatched["mismatches"] == [
        {"permission": "marketing_push", "consent": "granted", "os": "denied", "effect": "not sent"}]


def test_the_sql_and_python_forms_agree_for_every_reported_value(client, user):
    from consent import Decision, os_permissions
    from models.device import OS_PERMISSIONS

    for location in (None, *OS_PERMISSIONS["location"]):
        for notifications in (None, *OS_PERMISSIONS["notifications"]):
            reported = {k: v for k, v in (("location", location), ("notifications", notifications)) if v}
            add_device(client, user["headers"], os_permissions=reported)
    with client.application.app_context():
        (hits, _reason), = os_permissions.unreachable_sql()
        rows = Device.select(Device, os_permissions.location_allowed_sql().alias("located"),
                             os_permissions.precise_allowed_sql().alias("precise"), hits.alias("silenced"))
        seen = 0
        for row in rows:
            seen += 1
            assert bool(row.located) == (os_permissions.location_refusal(row) is None)
            if row.located:
                assert bool(row.precise) == os_permissions.keeps_precise(row, Decision(True))
            assert bool(row.silenced) == (not os_permissions.reachable(row))
        assert seen == 4 * 5
