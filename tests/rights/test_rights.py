"""The user's rights: export, correction, erasure, location history (issue 6)."""
import json
import re
import tracemalloc
from datetime import timedelta

import pytest

from models.base import db
from models import AuthSession, Consent, Delivery, Device, DeviceReport, LedgerEntry, Location, User
from models.base import utcnow
from tests.conftest import PASSWORD, bearer
from tests.consent_helpers import assert_summary_follows_consent, new_user, put_consents, years_ago
from tests.device_helpers import add_device, ago, point
from tests.push_helpers import create_campaign, member, send


def export(client, headers):
    response = client.get("/v1/me/export", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True))


def scripted_history(client, admin):
    """Devices, snapshots, locations, consent toggles and a campaign for one user."""
    session = new_user(client, phone="+8613912345678")
    headers = session["headers"]
    put_consents(client, headers, device_info=True, location=True, marketing_push=True, service_push=True)
    put_consents(client, headers, personalization=True)
    put_consents(client, headers, personalization=False)
    phones = [add_device(client, headers, installation_id=f"install-history-{n}", model=f"Model-X{n}")
              for n in range(2)]
    token = "token-history-" + "q" * 120
    client.put(f"/v1/devices/{phones[0]['id']}/push-token", json={"token": token}, headers=headers)
    for n in range(3):
        client.post(f"/v1/devices/{phones[1]['id']}/reports", json={"app_version": f"4.{n}", "carrier": "Carrier-Z"},
                    headers=headers)
    for n in range(5):
        client.post(f"/v1/devices/{phones[n % 2]['id']}/locations",
                    json=point(31.2 + n / 100, 121.4, captured_at=ago(minutes=n + 1)), headers=headers)
    send(client, admin, create_campaign(client, admin, name="History campaign", title="Hi there"))
    return session, phones, token


def test_export_contains_each_item_exactly_once(client, admin):
    session, phones, token = scripted_history(client, admin)
    uid = session["user"]["id"]
    document = export(client, session["headers"])
    assert document["format_version"] == 1 and document["exported_at"].endswith("Z")
    assert document["profile"]["email"] == session["user"]["email"]
    assert document["profile"]["phone"] == "+8613912345678"

    def ids(section):
        values = [row["id"] for row in document[section]]
        assert len(values) == len(set(values)), f"duplicates in {section}"
        return sorted(str(v) for v in values)

    assert ids("devices") == sorted(str(d.id) for d in Device.select().where(Device.user == uid))
    assert ids("device_reports") == sorted(str(r.id) for r in DeviceReport.select().where(DeviceReport.user == uid))
    assert ids("locations") == sorted(str(loc.id) for loc in Location.select().where(Location.user == uid))
    assert ids("ledger") == sorted(str(e.id) for e in LedgerEntry.select().where(LedgerEntry.user == uid))
    assert len(document["locations"]) == 5 and len(document["device_reports"]) == 3
    assert [d["campaign"] for d in document["deliveries"]] == ["History campaign"]
    assert document["deliveries"][0]["status"] == "sent"
    assert [t["token"] for t in document["push_tokens"]] == [token]
    assert document["consents"]["consents"]["personalization"]["reason"] == "withdrawn"
    assert {d["installation_id"] for d in document["devices"]} == {"install-history-0", "install-history-1"}
    assert ids("sessions") == sorted(str(s.id) for s in AuthSession.select().where(AuthSession.user == uid))


TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def times_in(value):
    """Every date-time string anywhere in a JSON value."""
    if isinstance(value, dict):
        return [t for item in value.values() for t in times_in(item)]
    if isinstance(value, list):
        return [t for item in value for t in times_in(item)]
    return [value] if isinstance(value, str) and TIME.match(value) else []


def test_every_time_in_the_api_and_the_export_is_utc_with_z(client, admin):
    session, phones, _ = scripted_history(client, admin)
    headers = session["headers"]
    answers = [client.get(path, headers=headers).json for path in (
        "/v1/me", "/v1/me/consents", "/v1/me/consents/history", "/v1/devices", f"/v1/devices/{phones[0]['id']}",
        "/v1/me/locations", "/v1/me/sessions")]
    answers.append(client.get("/v1/admin/campaigns", headers=admin["headers"]).json)
    document = export(client, headers)
    for value in (answers, document):
        found = times_in(value)
        assert len(found) > 10
        assert [t for t in found if not t.endswith("Z") or "+" in t] == []


def test_export_lists_unsubscribes_and_guardian_consent(client, admin):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    client.post(f"/v1/admin/users/{minor['user']['id']}/guardian-consent", headers=admin["headers"],
                json={"guardian_name": "Parent P", "relationship": "father", "evidence_ref": "ref-77"})
    adult = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    payload = client.application.extensions["push_provider"].sent[0]
    client.post(f"/v1/unsubscribe/{payload.data['unsubscribe_token']}")
    assert len(export(client, adult["session"]["headers"])["unsubscribes"]) == 1
    guardians = export(client, minor["headers"])["guardian_consents"]
    assert [g["guardian_name"] for g in guardians] == ["Parent P"]


