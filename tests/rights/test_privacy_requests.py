"""Staff answering a privacy request (issue 16): find a user, read the
record and the ledger with the chain's status, see the minors waiting for a
guardian, export and erase on request."""
import json

import pytest

from auth import audit
from models import Consent, Device, LedgerEntry, Location, User
from rights.erasure import ERASED_MODELS
from tests.consent_helpers import assert_summary_follows_consent, new_user, put_consents, years_ago
from tests.device_helpers import add_device, point

GUARDIAN = {"guardian_name": "Parent P", "relationship": "mother", "evidence_ref": "form-2026-0042"}


@pytest.fixture
def privacy(auth):
    return auth.staff("privacy")


def test_a_user_is_found_by_email_phone_or_id_without_the_password_hash(client, privacy):
    person = new_user(client, phone="+86 139-1234-5678")
    uid = person["user"]["id"]
    new_user(client)  # someone else, never in the answers
    for query in ({"email": "  " + person["user"]["email"].upper() + " "}, {"phone": "+86 (139) 1234 5678"},
                  {"id": uid}):
        response = client.get("/v1/admin/users", query_string=query, headers=privacy["headers"])
        assert response.status_code == 200, response.json
        assert [item["id"] for item in response.json["items"]] == [uid]
        assert "password_hash" not in response.json["items"][0]
    nobody = client.get("/v1/admin/users?email=nobody@example.com", headers=privacy["headers"])
    assert nobody.status_code == 200 and nobody.json["items"] == []


def test_a_search_takes_exactly_one_field_and_names_them_otherwise(client, privacy):
    none = client.get("/v1/admin/users", headers=privacy["headers"])
    assert none.status_code == 422
    assert sorted(none.json["error"]["details"]) == ["email", "id", "phone"]
    two = client.get("/v1/admin/users?email=a@example.com&phone=123456", headers=privacy["headers"])
    assert two.status_code == 422
    assert sorted(two.json["error"]["details"]) == ["email", "phone"]


def test_the_record_shows_consents_with_reasons_devices_as_stored_guardians_and_the_chain(client, privacy):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    uid = minor["user"]["id"]
    client.post(f"/v1/admin/users/{uid}/guardian-consent", json=GUARDIAN, headers=privacy["headers"])
    put_consents(client, minor["headers"], device_info=True, marketing_push=True)
    device = add_device(client, minor["headers"], model="Model-R")

    response = client.get(f"/v1/admin/users/{uid}", headers=privacy["headers"])
    assert response.status_code == 200, response.json
    record = response.json
    assert record["user"]["email"] == minor["user"]["email"]
    assert record["consents"]["minor"] is True and record["consents"]["guardian_consent"] is True
    consents = record["consents"]["consents"]
    assert consents["device_info"]["effective"] is True
    assert (consents["marketing_push"]["granted"], consents["marketing_push"]["reason"]) == (True, "not_for_minors")
    assert consents["location"]["reason"] == "not_asked"
    assert [(d["id"], d["model"]) for d in record["devices"]] == [(device["id"], "Model-R")]
    [guardian] = record["guardian_consents"]
    assert (guardian["evidence_ref"], guardian["revoked_at"]) == ("form-2026-0042", None)
    assert record["chain"] == {"ok": True, "entries": LedgerEntry.select().where(LedgerEntry.user == uid).count(),
                               "failure": None}


