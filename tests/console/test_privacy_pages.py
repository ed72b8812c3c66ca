"""The console's Users, Policies, Statistics and Staff & audit pages
through the Flask test client (issue 16): what each shows, that each form
changes what it says and needs the page's CSRF token, and the roles."""
import json
import re

import pytest

from auth import audit
from models import AuditEntry, Consent, Device, GuardianConsent, LedgerEntry, PolicyVersion, User
from tests.consent_helpers import new_user, put_consents, years_ago
from tests.device_helpers import add_device
from tests.rights.test_stats import population

GUARDIAN = {"guardian_name": "Parent P", "relationship": "mother", "evidence_ref": "form-2026-0042"}


@pytest.fixture
def privacy(console, staff):
    console.sign_in(staff("privacy"))
    return console


def text(response):
    return response.get_data(as_text=True)


def test_the_users_page_finds_a_user_by_email_phone_or_id(client, privacy):
    person = new_user(client, phone="+8613900000007")
    new_user(client)
    for by, q in (("email", person["user"]["email"].upper()), ("phone", "+86 139 0000 0007"),
                  ("id", person["user"]["id"])):
        page = text(privacy.get("/console/users", query_string={"by": by, "q": q}))
        assert page.count('href="/console/users/') == 1, by
        assert f'href="/console/users/{person["user"]["id"]}"' in page
    assert "Nobody matches." in text(privacy.get("/console/users?by=id&q=not-an-id"))
    assert privacy.get("/console/users?by=name&q=x").status_code == 200  # the refusal is shown on the page
    assert "by: Must be one of" in text(privacy.get("/console/users?by=name&q=x"))


def test_the_record_page_shows_consents_with_reasons_chain_devices_and_ledger_and_is_audited(client, privacy):
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    uid = minor["user"]["id"]
    put_consents(client, minor["headers"], location=True, marketing_push=True)
    add_device(client, minor["headers"], installation_id="install-record-1")

    page = text(privacy.get(f"/console/users/{uid}"))
    assert re.search(r'data-permission="location">.*?<td class="reason">guardian_required</td>', page, re.S)
    assert re.search(r'data-permission="marketing_push">.*?<td class="reason">not_for_minors</td>', page, re.S)
    assert 'id="chain-status">verified' in page
    assert "install-record-1" in page
    entries = LedgerEntry.select().where(LedgerEntry.user == uid).count()
    ledger = page.split('id="ledger"', 1)[1]
    assert ledger.count("<td>withdrawn</td>") + ledger.count("<td>granted</td>") == entries
    assert [e.action for e in audit.entries(target=f"user:{uid}")] == ["user.view"]


def test_the_users_page_lists_minors_awaiting_a_guardian_with_what_waits(client, privacy):
    minor = new_user(client, birth_date=years_ago(12).isoformat())
    put_consents(client, minor["headers"], location=True)
    new_user(client, birth_date=years_ago(40).isoformat())
    page = text(privacy.get("/console/users"))
    minors = page.split('id="minors"', 1)[1]
    assert minor["user"]["email"] in minors and minors.count('href="/console/users/') == 1
    assert "<td>location</td>" in minors


def test_recording_and_revoking_a_guardian_consent_need_the_csrf_token(client, privacy):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    uid = minor["user"]["id"]
    put_consents(client, minor["headers"], location=True)

    forged = privacy.post(f"/console/users/{uid}/guardian-consent", data=GUARDIAN, csrf=False)
    assert forged.status_code == 403
    assert not GuardianConsent.select().where(GuardianConsent.user == uid).exists()
    assert audit.entries(action="guardian.record") == []

    response = privacy.post(f"/console/users/{uid}/guardian-consent", data=GUARDIAN)
    assert response.status_code == 303
    record = GuardianConsent.get(GuardianConsent.user == uid)
    assert record.evidence_ref == "form-2026-0042"
    [recorded] = audit.entries(action="guardian.record")
    assert (recorded.actor_email, recorded.actor_role, recorded.target) == (privacy.email, "privacy", f"user:{uid}")
    assert json.loads(recorded.details) == {"guardian_consent_id": str(record.id)}
    page = text(privacy.get(f"/console/users/{uid}"))
    assert re.search(r'data-permission="location">.*?<td class="reason"></td>', page, re.S)  # in effect now

    assert privacy.post(f"/console/users/{uid}/guardian-consent/revoke", csrf=False).status_code == 403
    assert GuardianConsent.get(GuardianConsent.user == uid).revoked_at is None
    assert audit.entries(action="guardian.revoke") == []
    assert privacy.post(f"/console/users/{uid}/guardian-consent/revoke").status_code == 303
    [revoked] = audit.entries(action="guardian.revoke")
    assert (revoked.actor_email, revoked.actor_role, revoked.target) == (privacy.email, "privacy", f"user:{uid}")
    assert GuardianConsent.get(GuardianConsent.user == uid).revoked_at is not None
    assert Consent.get((Consent.user == uid) & (Consent.permission == "location")).granted is False