def every_text_cell():
    """(table, column, text) for every cell of every table, read as text."""
    for table in db.get_tables():
        for column in db.get_columns(table):
            quoted_table, quoted_column = f'"{table}"', f'"{column.name}"'
            cursor = db.execute_sql(f"SELECT CAST({quoted_column} AS TEXT) FROM {quoted_table}")
            for (value,) in cursor.fetchall():
                if value is not None:
                    yield table, column.name, value


def test_erasure_leaves_nothing_behind(client, admin, runner):
    session, phones, token = scripted_history(client, admin)
    uid = session["user"]["id"]
    coordinates = {repr(v) for loc in Location.select().where(Location.user == uid)
                   for v in (loc.latitude, loc.longitude)}
    needles = {session["user"]["email"], "8613912345678", token, "install-history-0", "install-history-1",
               "Model-X0", "Model-X1", "Carrier-Z", uid, uid.replace("-", ""),
               *[p["id"] for p in phones], *[p["id"].replace("-", "") for p in phones]}
    other = new_user(client)  # someone else's data must stay
    put_consents(client, other["headers"], location=True)

    response = client.delete("/v1/me", headers=session["headers"], json={"password": PASSWORD})  # confirmed
    assert response.status_code == 204

    found = [(t, c, v) for t, c, v in every_text_cell() if any(n.lower() in v.lower() for n in needles)]
    assert found == []
    numbers = [(t, c, v) for t, c, v in every_text_cell() if t == "location" and v in coordinates]
    assert numbers == []
    assert User.select().where(User.id == other["user"]["id"]).exists()
    assert_summary_follows_consent()
    assert LedgerEntry.select().where(LedgerEntry.user.is_null()).count() >= 6  # pseudonymised, kept

    for token_value in (session["access_token"], session["refresh_token"]):
        response = client.post("/v1/auth/logout", headers=bearer(token_value))
        assert response.status_code == 401
    assert client.post("/v1/auth/login", json={"email": session["user"]["email"],
                                               "password": "correct horse battery"}).status_code == 401
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output


def test_birth_date_correction_to_a_minor_stops_marketing_at_once(client, admin):
    person = member(client, {"marketing_push": True, "location": True})
    headers = person["session"]["headers"]
    response = client.patch("/v1/me", json={"birth_date": years_ago(16).isoformat()}, headers=headers)
    assert response.status_code == 200
    assert set(response.json["stopped"]) == {"marketing_push", "location", "service_push"}
    entries = list(LedgerEntry.select().where((LedgerEntry.user == person["user_id"]) & (LedgerEntry.source == "system")))
    assert {(e.permission, e.granted, e.reason) for e in entries} == {
        ("marketing_push", False, "not_for_minors"), ("location", False, "guardian_required"),
        ("service_push", False, "guardian_required")}
    assert_summary_follows_consent()
    other = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)
    sent_to = [m.token for m in client.application.extensions["push_provider"].sent]
    assert sent_to == [other["token"]]
    assert not Delivery.select().where((Delivery.user == person["user_id"]) & (Delivery.status == "sent")).exists()


def test_birth_date_correction_to_an_adult_leaves_a_minors_refused_grants_waiting_for_reconfirm(client, admin,
                                                                                              runner):
    refused = ("marketing_push", "precise_location", "partner_sharing")
    person = member(client, {key: True for key in (*refused, "location")}, birth_date=years_ago(15).isoformat(),
                    guardian_by=admin)
    uid, headers = person["user_id"], person["session"]["headers"]
    campaign = create_campaign(client, admin)
    response = client.patch("/v1/me", json={"birth_date": years_ago(30).isoformat()}, headers=headers)
    assert response.status_code == 200 and response.json["stopped"] == []

    rows = {c.permission: (c.granted, c.refused) for c in Consent.select().where(Consent.user == uid)}
    assert rows == {**{key: (True, True) for key in refused}, "location": (True, False), "service_push": (True, False)}
    assert_summary_follows_consent()
    consents = client.get("/v1/me/consents", headers=headers).json["consents"]
    assert {key: (consents[key]["effective"], consents[key]["reason"]) for key in refused} == {
        key: (False, "reconfirm") for key in refused}
    assert consents["location"]["effective"] is True
    system = LedgerEntry.select().where((LedgerEntry.user == uid) & (LedgerEntry.source == "system"))
    assert {(e.permission, e.granted, e.reason) for e in system} == {(key, True, "reconfirm") for key in refused}
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview["eligible"] == 0 and preview["excluded"] == {"marketing_push:reconfirm": 1}
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output

    consents = put_consents(client, headers, marketing_push=True)
    assert (consents["marketing_push"]["effective"], consents["marketing_push"]["reason"]) == (True, None)
    assert Consent.get((Consent.user == uid) & (Consent.permission == "marketing_push")).refused is False
    last = LedgerEntry.select().where(LedgerEntry.user == uid).order_by(LedgerEntry.seq.desc()).first()
    assert (last.permission, last.granted, last.source, last.reason) == ("marketing_push", True, "app", None)
    assert_summary_follows_consent()
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview["eligible"] == 1