def test_the_ledger_is_newest_first_in_pages_and_a_tampered_chain_shows_as_failed(client, privacy):
    person, bystander = new_user(client), new_user(client)
    uid = person["user"]["id"]
    for granted in (True, False, True):
        put_consents(client, person["headers"], personalization=granted)
    put_consents(client, bystander["headers"], personalization=True)
    stored = [e.id for e in LedgerEntry.select().where(LedgerEntry.user == uid).order_by(LedgerEntry.id.desc())]

    first = client.get(f"/v1/admin/users/{uid}/ledger?limit=2", headers=privacy["headers"]).json
    second = client.get(f"/v1/admin/users/{uid}/ledger?limit=2&cursor={first['next_cursor']}",
                        headers=privacy["headers"]).json
    assert [e["id"] for e in first["items"] + second["items"]] == stored
    assert second["next_cursor"] is None
    assert first["chain"]["ok"] is True and first["chain"]["entries"] == 3

    LedgerEntry.update(granted=False).where(LedgerEntry.id == stored[0]).execute()
    tampered = client.get(f"/v1/admin/users/{uid}/ledger", headers=privacy["headers"]).json["chain"]
    assert tampered["ok"] is False and f"entry {stored[0]} " in tampered["failure"]
    untouched = client.get(f"/v1/admin/users/{bystander['user']['id']}/ledger", headers=privacy["headers"]).json
    assert untouched["chain"]["ok"] is True


def test_minors_awaiting_a_guardian_are_listed_with_the_permissions_waiting(client, privacy):
    waiting = [new_user(client, birth_date=years_ago(15).isoformat()) for _ in range(3)]
    put_consents(client, waiting[0]["headers"], location=True, usage_statistics=True, marketing_push=True)
    covered = new_user(client, birth_date=years_ago(13).isoformat())
    client.post(f"/v1/admin/users/{covered['user']['id']}/guardian-consent", json=GUARDIAN,
                headers=privacy["headers"])
    new_user(client, birth_date=years_ago(30).isoformat())
    new_user(client)  # no birth date: not known to be a minor

    first = client.get("/v1/admin/minors-awaiting-guardian?limit=2", headers=privacy["headers"]).json
    rest = client.get(f"/v1/admin/minors-awaiting-guardian?cursor={first['next_cursor']}",
                      headers=privacy["headers"]).json
    items = {item["id"]: item for item in first["items"] + rest["items"]}
    assert sorted(items) == sorted(session["user"]["id"] for session in waiting)
    assert items[waiting[0]["user"]["id"]]["waiting"] == ["location", "usage_statistics"]
    assert items[waiting[1]["user"]["id"]]["waiting"] == []  # marketing_push is never for minors: it waits for no one
    assert rest["next_cursor"] is None

    client.post(f"/v1/admin/users/{waiting[0]['user']['id']}/guardian-consent", json=GUARDIAN,
                headers=privacy["headers"])
    after = client.get("/v1/admin/minors-awaiting-guardian", headers=privacy["headers"]).json
    assert waiting[0]["user"]["id"] not in {item["id"] for item in after["items"]}


def test_an_export_on_request_is_the_users_own_export(client, privacy):
    person = new_user(client, phone="+8613900000001")
    put_consents(client, person["headers"], device_info=True, location=True)
    device = add_device(client, person["headers"])
    client.post(f"/v1/devices/{device['id']}/locations", json=point(), headers=person["headers"])

    response = client.get(f"/v1/admin/users/{person['user']['id']}/export", headers=privacy["headers"])
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert f'filename="user-{person["user"]["id"]}.json"' in response.headers["Content-Disposition"]
    document = json.loads(response.get_data(as_text=True))
    own = json.loads(client.get("/v1/me/export", headers=person["headers"]).get_data(as_text=True))
    for section in ("profile", "ledger", "devices", "locations", "consents"):
        assert document[section] == own[section], section


