"""Locations gated by consent: approximate, precise, batches, withdrawal and retention (issue 4)."""
import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from collection import geohash as geo
from collection import locations
from models import Location, User
from tests.consent_helpers import new_user, put_consents, years_ago
from tests.device_helpers import add_device, ago, iso, point


@pytest.fixture
def phone(client, user):
    return add_device(client, user["headers"])


def post_point(client, user, device, **fields):
    return client.post(f"/v1/devices/{device['id']}/locations", json=point(**fields), headers=user["headers"])


def test_without_location_consent_nothing_is_stored(client, user, phone):
    response = post_point(client, user, phone)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "consent_required"
    assert response.json["error"]["details"] == {"permission": "location", "reason": "not_asked"}
    batch = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": [point()]},
                        headers=user["headers"])
    assert batch.status_code == 403
    assert Location.select().count() == 0


def test_precise_location_alone_stores_nothing(client, user, phone):
    put_consents(client, user["headers"], precise_location=True)
    assert post_point(client, user, phone).status_code == 403
    assert Location.select().count() == 0


def test_location_only_stores_the_cell_centre(client, user, phone):
    put_consents(client, user["headers"], location=True)
    response = post_point(client, user, phone, latitude=31.230416, longitude=121.473701, accuracy_m=8.5)
    assert response.status_code == 201
    body = response.json["location"]
    row = Location.get()
    assert body["precision"] == row.precision == "approximate"
    assert row.geohash == geo.cell(31.230416, 121.473701)
    assert (row.latitude, row.longitude) == geo.cell_centre(row.geohash)
    assert (row.latitude, row.longitude) != (31.230416, 121.473701)
    assert row.accuracy_m is None
    assert (body["latitude"], body["longitude"]) == (row.latitude, row.longitude)


def test_the_answer_is_the_stored_row(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    body = post_point(client, user, phone, latitude=31.230416, longitude=121.473701, accuracy_m=8.5).json["location"]
    row = Location.get()
    assert body["id"] == row.id
    assert (body["latitude"], body["longitude"], body["accuracy_m"], body["precision"]) == (
        row.latitude, row.longitude, row.accuracy_m, row.precision) == (31.230416, 121.473701, 8.5, "precise")
    assert body["geohash"] == row.geohash
    assert datetime.fromisoformat(body["captured_at"].replace("Z", "+00:00")).replace(tzinfo=None) == row.captured_at


def test_a_location_for_someone_elses_device_is_404_and_not_stored(client, user, phone):
    put_consents(client, user["headers"], location=True)
    other = new_user(client)
    put_consents(client, other["headers"], location=True)
    response = post_point(client, other, phone)
    assert response.status_code == 404
    assert Location.select().count() == 0


def test_a_user_deleted_behind_a_live_token_gets_401_and_nothing_is_stored(client, user, phone):
    """With revocations in Redis the route reads no user row up front; a user
    whose row vanished without its sessions being revoked is still refused."""
    put_consents(client, user["headers"], location=True)
    User.delete().where(User.id == user["user"]["id"]).execute()
    response = post_point(client, user, phone)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_revoked"
    assert Location.select().count() == 0


def test_a_policy_change_to_location_stops_storing_until_confirmed(client, user, phone, admin):
    put_consents(client, user["headers"], location=True)
    assert post_point(client, user, phone, captured_at=ago(minutes=2)).status_code == 201
    client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "2", "text": "Location is now used for delivery slots.", "changed_permissions": ["location"]})
    response = post_point(client, user, phone, captured_at=ago(minutes=1))
    assert response.status_code == 403 and response.json["error"]["details"]["reason"] == "stale_policy"
    assert Location.select().count() == 0  # sensitive: what a stale grant covered goes at publication
    put_consents(client, user["headers"], location=True)
    assert post_point(client, user, phone, captured_at=ago(minutes=1)).status_code == 201


