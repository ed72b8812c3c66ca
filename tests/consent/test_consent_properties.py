"""Property: whatever the order of consent toggles and reports, the database
never holds location or device data that consent did not allow at the time
(issue 4, acceptance 2). Checked by reading the database after every step."""
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collection import geohash as geo
from models import Device, DeviceReport, Location
from tests.consent_helpers import assert_summary_follows_consent, new_user
from tests.device_helpers import FULL_DETAILS, add_device, ago, point

TOGGLES = st.tuples(st.just("consent"), st.sampled_from(["location", "precise_location", "device_info"]),
                    st.booleans())
COORDS = st.tuples(st.floats(min_value=-89.9, max_value=89.9), st.floats(min_value=-179.9, max_value=179.9))
LOCATION = st.tuples(st.just("location"), COORDS)
BATCH = st.tuples(st.just("batch"), st.lists(COORDS, min_size=1, max_size=5))
REPORT = st.tuples(st.just("report"), st.sampled_from(sorted(FULL_DETAILS)))
STEPS = st.lists(st.one_of(TOGGLES, LOCATION, BATCH, REPORT), min_size=1, max_size=12)


def check_invariants(user_id, device_id, granted):
    location_on = granted["location"]
    precise_on = location_on and granted["precise_location"]
    rows = list(Location.select().where(Location.user == user_id))
    if not location_on:
        assert rows == [], "a location exists while location is not in effect"
    if not precise_on:
        for row in rows:
            assert row.precision == "approximate"
            assert (row.latitude, row.longitude) == geo.cell_centre(row.geohash), "precise coordinates kept"
            assert row.accuracy_m is None
    if not granted["device_info"]:
        device = Device.get_by_id(device_id)
        assert all(getattr(device, name) is None for name in FULL_DETAILS)
        for report in DeviceReport.select().where(DeviceReport.user == user_id):
            assert all(getattr(report, name) is None for name in FULL_DETAILS)
    assert_summary_follows_consent()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_no_step_sequence_leaves_data_consent_did_not_allow(client, steps):
    user = new_user(client)
    headers = user["headers"]
    device = add_device(client, headers)
    granted = {"location": False, "precise_location": False, "device_info": False}
    clock = itertools.count(1)
    for step in steps:
        kind = step[0]
        if kind == "consent":
            _, key, value = step
            response = client.put("/v1/me/consents", json={"consents": {key: value}}, headers=headers)
            assert response.status_code == 200
            granted[key] = value
        elif kind == "location":
            lat, lon = step[1]
            response = client.post(f"/v1/devices/{device['id']}/locations",
                                   json=point(lat, lon, captured_at=ago(seconds=next(clock))), headers=headers)
            assert response.status_code == (201 if granted["location"] else 403)
        elif kind == "batch":
            items = [point(lat, lon, captured_at=ago(seconds=next(clock))) for lat, lon in step[1]]
            response = client.post(f"/v1/devices/{device['id']}/locations/batch", json={"locations": items},
                                   headers=headers)
            assert response.status_code == (200 if granted["location"] else 403)
        else:
            name = step[1]
            response = client.post(f"/v1/devices/{device['id']}/reports",
                                   json={"app_version": "1.2", name: FULL_DETAILS[name]}, headers=headers)
            assert response.status_code == 201
            assert (name in response.json["stored"]) == granted["device_info"]
        check_invariants(user["user"]["id"], device["id"], granted)