def test_a_guardian_form_with_a_missing_field_is_refused_naming_it(client, privacy):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    response = privacy.post(f"/console/users/{minor['user']['id']}/guardian-consent",
                            data={**GUARDIAN, "evidence_ref": ""})
    assert response.status_code == 422 and "evidence_ref:" in text(response)
    assert GuardianConsent.select().count() == 0


def test_a_guardian_form_with_text_that_cannot_be_stored_is_refused(client, privacy):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    response = privacy.post(f"/console/users/{minor['user']['id']}/guardian-consent",
                            data={**GUARDIAN, "guardian_name": "Parent\x00P"})
    assert response.status_code == 422 and "guardian_name: Must not contain NUL" in text(response)
    assert GuardianConsent.select().count() == 0


def test_the_export_download_is_the_users_export(client, privacy):
    person = new_user(client)
    put_consents(client, person["headers"], device_info=True)
    add_device(client, person["headers"])
    response = privacy.get(f"/console/users/{person['user']['id']}/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    document = json.loads(text(response))
    assert document["profile"]["email"] == person["user"]["email"] and len(document["devices"]) == 1
    assert [e.action for e in audit.entries(target=f"user:{person['user']['id']}")] == ["user.export"]


def test_erasure_needs_the_typed_email_and_the_csrf_token_then_the_rows_are_gone(client, privacy):
    person = new_user(client)
    uid = person["user"]["id"]
    put_consents(client, person["headers"], device_info=True)
    add_device(client, person["headers"])

    assert privacy.post(f"/console/users/{uid}/erase", data={"confirm": uid}, csrf=False).status_code == 403
    wrong = privacy.post(f"/console/users/{uid}/erase", data={"confirm": "someone@example.com"})
    assert wrong.status_code == 422 and "confirm:" in text(wrong)
    assert User.select().where(User.id == uid).exists()

    response = privacy.post(f"/console/users/{uid}/erase", data={"confirm": person["user"]["email"]})
    assert response.status_code == 303 and "erased=" in response.headers["Location"]
    assert not User.select().where(User.id == uid).exists()
    assert not Device.select().where(Device.user == uid).exists()
    assert not Consent.select().where(Consent.user == uid).exists()
    assert [e.action for e in audit.entries(action="user.erase")] == ["user.erase"]


def test_publishing_a_policy_needs_the_csrf_token_and_lists_what_it_changed(privacy):
    form = {"version": "2026-12", "text": "New text.", "changed_permissions": ["location", "personalization"]}
    assert privacy.post("/console/policies", data=form, csrf=False).status_code == 403
    assert not PolicyVersion.select().where(PolicyVersion.version == "2026-12").exists()
    assert audit.entries(action="policy.publish") == []

    response = privacy.post("/console/policies", data=form)
    assert response.status_code == 303
    [published] = audit.entries(action="policy.publish")
    assert (published.actor_email, published.actor_role, published.target) == (privacy.email, "privacy", "policy:2026-12")
    assert PolicyVersion.get(PolicyVersion.version == "2026-12").changed_permissions() == ["location", "personalization"]
    page = text(privacy.get("/console/policies"))
    assert re.search(r'data-version="2026-12">.*?<td class="changed">location, personalization</td>', page, re.S)
    again = privacy.post("/console/policies", data=form)
    assert again.status_code == 422 and "Already published." in text(again)
    assert len(audit.entries(action="policy.publish")) == 1
    bad = privacy.post("/console/policies", data={**form, "version": "2026 12", "changed_permissions": ["nope"]})
    assert bad.status_code == 422 and "version:" in text(bad) and "changed_permissions:" in text(bad)


def test_statistics_show_only_groups_large_enough_as_charts(client, console, staff):
    console.sign_in(staff("campaigns"))
    population(client, "Crowd Phone", 10, ("usage_statistics", "device_info"))
    population(client, "Lonely Phone", 1, ("usage_statistics", "device_info"))
    page = text(console.get("/console/statistics"))
    assert page.count("<svg") == 7  # consents, and one chart per device dimension
    assert "Crowd Phone" in page and "Lonely Phone" not in page


def test_staff_roles_change_and_the_last_admin_stays(client, console, staff):
    admin_email = staff("admin")
    console.sign_in(admin_email)
    member = User.by_email(staff("campaigns"))
    assert console.post(f"/console/staff/{member.id}/role", data={"role": "privacy"}, csrf=False).status_code == 403
    assert console.post(f"/console/staff/{member.id}/role", data={"role": "privacy"}).status_code == 303
    assert User.get_by_id(member.id).role == "privacy"
    assert console.post(f"/console/staff/{member.id}/remove").status_code == 303
    assert User.get_by_id(member.id).role == "user"

    me = User.by_email(admin_email)
    refused = console.post(f"/console/staff/{me.id}/role", data={"role": "campaigns"})
    assert refused.status_code == 409 and "last administrator" in text(refused)
    assert User.get_by_id(me.id).role == "admin"


def test_the_audit_log_filters_by_actor_action_and_target(client, console, staff):
    admin_email = staff("admin")
    console.sign_in(admin_email)
    member = User.by_email(staff("campaigns"))
    console.post(f"/console/staff/{member.id}/role", data={"role": "privacy"})
    person = new_user(client)
    console.get(f"/console/users/{person['user']['id']}")
    me = User.by_email(admin_email)

    def actions(query):
        page = text(console.get("/console/staff?" + query))
        return re.findall(r'<td class="action">([^<]+)</td>', page.split('id="audit"', 1)[1])

    assert actions("action=staff.role_change") == ["staff.role_change"]
    assert actions(f"target=user:{person['user']['id']}") == ["user.view"]
    assert set(actions(f"actor={me.id}")) == {"sign_in", "staff.role_change", "user.view"}
    assert actions("actor=&action=&target=") == actions("")
    assert "action: Must be one of" in text(console.get("/console/staff?action=nope"))


@pytest.mark.parametrize("path,body", [
    ("/console/users/{uid}/guardian-consent", GUARDIAN),
    ("/console/users/{uid}/erase", {"confirm": "{uid}"}),
    ("/console/policies", {"version": "9", "text": "t"}),
])
def test_a_campaigns_user_cannot_use_the_privacy_forms(client, console, staff, path, body):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    uid = minor["user"]["id"]
    console.sign_in(staff("campaigns"))
    response = console.post(path.format(uid=uid), data={k: v.format(uid=uid) for k, v in body.items()})
    assert response.status_code == 403
    assert User.select().where(User.id == uid).exists()
    assert GuardianConsent.select().count() == 0 and PolicyVersion.select().where(PolicyVersion.version == "9").count() == 0
    assert console.get(f"/console/users/{uid}").status_code == 403


def test_the_staff_page_verifies_the_audit_chain_only_when_asked(console, staff):
    """A view of Staff & audit reads one page of entries and their count,
    not the whole chain: a tampered entry shows only once "Verify the
    whole chain" is posted (with the CSRF token)."""
    from models.base import db
    from tests.auth.test_audit import lift_append_only_guard

    console.sign_in(staff("admin"))
    member = User.by_email(staff("campaigns"))
    assert console.post(f"/console/staff/{member.id}/role", data={"role": "privacy"}).status_code == 303
    count = AuditEntry.select().count()
    page = text(console.get("/console/staff"))
    assert f'id="audit-entries">{count}<' in page and 'id="audit-chain">not checked on this view' in page
    verified = console.post("/console/staff/verify-audit")
    assert verified.status_code == 200 and 'id="audit-chain">verified' in text(verified)

    lift_append_only_guard()
    db.execute_sql("UPDATE audit_entry SET target = 'campaign:9' WHERE seq = 1")
    assert 'id="audit-chain">not checked on this view' in text(console.get("/console/staff"))
    assert console.post("/console/staff/verify-audit", csrf=False).status_code == 403
    broken = text(console.post("/console/staff/verify-audit"))
    assert 'id="audit-chain">does not verify' in broken and "audit entry 1:" in broken
