"""What a grant made stale by a new policy version means for data (issue 14.3):
nothing new is collected; sensitive data goes at once; the rest is kept
unused until the user confirms again or STALE_GRANT_GRACE_DAYS ends, when the
grant lapses and its withdrawal effects run."""
from datetime import timedelta

from collection import geohash as geo
from models import Consent, Device, DeviceReport, LedgerEntry, Location, PolicyVersion, PushToken
from models.base import utcnow
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import FULL_DETAILS, add_device, ago, point


def publish(client, admin, version, *changed):
    response = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": version, "text": f"Policy {version}.", "changed_permissions": list(changed)})
    assert response.status_code == 201, response.json


def published_days_ago(version, days):
    PolicyVersion.update(published_at=utcnow() - timedelta(days=days)).where(
        PolicyVersion.version == version).execute()


def test_a_stale_grant_collects_nothing_new(client, admin):
    person = new_user(client)
    headers = person["headers"]
    put_consents(client, headers, location=True, device_info=True, service_push=True)
    phone = add_device(client, headers)
    publish(client, admin, "2", "location", "device_info", "service_push")

    located = client.post(f"/v1/devices/{phone['id']}/locations", json=point(), headers=headers)
    assert located.status_code == 403 and located.json["error"]["details"]["permission"] == "location"
    report = client.post(f"/v1/devices/{phone['id']}/reports", json={"app_version": "3.13.0", **FULL_DETAILS},
                         headers=headers)
    assert report.status_code == 201 and report.json["stored"] == ["app_version"]
    token = client.put(f"/v1/devices/{phone['id']}/push-token", json={"token": "t" * 140}, headers=headers)
    assert token.status_code == 403
    uid = person["user"]["id"]
    assert not Location.select().where(Location.user == uid).exists()
    assert not PushToken.select().where(PushToken.device == phone["id"]).exists()
    assert all(getattr(r, name) is None for r in DeviceReport.select().where(DeviceReport.user == uid)
               for name in FULL_DETAILS)


def test_a_policy_change_to_location_removes_stored_locations_at_once(client, admin):
    person = new_user(client)
    headers, uid = person["headers"], person["user"]["id"]
    put_consents(client, headers, location=True, precise_location=True)
    phone = add_device(client, headers)
    for minutes in (1, 2):
        assert client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(minutes=minutes)),
                           headers=headers).status_code == 201

    publish(client, admin, "2", "precise_location")
    rows = list(Location.select().where(Location.user == uid))
    assert len(rows) == 2
    assert all(r.precision == "approximate" and (r.latitude, r.longitude) == geo.cell_centre(r.geohash)
               and r.accuracy_m is None for r in rows)

    publish(client, admin, "3", "location")
    assert not Location.select().where(Location.user == uid).exists()
    # the choice stands, waiting for confirmation; confirming collects again
    assert Consent.get((Consent.user == uid) & (Consent.permission == "location")).granted is True
    put_consents(client, headers, location=True)
    assert client.post(f"/v1/devices/{phone['id']}/locations", json=point(), headers=headers).status_code == 201


