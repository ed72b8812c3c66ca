"""Consent through the API, read back from the database (issue 3)."""
import logging
import threading

import pytest

import consent
from consent.effects import effects
from consent.ledger import truncate_ip
from models import Consent, LedgerEntry, PolicyVersion, User
from tests.consent_helpers import assert_summary_follows_consent, new_user, put_consents, years_ago


def ledger_of(user_id):
    return list(LedgerEntry.select().where(LedgerEntry.user == user_id).order_by(LedgerEntry.seq))


def test_catalogue_is_public_and_complete(client):
    response = client.get("/v1/permissions")
    assert response.status_code == 200
    by_key = {p["key"]: p for p in response.json["permissions"]}
    assert set(by_key) == {"device_info", "location", "precise_location", "service_push", "marketing_push",
                           "personalization", "partner_sharing", "usage_statistics"}
    assert by_key["precise_location"]["requires"] == ["location"]
    assert by_key["location"]["sensitive"] and by_key["location"]["policy_section"] == "1.2(2)"
    for key in ("marketing_push", "partner_sharing", "precise_location"):
        assert by_key[key]["minors_allowed"] is False
    assert by_key["location"]["guardian_required"] is True


def test_first_policy_comes_from_a_migration(client):
    response = client.get("/v1/policy")
    assert response.status_code == 200
    assert response.json["version"] == "1"
    assert "location" in response.json["changed_permissions"]


def test_nothing_is_granted_by_default(client, user):
    body = client.get("/v1/me/consents", headers=user["headers"]).json
    assert body["policy_version"] == "1"
    for status in body["consents"].values():
        assert status["granted"] is False and status["effective"] is False
        assert status["reason"] == "not_asked"
    assert Consent.select().count() == 0


def test_grant_and_withdraw_write_one_entry_each_and_no_op_writes_nothing(client, user):
    uid = user["user"]["id"]
    consents = put_consents(client, user["headers"], location=True, marketing_push=True)
    assert consents["location"]["effective"] and consents["marketing_push"]["effective"]
    assert len(ledger_of(uid)) == 2
    put_consents(client, user["headers"], location=True, marketing_push=True)
    assert len(ledger_of(uid)) == 2
    consents = put_consents(client, user["headers"], location=False)
    assert consents["location"] == {**consents["location"], "granted": False, "effective": False, "reason": "withdrawn"}
    entries = ledger_of(uid)
    assert [(e.permission, e.granted) for e in entries] == [
        ("location", True), ("marketing_push", True), ("location", False)]
    assert Consent.get(Consent.permission == "location").granted is False