def test_a_grant_waiting_for_a_guardian_is_not_revived_by_a_correction_to_an_adult(client):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    uid = minor["user"]["id"]
    consents = put_consents(client, minor["headers"], location=True, service_push=True)
    assert consents["location"]["reason"] == "guardian_required"
    grants = LedgerEntry.select().where((LedgerEntry.user == uid) & (LedgerEntry.source == "app"))
    assert {(e.permission, e.granted, e.reason) for e in grants} == {
        ("location", True, "guardian_required"), ("service_push", True, "guardian_required")}
    assert client.patch("/v1/me", json={"birth_date": years_ago(40).isoformat()},
                        headers=minor["headers"]).status_code == 200
    consents = client.get("/v1/me/consents", headers=minor["headers"]).json["consents"]
    assert (consents["location"]["effective"], consents["location"]["reason"]) == (False, "reconfirm")
    assert client.post(f"/v1/devices/{add_device(client, minor['headers'])['id']}/locations",
                       json=point(31.23, 121.47), headers=minor["headers"]).status_code == 403
    assert not Location.select().where(Location.user == uid).exists()
    system = LedgerEntry.select().where((LedgerEntry.user == uid) & (LedgerEntry.source == "system"))
    assert {(e.permission, e.granted, e.reason) for e in system} == {
        ("location", True, "reconfirm"), ("service_push", True, "reconfirm")}


def test_profile_correction(client, user):
    other = new_user(client, email="taken@example.com")
    assert other
    response = client.patch("/v1/me", json={"email": "New@Example.com", "phone": "+1 555 0100"},
                            headers=user["headers"])
    assert response.status_code == 200
    stored = User.get_by_id(user["user"]["id"])
    assert (stored.email, stored.email_normalized, stored.phone) == ("New@Example.com", "new@example.com", "+15550100")
    conflict = client.patch("/v1/me", json={"email": "TAKEN@example.com"}, headers=user["headers"])
    assert conflict.status_code == 409
    assert User.get_by_id(user["user"]["id"]).email == "New@Example.com"
    for body, field in (({"birth_date": "2999-01-01"}, "birth_date"), ({"role": "admin"}, "role"),
                        ({"email": "nope"}, "email")):
        response = client.patch("/v1/me", json=body, headers=user["headers"])
        assert response.status_code == 422 and field in response.json["error"]["details"]
    assert User.get_by_id(user["user"]["id"]).role == "user"
    assert client.get("/v1/me", headers=user["headers"]).json["email"] == "New@Example.com"


def test_location_history_is_paged_and_deletable(client, user):
    put_consents(client, user["headers"], location=True)
    phone = add_device(client, user["headers"])
    for n in range(5):
        client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(minutes=n + 1)),
                    headers=user["headers"])
    first = client.get("/v1/me/locations?limit=3", headers=user["headers"]).json
    second = client.get(f"/v1/me/locations?limit=3&cursor={first['next_cursor']}", headers=user["headers"]).json
    times = [loc["captured_at"] for loc in first["items"] + second["items"]]
    assert len(set(times)) == 5 and times == sorted(times, reverse=True) and second["next_cursor"] is None
    assert client.delete("/v1/me/locations", headers=user["headers"]).status_code == 204
    assert Location.select().count() == 0
    assert client.get("/v1/me/consents", headers=user["headers"]).json["consents"]["location"]["effective"]


@pytest.mark.slow
def test_exporting_100000_locations_keeps_memory_flat(client, user):
    put_consents(client, user["headers"], location=True)
    phone = add_device(client, user["headers"])
    now = utcnow()
    rows = [{"device": phone["id"], "user": user["user"]["id"], "latitude": 31.22314453125,
             "longitude": 121.48681640625, "geohash": "wtw3s", "precision": "approximate",
             "captured_at": now - timedelta(seconds=n), "received_at": now} for n in range(100_000)]
    with db.atomic():
        for start in range(0, len(rows), 5000):
            Location.insert_many(rows[start:start + 5000]).execute()
    del rows

    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    response = client.get("/v1/me/export", headers=user["headers"], buffered=False)
    count, size = 0, 0
    for chunk in response.response:
        size += len(chunk)
        count += chunk.count(b'"precision"') if isinstance(chunk, bytes) else chunk.count('"precision"')
    response.close()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 100_000
    assert size > 10_000_000
    assert peak - baseline < 50 * 1024 * 1024, f"peak growth {(peak - baseline) / 1e6:.1f} MB"