def test_stale_device_details_are_kept_unused_until_the_grace_period_ends(client, admin, runner):
    person = new_user(client)
    headers, uid = person["headers"], person["user"]["id"]
    put_consents(client, headers, device_info=True, usage_statistics=True)
    phone = add_device(client, headers)
    publish(client, admin, "2", "device_info")
    assert Device.get_by_id(phone["id"]).model == FULL_DETAILS["model"]  # kept through the grace period

    published_days_ago("2", 29)
    assert "stale grants: 0 withdrawn" in runner.invoke(args=["purge"]).output
    assert Device.get_by_id(phone["id"]).model == FULL_DETAILS["model"]

    published_days_ago("2", 31)
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and "stale grants: 1 withdrawn" in result.output, result.output
    device = Device.get_by_id(phone["id"])
    assert all(getattr(device, name) is None for name in FULL_DETAILS)
    assert not DeviceReport.select().where(DeviceReport.user == uid).exists()
    assert Consent.get((Consent.user == uid) & (Consent.permission == "device_info")).granted is False
    last = LedgerEntry.select().where(LedgerEntry.user == uid).order_by(LedgerEntry.seq.desc()).first()
    assert (last.permission, last.granted, last.source, last.reason) == ("device_info", False, "system",
                                                                        "stale_policy")
    consents = client.get("/v1/me/consents", headers=headers).json["consents"]
    assert consents["device_info"]["reason"] == "withdrawn"
    assert consents["usage_statistics"]["effective"] is True  # not changed by policy 2
    assert runner.invoke(args=["verify-ledger"]).exit_code == 0
    assert "stale grants: 0 withdrawn" in runner.invoke(args=["purge"]).output


def test_confirming_within_the_grace_period_keeps_the_data(client, admin):
    from collection.retention import lapse_stale_grants

    person = new_user(client)
    headers, uid = person["headers"], person["user"]["id"]
    put_consents(client, headers, device_info=True)
    phone = add_device(client, headers)
    publish(client, admin, "2", "device_info")
    put_consents(client, headers, device_info=True)
    published_days_ago("2", 60)
    assert lapse_stale_grants.call_local() == 0
    assert Device.get_by_id(phone["id"]).model == FULL_DETAILS["model"]
    assert Consent.get((Consent.user == uid) & (Consent.permission == "device_info")).granted is True


def test_the_grace_period_is_configurable(make_app):
    from tests.conftest import PASSWORD, AuthActions

    app = make_app(STALE_GRANT_GRACE_DAYS=0)
    client, runner = app.test_client(), app.test_cli_runner()
    runner.invoke(args=["create-admin", "p@example.com", "--password", PASSWORD])
    admin = AuthActions(client).login("p@example.com")
    person = new_user(client)
    put_consents(client, person["headers"], device_info=True)
    phone = add_device(client, person["headers"])
    publish(client, admin, "2", "device_info")
    assert "stale grants: 1 withdrawn" in runner.invoke(args=["purge"]).output
    assert Device.get_by_id(phone["id"]).model is None


def test_a_location_written_while_the_policy_is_published_is_removed_too(app, client, admin):
    """The publication waits for gated writes in flight (the user's consent
    lock), so a point stored under the old terms cannot outlive it."""
    import threading
    import time

    import consent
    from models.base import db
    from models import User

    person = new_user(client)
    put_consents(client, person["headers"], location=True)
    phone = add_device(client, person["headers"])
    uid = person["user"]["id"]
    written, release, errors = threading.Event(), threading.Event(), []

    def write_location():
        try:
            with app.app_context(), db.connection_context():
                user = User.get_by_id(uid)
                with consent.consent_held(user):
                    consent.require(user, "location")
                    latitude, longitude, cell = geo.coarsen(31.23, 121.47)
                    Location.insert(device=phone["id"], user=uid, latitude=latitude, longitude=longitude,
                                    geohash=cell, precision="approximate", captured_at=utcnow(),
                                    received_at=utcnow()).execute()
                    written.set()
                    release.wait(10)
        except Exception as error:  # surfaced below
            errors.append(repr(error))
            written.set()

    def publish_change():
        try:
            with app.app_context(), db.connection_context():
                consent.publish_policy("2", "Location is used for delivery slots.", ["location"], None)
        except Exception as error:  # surfaced below
            errors.append(repr(error))

    writer = threading.Thread(target=write_location)
    writer.start()
    assert written.wait(10)
    publisher = threading.Thread(target=publish_change)
    publisher.start()
    time.sleep(1)
    waited = publisher.is_alive()
    release.set()
    writer.join(10)
    publisher.join(10)
    assert errors == []
    assert waited, "the publication did not wait for the write in flight"
    assert not Location.select().where(Location.user == uid).exists()