def test_ledger_entry_records_context_with_truncated_ip(client, user):
    client.put(
        "/v1/me/consents",
        json={"consents": {"usage_statistics": True}, "source": "web"},
        headers={**user["headers"], "User-Agent": "ShopApp/3.1 (Android 14)"},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    entry = ledger_of(user["user"]["id"])[0]
    assert entry.source == "web"
    assert entry.ip == "203.0.113.0"
    assert entry.user_agent == "ShopApp/3.1 (Android 14)"
    assert entry.policy_version == "1"
    assert entry.prev_hash == "0" * 64 and len(entry.hash) == 64


@pytest.mark.parametrize("address,truncated", [
    ("198.51.100.200", "198.51.100.0"),
    ("2001:db8:abcd:1234::1", "2001:db8:abcd::"),
    ("::ffff:192.0.2.9", "192.0.2.0"),
    ("not-an-ip", None),
    (None, None),
])
def test_ip_truncation(address, truncated):
    assert truncate_ip(address) == truncated


@pytest.mark.parametrize("body,field", [
    ({"consents": {"location": True, "telepathy": True}}, "consents"),
    ({"consents": {"location": True, "marketing_push": "yes"}}, "consents"),
    ({"consents": {"location": 1}}, "consents"),
    ({"consents": {}}, "consents"),
    ({"consents": {"location": True}, "source": "admin"}, "source"),
    ({"consents": {"location": True}, "device_id": "nope"}, "device_id"),
    ({"consents": {"location": True}, "extra": 1}, "extra"),
    ({}, "consents"),
])
def test_bad_consent_updates_are_422_and_change_nothing(client, user, body, field):
    put_consents(client, user["headers"], service_push=True)
    before = (Consent.select().count(), LedgerEntry.select().count())
    response = client.put("/v1/me/consents", json=body, headers=user["headers"])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["details"]
    assert (Consent.select().count(), LedgerEntry.select().count()) == before
    assert not Consent.select().where(Consent.permission == "location").exists()


def test_minor_needs_guardian_and_never_gets_marketing(client, admin):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    consents = put_consents(client, minor["headers"], marketing_push=True, location=True)
    assert consents["marketing_push"] == {**consents["marketing_push"], "granted": True, "effective": False,
                                          "reason": "not_for_minors"}
    assert consents["location"]["granted"] is True
    assert consents["location"]["reason"] == "guardian_required"

    uid = minor["user"]["id"]
    response = client.post(f"/v1/admin/users/{uid}/guardian-consent", headers=admin["headers"], json={
        "guardian_name": "Parent Name", "relationship": "mother", "evidence_ref": "form-2026-0042"})
    assert response.status_code == 201
    assert response.json["user_id"] == uid
    entry = ledger_of(uid)[-1]
    assert (entry.permission, entry.granted, entry.source) == ("guardian_consent", True, "guardian")

    consents = client.get("/v1/me/consents", headers=minor["headers"]).json["consents"]
    assert consents["location"]["effective"] is True and consents["location"]["reason"] is None
    assert consents["marketing_push"]["reason"] == "not_for_minors"


def test_a_guardians_consent_completes_only_the_grants_that_waited_for_it(client, admin):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    uid = minor["user"]["id"]
    put_consents(client, minor["headers"], location=True, marketing_push=True)

    def refused():
        return {c.permission: c.refused for c in Consent.select().where(Consent.user == uid)}

    assert refused() == {"location": True, "marketing_push": True}
    client.post(f"/v1/admin/users/{uid}/guardian-consent", headers=admin["headers"], json={
        "guardian_name": "G", "relationship": "mother", "evidence_ref": "ref-2"})
    assert refused() == {"location": False, "marketing_push": True}
    assert_summary_follows_consent()
    client.patch("/v1/me", json={"birth_date": years_ago(20).isoformat()}, headers=minor["headers"])
    consents = client.get("/v1/me/consents", headers=minor["headers"]).json["consents"]
    assert consents["location"]["effective"] is True
    assert (consents["marketing_push"]["effective"], consents["marketing_push"]["reason"]) == (False, "reconfirm")


def test_revoking_guardian_consent_withdraws_what_depended_on_it(client, admin):
    minor = new_user(client, birth_date=years_ago(16).isoformat())
    uid = minor["user"]["id"]
    client.post(f"/v1/admin/users/{uid}/guardian-consent", headers=admin["headers"], json={
        "guardian_name": "G", "relationship": "father", "evidence_ref": "ref-1"})
    put_consents(client, minor["headers"], location=True, service_push=True)
    response = client.delete(f"/v1/admin/users/{uid}/guardian-consent", headers=admin["headers"])
    assert response.status_code == 204
    states = {c.permission: c.granted for c in Consent.select().where(Consent.user == uid)}
    assert states == {"location": False, "service_push": False}
    assert_summary_follows_consent()
    tail = [(e.permission, e.granted, e.reason) for e in ledger_of(uid)[-3:]]
    assert tail == [("guardian_consent", False, None), ("location", False, "guardian_required"),
                    ("service_push", False, "guardian_required")]
    assert client.delete(f"/v1/admin/users/{uid}/guardian-consent", headers=admin["headers"]).status_code == 404


def test_guardian_consent_for_unknown_user_is_404(client, admin):
    response = client.post("/v1/admin/users/0b6b1b7e-3f4a-4f7e-9a59-6f3c5d1f2a10/guardian-consent",
                           headers=admin["headers"], json={"guardian_name": "G", "relationship": "r", "evidence_ref": "e"})
    assert response.status_code == 404


def test_policy_change_makes_grants_stale_until_confirmed(client, user, admin):
    uid = user["user"]["id"]
    put_consents(client, user["headers"], location=True, marketing_push=True)
    response = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "2", "text": "Location is now used for delivery slots.", "changed_permissions": ["location"]})
    assert response.status_code == 201
    assert response.json["changed_permissions"] == ["location"]
    assert client.get("/v1/policy").json["version"] == "2"

    consents = client.get("/v1/me/consents", headers=user["headers"]).json
    assert consents["policy_version"] == "2"
    assert consents["consents"]["location"]["granted"] is True
    assert consents["consents"]["location"]["reason"] == "stale_policy"
    assert consents["consents"]["marketing_push"]["effective"] is True  # not listed as changed

    consents = put_consents(client, user["headers"], location=True)
    assert consents["location"]["effective"] is True
    assert consents["location"]["policy_version"] == "2"
    last = ledger_of(uid)[-1]
    assert (last.permission, last.granted, last.policy_version) == ("location", True, "2")


