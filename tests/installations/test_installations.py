"""Installations: their token, the merge rule, a minor's account, the
routes an installation may not use, erasure, export and retention."""
import json
from datetime import timedelta

import pytest

from consent import ledger
from models import Consent, Device, DeviceReport, Location, PushToken, User
from models.account import AuthSession
from models.base import utcnow
from models.consent import LedgerEntry
from rights import stats
from tests.conftest import PASSWORD, bearer
from tests.consent_helpers import new_user, put_consents, years_ago
from tests.device_helpers import add_device, point
from tests.installation_helpers import merging, new_installation, put_installation_consents


def login_from(client, email, installation):
    response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD},
                           headers=merging(installation))
    assert response.status_code == 200, response.json
    return response.json


def account_choices(user_id):
    return {row.permission: row.granted for row in Consent.select().where(Consent.user == user_id)}


# -- the token ----------------------------------------------------------------

def test_an_installation_stores_nothing_but_itself_before_consent(client):
    installation = new_installation(client)
    row = User.get_by_id(installation["id"])
    assert (row.kind, row.installation_id, row.email, row.email_normalized, row.password_hash) == (
        "installation", installation["installation_id"], None, None, None)
    assert Consent.select().count() == 0 and Device.select().count() == 0 and LedgerEntry.select().count() == 0
    assert AuthSession.select().where(AuthSession.user == row.id).count() == 1
    overview = client.get("/v1/installation/consents", headers=installation["headers"]).json
    assert all(not c["effective"] and c["reason"] == "not_asked" for c in overview["consents"].values())


def test_a_taken_installation_id_gets_a_token_only_with_its_own_token(client):
    first = new_installation(client)
    body = {"installation_id": first["installation_id"], "platform": "android", "app_version": "3.12.0"}
    refused = client.post("/v1/installations", json=body)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "installation_exists"
    other = new_installation(client)
    assert client.post("/v1/installations", json=body, headers=other["headers"]).status_code == 409
    again = client.post("/v1/installations", json=body, headers=first["headers"])
    assert again.status_code == 200 and again.json["installation"]["id"] == first["id"]
    assert client.get("/v1/installation/consents", headers=bearer(again.json["installation_token"])).status_code == 200
    assert User.select().where(User.installation_id == first["installation_id"]).count() == 1


def test_installations_are_rate_limited_per_address(make_app):
    client = make_app(RATELIMIT_INSTALLATION="2 per minute").test_client()
    new_installation(client)
    new_installation(client)
    body = {"installation_id": "inst-limited-0001", "platform": "ios", "app_version": "1.0"}
    limited = client.post("/v1/installations", json=body)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert not User.select().where(User.installation_id == "inst-limited-0001").exists()


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/me"), ("PATCH", "/v1/me"), ("DELETE", "/v1/me"), ("GET", "/v1/me/consents"),
    ("PUT", "/v1/me/consents"), ("GET", "/v1/me/export"), ("GET", "/v1/me/locations"), ("POST", "/v1/auth/logout"),
    ("GET", "/v1/admin/campaigns"), ("GET", "/v1/admin/stats/consents"),
])
def test_an_installation_token_is_refused_on_account_routes(client, method, path):
    installation = new_installation(client)
    response = client.open(path, method=method, headers=installation["headers"], json={})
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "installation_token_refused"
    assert User.get_or_none(User.id == installation["id"]) is not None


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/installation/consents"), ("PUT", "/v1/installation/consents"),
    ("GET", "/v1/installation/consents/history"), ("GET", "/v1/installation/export"), ("DELETE", "/v1/installation"),
])
def test_an_account_token_is_refused_on_installation_routes(client, user, method, path):
    response = client.open(path, method=method, headers=user["headers"], json={})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "installation_token_required"
    assert User.get_or_none(User.id == user["user"]["id"]) is not None


def test_an_invalid_installation_token_at_sign_in_is_401_and_creates_nothing(client, user):
    response = client.post("/v1/auth/register", json={"email": "nobody@example.com", "password": PASSWORD},
                           headers={"X-Installation-Token": user["access_token"]})
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_installation_token"
    assert not User.select().where(User.email_normalized == "nobody@example.com").exists()


# -- the merge rule ---------------------------------------------------------------

def test_the_installations_newer_choice_wins(client, user):
    put_consents(client, user["headers"], marketing_push=False, usage_statistics=True)
    installation = new_installation(client)
    put_installation_consents(client, installation, marketing_push=True, service_push=True)
    session = login_from(client, user["user"]["email"], installation)
    assert account_choices(user["user"]["id"]) == {"marketing_push": True, "usage_statistics": True,
                                                   "service_push": True}
    overview = client.get("/v1/me/consents", headers=bearer(session["access_token"])).json["consents"]
    assert overview["marketing_push"]["effective"] is True
    adopted = LedgerEntry.select().where((LedgerEntry.user == user["user"]["id"])
                                         & (LedgerEntry.source == "installation"))
    assert sorted(entry.permission for entry in adopted) == ["marketing_push", "service_push"]
    assert all(entry.adopted_from for entry in adopted)
    assert ledger.verify().ok


def test_the_accounts_newer_choice_wins(client, user):
    installation = new_installation(client)
    put_installation_consents(client, installation, location=True, device_info=True)
    device = add_device(client, installation["headers"])
    assert client.post(f"/v1/devices/{device['id']}/locations", json=point(),
                       headers=installation["headers"]).status_code == 201
    put_consents(client, user["headers"], location=False)  # later than the installation's grant
    login_from(client, user["user"]["email"], installation)
    assert account_choices(user["user"]["id"]) == {"location": False, "device_info": True}
    # the account's choice holds over the data too: the installation's points are not kept
    assert Location.select().count() == 0
    assert Device.get_by_id(device["id"]).model == "Pixel 9"
    assert not LedgerEntry.select().where((LedgerEntry.user == user["user"]["id"])
                                          & (LedgerEntry.permission == "location")
                                          & (LedgerEntry.source == "installation")).exists()
    assert ledger.verify().ok