def test_two_points_in_one_cell_are_stored_identically_and_near(client, user, phone):
    put_consents(client, user["headers"], location=True)
    sent = [(31.2290, 121.4710), (31.2330, 121.4750)]
    assert geo.cell(*sent[0]) == geo.cell(*sent[1])
    for i, (lat, lon) in enumerate(sent):
        post_point(client, user, phone, latitude=lat, longitude=lon, captured_at=ago(minutes=i + 1))
    rows = list(Location.select().order_by(Location.id))
    assert (rows[0].latitude, rows[0].longitude) == (rows[1].latitude, rows[1].longitude)
    for row, (lat, lon) in zip(rows, sent):
        assert geo.distance_km(lat, lon, row.latitude, row.longitude) < 3.5


@pytest.mark.parametrize("lat,lon", [(0.00001, 0.00001), (-33.8688, 151.2093), (59.9, 10.7), (89.99, 179.99),
                                     (-89.99, -179.99), (0.0219, 0.0219)])
def test_approximate_point_is_within_3_5_km_anywhere(lat, lon):
    c_lat, c_lon, _ = geo.coarsen(lat, lon)
    assert geo.distance_km(lat, lon, c_lat, c_lon) < 3.5


def test_with_precise_location_the_point_is_kept_to_six_decimals(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    response = post_point(client, user, phone, latitude=31.2304161234, longitude=121.4737019876, accuracy_m=5)
    assert response.status_code == 201
    row = Location.get()
    assert (row.latitude, row.longitude, row.precision, row.accuracy_m) == (31.230416, 121.473702, "precise", 5.0)
    assert row.geohash == geo.cell(31.2304161234, 121.4737019876)


def test_a_retry_of_the_same_capture_is_not_stored_twice(client, user, phone):
    put_consents(client, user["headers"], location=True)
    body = point()
    first = client.post(f"/v1/devices/{phone['id']}/locations", json=body, headers=user["headers"])
    again = client.post(f"/v1/devices/{phone['id']}/locations", json=body, headers=user["headers"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["location"]["id"] == again.json["location"]["id"]
    assert Location.select().count() == 1


def test_a_different_point_at_a_stored_time_is_409_duplicate_location_and_the_stored_point_stays(
        client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    first = point(latitude=31.230416, longitude=121.473701)
    assert client.post(f"/v1/devices/{phone['id']}/locations", json=first, headers=user["headers"]).status_code == 201
    other = {**first, "latitude": 39.904211, "longitude": 116.407395}
    response = client.post(f"/v1/devices/{phone['id']}/locations", json=other, headers=user["headers"])
    assert response.status_code == 409
    assert response.json["error"]["code"] == "duplicate_location"
    assert "captured_at" in response.json["error"]["details"]
    assert [(row.latitude, row.longitude) for row in Location.select()] == [(31.230416, 121.473701)]


def test_the_same_point_again_is_a_200_retry_even_after_its_row_was_coarsened(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    body = point(latitude=31.230416, longitude=121.473701)
    first = client.post(f"/v1/devices/{phone['id']}/locations", json=body, headers=user["headers"])
    put_consents(client, user["headers"], precise_location=False)
    again = client.post(f"/v1/devices/{phone['id']}/locations", json=body, headers=user["headers"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["location"]["id"] == first.json["location"]["id"]
    assert Location.select().count() == 1


def test_a_batch_marks_each_duplicate_that_is_a_different_point(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    stored, later = ago(minutes=3), ago(minutes=2)
    first = point(latitude=31.230416, longitude=121.473701, captured_at=stored)
    client.post(f"/v1/devices/{phone['id']}/locations", json=first, headers=user["headers"])
    elsewhere = {"latitude": 39.904211, "longitude": 116.407395}
    items = [first, {**first, **elsewhere}, point(captured_at=later), {**point(captured_at=later), **elsewhere}]
    body = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": items},
                       headers=user["headers"]).json
    assert body["results"] == [
        {"index": 0, "status": "duplicate"},
        {"index": 1, "status": "duplicate", "errors": {"captured_at": [locations.OTHER_POINT]}},
        {"index": 2, "status": "stored"},
        {"index": 3, "status": "duplicate", "errors": {"captured_at": [locations.OTHER_POINT]}},
    ]
    assert sorted((row.latitude, row.longitude) for row in Location.select()) == [(31.230416, 121.473701)] * 2


def test_withdrawing_precise_location_coarsens_stored_points(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    post_point(client, user, phone, latitude=31.230416, longitude=121.473701, accuracy_m=4)
    put_consents(client, user["headers"], precise_location=False)
    row = Location.get()
    assert row.precision == "approximate" and row.accuracy_m is None
    assert (row.latitude, row.longitude) == geo.cell_centre(row.geohash)
    assert post_point(client, user, phone).json["location"]["precision"] == "approximate"


def test_withdrawing_location_deletes_every_point(client, user, phone):
    put_consents(client, user["headers"], location=True, precise_location=True)
    post_point(client, user, phone, captured_at=ago(minutes=3))
    post_point(client, user, phone, captured_at=ago(minutes=2))
    other = new_user(client)
    put_consents(client, other["headers"], location=True)
    other_phone = add_device(client, other["headers"])
    post_point(client, other, other_phone)
    put_consents(client, user["headers"], location=False)
    assert Location.select().where(Location.device == phone["id"]).count() == 0
    assert Location.select().count() == 1  # another user's points stay
    assert post_point(client, user, phone).status_code == 403


def test_a_minors_location_needs_guardian_consent(client, admin):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    device = add_device(client, minor["headers"])
    put_consents(client, minor["headers"], location=True, precise_location=True)
    response = post_point(client, minor, device)
    assert response.status_code == 403 and response.json["error"]["details"]["reason"] == "guardian_required"
    client.post(f"/v1/admin/users/{minor['user']['id']}/guardian-consent", headers=admin["headers"],
                json={"guardian_name": "G", "relationship": "mother", "evidence_ref": "doc-9"})
    response = post_point(client, minor, device)
    assert response.status_code == 201
    assert response.json["location"]["precision"] == "approximate"  # precise is never for minors


@pytest.mark.parametrize("fields,field", [
    ({"latitude": 90.0001}, "latitude"),
    ({"latitude": -91}, "latitude"),
    ({"longitude": 180.5}, "longitude"),
    ({"latitude": float("nan")}, "latitude"),
    ({"longitude": float("inf")}, "longitude"),
    ({"latitude": "31.2"}, "latitude"),
    ({"latitude": True}, "latitude"),
    ({"accuracy_m": -1}, "accuracy_m"),
    ({"captured_at": "2026-01-01T00:00:00"}, "captured_at"),
    ({"captured_at": "yesterday"}, "captured_at"),
])
def test_malformed_location_is_422_and_stores_nothing(client, user, phone, fields, field):
    put_consents(client, user["headers"], location=True)
    body = json.dumps({**point(), **fields})  # NaN and Infinity travel as JSON's non-standard literals
    response = client.post(f"/v1/devices/{phone['id']}/locations", data=body, content_type="application/json",
                           headers=user["headers"])
    assert response.status_code == 422
    assert field in response.json["error"]["details"]
    assert Location.select().count() == 0


def test_capture_time_limits(client, user, phone):
    put_consents(client, user["headers"], location=True)
    now = datetime.now(timezone.utc)
    cases = [
        (now + timedelta(minutes=4), 201),
        (now + timedelta(minutes=6), 422),
        (now - timedelta(days=89, hours=23), 201),
        (now - timedelta(days=90, minutes=5), 422),
    ]
    for moment, status in cases:
        response = client.post(f"/v1/devices/{phone['id']}/locations",
                               json=point(captured_at=iso(moment)), headers=user["headers"])
        assert response.status_code == status, (moment, response.json)
    assert Location.select().count() == 2


def test_batch_of_500_is_stored_with_per_item_results(client, user, phone):
    put_consents(client, user["headers"], location=True)
    items = [point(latitude=30 + i / 1000, captured_at=ago(seconds=i + 1)) for i in range(500)]
    items[7] = {**items[7], "latitude": 123}
    items[9] = {**items[9], "captured_at": items[8]["captured_at"]}
    response = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": items},
                           headers=user["headers"])
    assert response.status_code == 200
    body = response.json
    assert (body["stored"], body["duplicates"], body["rejected"]) == (498, 1, 1)
    assert body["results"][7] == {"index": 7, "status": "rejected", "errors": {"latitude": [
        "Must be greater than or equal to -90 and less than or equal to 90."]}}
    assert body["results"][9]["status"] == "duplicate"
    assert Location.select().count() == 498
    again = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": items[:3]},
                        headers=user["headers"]).json
    assert again["duplicates"] == 3 and Location.select().count() == 498


def test_batch_of_501_is_422_and_stores_nothing(client, user, phone):
    put_consents(client, user["headers"], location=True)
    items = [point(captured_at=ago(seconds=i + 1)) for i in range(501)]
    response = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": items},
                           headers=user["headers"])
    assert response.status_code == 422 and "locations" in response.json["error"]["details"]
    assert Location.select().count() == 0


@pytest.mark.parametrize("body", [{"locations": []}, {"locations": "many"}, {"locations": [1, 2]}, {}])
def test_malformed_batches_are_422(client, user, phone, body):
    put_consents(client, user["headers"], location=True)
    response = client.post(f"/v1/devices/{phone['id']}/locations/batch", json=body, headers=user["headers"])
    assert response.status_code == 422
    assert Location.select().count() == 0


def test_oversized_batch_body_is_413(client, user, phone):
    put_consents(client, user["headers"], location=True)
    items = [{**point(), "pad": "x" * 3000} for _ in range(400)]
    response = client.post(f"/v1/devices/{phone['id']}/locations/batch", json={"locations": items},
                           headers=user["headers"])
    assert response.status_code == 413 and response.json["error"]["code"] == "payload_too_large"
    assert Location.select().count() == 0


def test_deleting_a_device_removes_its_locations(client, user, phone):
    put_consents(client, user["headers"], location=True)
    post_point(client, user, phone)
    client.delete(f"/v1/devices/{phone['id']}", headers=user["headers"])
    assert Location.select().count() == 0


def test_distance_helper_is_sane():
    assert math.isclose(geo.distance_km(0, 0, 0, 1), 111.19, rel_tol=1e-3)


def test_my_locations_are_newest_first_by_captured_at_across_pages(client, user, phone):
    put_consents(client, user["headers"], location=True)
    tablet = add_device(client, user["headers"])
    now = datetime.now(timezone.utc).replace(microsecond=250000)
    minutes = [5, 1, 9, 3, 7, 2]  # uploaded out of order, as an offline queue does
    for device in (phone, tablet):  # the two devices share every capture time: ties go by id
        for m in minutes:
            client.post(f"/v1/devices/{device['id']}/locations", json=point(captured_at=iso(now - timedelta(minutes=m))),
                        headers=user["headers"])
    expected = [row.id for row in Location.select().order_by(Location.captured_at.desc(), Location.id.desc())]
    assert len(expected) == 12

    listed, cursor = [], None
    while True:
        page = client.get("/v1/me/locations", query_string={"limit": 5, **({"cursor": cursor} if cursor else {})},
                          headers=user["headers"]).json
        listed += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == expected


@pytest.mark.parametrize("cursor", ["x", "bm90LWEtcGFpcg", "MS4y" * 20, "LTEuMQ"])
def test_a_foreign_locations_cursor_is_422(client, user, cursor):
    response = client.get("/v1/me/locations", query_string={"cursor": cursor}, headers=user["headers"])
    assert response.status_code == 422 and "cursor" in response.json["error"]["details"]