def test_publishing_validates_and_refuses_duplicates(client, admin):
    bad = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "3", "text": "x", "changed_permissions": ["telepathy"]})
    assert bad.status_code == 422 and "changed_permissions" in bad.json["error"]["details"]
    assert PolicyVersion.select().count() == 1
    dup = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "1", "text": "x", "changed_permissions": []})
    assert dup.status_code == 409 and dup.json["error"]["code"] == "version_exists"


def test_admin_reads_a_users_effective_consents(client, user, admin):
    put_consents(client, user["headers"], service_push=True)
    body = client.get(f"/v1/admin/users/{user['user']['id']}/consents", headers=admin["headers"]).json
    assert body["user_id"] == user["user"]["id"]
    assert body["consents"]["service_push"]["effective"] is True
    assert body["consents"]["marketing_push"]["reason"] == "not_asked"


def test_history_is_paged_newest_first(client, user):
    for value in (True, False, True, False, True):
        put_consents(client, user["headers"], personalization=value)
    first = client.get("/v1/me/consents/history?limit=2", headers=user["headers"]).json
    assert [e["granted"] for e in first["items"]] == [True, False]
    second = client.get(f"/v1/me/consents/history?limit=2&cursor={first['next_cursor']}", headers=user["headers"]).json
    third = client.get(f"/v1/me/consents/history?limit=2&cursor={second['next_cursor']}", headers=user["headers"]).json
    ids = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    assert third["next_cursor"] is None
    bad = client.get("/v1/me/consents/history?cursor=%%%", headers=user["headers"])
    assert bad.status_code == 422 and "cursor" in bad.json["error"]["details"]


def test_history_shows_only_the_users_own_entries(client, user):
    other = new_user(client)
    put_consents(client, other["headers"], location=True)
    assert client.get("/v1/me/consents/history", headers=user["headers"]).json["items"] == []


def test_withdrawal_effect_failure_rolls_back_everything(client, user):
    put_consents(client, user["headers"], location=True, marketing_push=True)
    before = (list(Consent.select().dicts()), LedgerEntry.select().count())

    def failing_effect(user, decisions):
        raise RuntimeError("effect failed")

    effects.register("marketing_push", failing_effect)
    try:
        response = client.put("/v1/me/consents", json={"consents": {"location": False, "marketing_push": False}},
                              headers=user["headers"])
    finally:
        effects.unregister("marketing_push", failing_effect)
    assert response.status_code == 500
    assert (list(Consent.select().dicts()), LedgerEntry.select().count()) == before


def test_withdrawal_effects_run_in_the_transaction_with_the_after_state(client, user):
    put_consents(client, user["headers"], location=True, precise_location=True)
    seen = []

    def record(user_obj, decisions):
        seen.append((decisions["location"].reason, decisions["precise_location"].reason,
                     Consent.get(Consent.permission == "location").granted))

    effects.register("precise_location", record)
    try:
        put_consents(client, user["headers"], location=False)
    finally:
        effects.unregister("precise_location", record)
    # precise_location stopped because its requirement went: its effect ran too
    assert seen == [("withdrawn", "requires:location", False)]


def test_checking_every_permission_costs_one_query(app, user, caplog):
    u = User.get_by_id(user["user"]["id"])
    with app.test_request_context():
        app.preprocess_request()  # the request hooks open the per-request consent cache
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            decisions = [consent.check(u, key) for key in ("location", "precise_location", "marketing_push",
                                                           "device_info", "service_push")]
    queries = [r for r in caplog.records if r.name == "peewee"]
    assert len(queries) == 1
    assert all(d.reason == "not_asked" for d in decisions)


def test_concurrent_toggles_leave_state_equal_to_the_ledger(make_app, runner):
    app = make_app()
    client = app.test_client()
    user = new_user(client)
    keys = ["location", "marketing_push", "personalization", "usage_statistics"]
    errors = []
    start = threading.Barrier(2)

    def toggle(offset):
        local = app.test_client()
        start.wait()
        try:
            for i in range(40):
                value = (i + offset) % 2 == 0
                response = local.put("/v1/me/consents",
                                     json={"consents": {k: value for k in keys[offset % 2::2] + keys[:1]}},
                                     headers=user["headers"])
                if response.status_code != 200:
                    errors.append(response.json)
        except Exception as error:  # surfaced below
            errors.append(repr(error))

    threads = [threading.Thread(target=toggle, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    uid = user["user"]["id"]
    for key in keys:
        last = (LedgerEntry.select().where((LedgerEntry.user == uid) & (LedgerEntry.permission == key))
                .order_by(LedgerEntry.seq.desc()).first())
        assert Consent.get((Consent.user == uid) & (Consent.permission == key)).granted == last.granted
    seqs = [e.seq for e in ledger_of(uid)]
    assert seqs == list(range(1, len(seqs) + 1))
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output