def test_a_minor_account_keeps_its_rules_after_a_merge(client):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    installation = new_installation(client)
    put_installation_consents(client, installation, device_info=True, location=True, precise_location=True,
                              service_push=True, marketing_push=True)
    device = add_device(client, installation["headers"])
    assert client.post(f"/v1/devices/{device['id']}/locations", json=point(accuracy_m=3),
                       headers=installation["headers"]).status_code == 201
    assert client.put(f"/v1/devices/{device['id']}/push-token", json={"token": "minor-" + "m" * 60},
                      headers=installation["headers"]).status_code == 200
    assert client.post(f"/v1/devices/{device['id']}/reports", json={"app_version": "3.12.1", "model": "Pixel 9"},
                       headers=installation["headers"]).status_code == 201

    session = login_from(client, minor["user"]["email"], installation)
    overview = client.get("/v1/me/consents", headers=bearer(session["access_token"])).json
    assert overview["minor"] is True
    assert not any(c["effective"] for c in overview["consents"].values())
    assert overview["consents"]["marketing_push"]["reason"] in ("not_for_minors", "guardian_required")
    # nothing the installation's grants allowed is kept for the minor
    assert Location.select().count() == 0
    assert PushToken.select().count() == 0
    assert DeviceReport.select().count() == 0
    stored = Device.get_by_id(device["id"])
    assert str(stored.user_id) == minor["user"]["id"] and stored.model is None
    assert ledger.verify().ok


# -- rights and retention ----------------------------------------------------

def _filled_installation(client):
    installation = new_installation(client)
    put_installation_consents(client, installation, device_info=True, location=True, service_push=True)
    device = add_device(client, installation["headers"])
    client.post(f"/v1/devices/{device['id']}/locations", json=point(), headers=installation["headers"])
    client.put(f"/v1/devices/{device['id']}/push-token", json={"token": "erase-" + "e" * 60},
               headers=installation["headers"])
    return installation, device


def _holds_nothing(installation_id, device_id):
    assert User.get_or_none(User.id == installation_id) is None
    assert not Device.select().where(Device.id == device_id).exists()
    assert Location.select().count() == 0 and PushToken.select().count() == 0
    assert Consent.select().where(Consent.user == installation_id).count() == 0
    assert AuthSession.select().where(AuthSession.user == installation_id).count() == 0
    entries = list(LedgerEntry.select())
    assert entries and all(e.user_id is None and e.ip is None and e.device_id is None for e in entries)
    assert ledger.verify().ok


def test_an_installation_is_exported(client):
    installation, device = _filled_installation(client)
    response = client.get("/v1/installation/export", headers=installation["headers"])
    assert response.status_code == 200
    document = json.loads(response.get_data(as_text=True))
    assert document["profile"]["installation_id"] == installation["installation_id"]
    assert [d["id"] for d in document["devices"]] == [device["id"]]
    assert len(document["locations"]) == 1 and len(document["push_tokens"]) == 1
    assert len(document["consent_receipts"]) == 3


def test_an_installation_is_erased(client):
    installation, device = _filled_installation(client)
    assert client.delete("/v1/installation", headers=installation["headers"]).status_code == 204
    _holds_nothing(installation["id"], device["id"])
    assert client.get("/v1/installation/consents", headers=installation["headers"]).status_code == 401


def test_the_purge_erases_idle_installations_only(app, client, runner):
    idle, device = _filled_installation(client)
    active = new_installation(client)
    User.update(last_seen_at=utcnow() - timedelta(days=181)).where(User.id == idle["id"]).execute()
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "installations: 1 deleted" in result.output
    _holds_nothing(idle["id"], device["id"])
    assert User.get_or_none(User.id == active["id"]) is not None


def test_a_request_marks_an_idle_installation_active(client):
    installation = new_installation(client)
    User.update(last_seen_at=utcnow() - timedelta(days=30)).where(User.id == installation["id"]).execute()
    client.get("/v1/installation/consents", headers=installation["headers"])
    assert User.get_by_id(installation["id"]).last_seen_at > utcnow() - timedelta(minutes=5)


# -- what staff count -------------------------------------------------------------

def test_statistics_count_accounts_not_installations(app, client, user):
    put_consents(client, user["headers"], usage_statistics=True)
    installation = new_installation(client)
    put_installation_consents(client, installation, usage_statistics=True, device_info=True)
    add_device(client, installation["headers"])
    with app.app_context():
        counts = stats.consent_counts()
        effects = stats.consent_effects()
        devices = stats.device_counts("model")
    assert counts["users"] == 1 and counts["permissions"]["usage_statistics"]["granted"] == 1
    assert sum(effects["usage_statistics"].values()) == 1
    assert devices["groups"] == [] and devices["suppressed"] == 0


def test_staff_cannot_open_an_installation_as_a_user_record(client, admin):
    installation = new_installation(client)
    response = client.get(f"/v1/admin/users/{installation['id']}/consents", headers=admin["headers"])
    assert response.status_code == 404


def test_a_merged_installations_token_cannot_merge_again(client, user):
    installation = new_installation(client)
    put_installation_consents(client, installation, usage_statistics=True)
    login_from(client, user["user"]["email"], installation)
    other = new_user(client)
    response = client.post("/v1/auth/login", json={"email": other["user"]["email"], "password": PASSWORD},
                           headers=merging(installation))
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_installation_token"
    assert account_choices(other["user"]["id"]) == {}