def test_erasure_on_request_needs_the_typed_email_or_id_then_leaves_no_row(client, privacy, runner):
    person, other = new_user(client), new_user(client)
    uid = person["user"]["id"]
    put_consents(client, person["headers"], device_info=True, location=True)
    device = add_device(client, person["headers"])
    client.post(f"/v1/devices/{device['id']}/locations", json=point(), headers=person["headers"])
    put_consents(client, other["headers"], location=True)

    wrong = client.delete(f"/v1/admin/users/{uid}", json={"confirm": other["user"]["email"]},
                          headers=privacy["headers"])
    assert wrong.status_code == 422 and "confirm" in wrong.json["error"]["details"]
    assert User.select().where(User.id == uid).exists()
    assert Location.select().where(Location.user == uid).exists()

    response = client.delete(f"/v1/admin/users/{uid}", json={"confirm": person["user"]["email"].upper()},
                             headers=privacy["headers"])
    assert response.status_code == 204
    for model in ERASED_MODELS:
        if "user" in model._meta.fields:
            assert not model.select().where(model.user == uid).exists(), model.__name__
    assert not User.select().where(User.id == uid).exists()
    assert not Device.select().where(Device.id == device["id"]).exists()
    assert Consent.select().where(Consent.user == other["user"]["id"]).exists()
    assert_summary_follows_consent()
    assert client.get("/v1/me", headers=person["headers"]).status_code == 401
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output


def test_erasure_by_id_works_and_a_staff_account_is_not_erased_here(client, privacy, auth):
    person = new_user(client)
    by_id = client.delete(f"/v1/admin/users/{person['user']['id']}", json={"confirm": person["user"]["id"]},
                          headers=privacy["headers"])
    assert by_id.status_code == 204
    colleague = auth.staff("campaigns")
    refused = client.delete(f"/v1/admin/users/{colleague['user']['id']}",
                            json={"confirm": colleague["user"]["email"]}, headers=privacy["headers"])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "staff_account"
    assert User.select().where(User.id == colleague["user"]["id"]).exists()


PRIVACY_ROUTES = [
    ("GET", "/v1/admin/users?id={uid}", None),
    ("GET", "/v1/admin/users/{uid}", None),
    ("GET", "/v1/admin/users/{uid}/ledger", None),
    ("GET", "/v1/admin/users/{uid}/export", None),
    ("GET", "/v1/admin/minors-awaiting-guardian", None),
    ("DELETE", "/v1/admin/users/{uid}", lambda session: {"confirm": session["user"]["id"]}),
]


@pytest.mark.parametrize("method,path,body", PRIVACY_ROUTES)
def test_privacy_routes_refuse_campaign_staff_and_admit_privacy_staff_and_admins(client, auth, admin, method, path,
                                                                                  body):
    for role, expected in (("campaigns", 403), ("user", 403), ("privacy", None), ("admin", None)):
        session = admin if role == "admin" else (new_user(client) if role == "user" else auth.staff(role))
        target = new_user(client)
        response = client.open(path.format(uid=target["user"]["id"]), method=method,
                               json=body(target) if body else None, headers=session["headers"])
        response.get_data()  # a streamed export runs to its end
        if expected:
            assert response.status_code == expected, (role, response.json)
            assert response.json["error"]["code"] == "forbidden"
            assert User.select().where(User.id == target["user"]["id"]).exists()
        else:
            assert response.status_code in (200, 204), (role, response.get_data(as_text=True)[:200])



def test_viewing_exporting_and_erasing_are_in_the_audit_log_by_user_id(client, privacy):
    person = new_user(client)
    uid = person["user"]["id"]
    client.get(f"/v1/admin/users/{uid}", headers=privacy["headers"])
    client.get(f"/v1/admin/users/{uid}/ledger", headers=privacy["headers"])
    client.get(f"/v1/admin/users/{uid}/export", headers=privacy["headers"]).get_data()
    client.delete(f"/v1/admin/users/{uid}", json={"confirm": "not-the-user"}, headers=privacy["headers"])
    assert audit.entries(action="user.erase") == []  # a refused confirmation erases nothing and records nothing
    client.delete(f"/v1/admin/users/{uid}", json={"confirm": uid}, headers=privacy["headers"])

    entries = audit.entries(target=f"user:{uid}")
    assert [entry.action for entry in reversed(entries)] == ["user.view", "user.view", "user.export", "user.erase"]
    assert {str(entry.actor_id) for entry in entries} == {privacy["user"]["id"]}
    assert all(person["user"]["email"] not in (entry.details or "") for entry in entries)
    assert audit.verify().ok
