"""Staff roles, staff management and the audit entries every staff action
through the API writes (issue 16, "Roles" and "Audit log"), read from the
database."""
import json
import uuid

import pytest
import requests

from auth import audit
from models import AuditEntry, AuthSession, Campaign, User
from tests.collection.test_unique_races import at_once
from tests.conftest import PASSWORD, bearer
from tests.consent_helpers import new_user, put_consents
from tests.push_helpers import create_campaign


def rid():
    return "req-" + uuid.uuid4().hex[:12]


def call(client, method, path, session, request_id, **kwargs):
    headers = {**session["headers"], "X-Request-ID": request_id}
    return client.open(path, method=method, headers=headers, **kwargs)


def entry_of(request_id):
    """The one audit entry the request wrote."""
    (entry,) = AuditEntry.select().where(AuditEntry.request_id == request_id)
    return entry


def assert_entry(request_id, session, action, target):
    entry = entry_of(request_id)
    staff = User.get_by_id(session["user"]["id"])
    assert (entry.action, entry.target) == (action, target)
    assert (str(entry.actor_id), entry.actor_email, entry.actor_role) == (str(staff.id), staff.email, staff.role)
    assert entry.created_at is not None
    return entry


# -- who signs in, and out --------------------------------------------------------

def test_staff_sign_in_and_sign_out_are_audited(client, auth):
    auth.staff("campaigns", email="ops@example.com")
    request_id = rid()
    response = client.post("/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD},
                           headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    session = {**response.json, "headers": bearer(response.json["access_token"])}
    entry = assert_entry(request_id, session, "sign_in", f"staff:{session['user']['id']}")
    assert AuthSession.get_by_id(audit.details_of(entry)["session_id"]).user_id == uuid.UUID(session["user"]["id"])

    request_id = rid()
    assert call(client, "POST", "/v1/auth/logout", session, request_id).status_code == 204
    assert_entry(request_id, session, "sign_out", f"staff:{session['user']['id']}")


def test_a_shoppers_sign_in_and_out_are_not_audited(client, auth):
    shopper = auth.register()
    auth.login(shopper["user"]["email"])
    client.post("/v1/auth/logout", headers=shopper["headers"])
    assert AuditEntry.select().count() == 0


# -- each staff action --------------------------------------------------------------

def test_policy_publish_is_audited(client, auth):
    privacy = auth.staff("privacy")
    request_id = rid()
    response = call(client, "POST", "/v1/admin/policies", privacy, request_id,
                    json={"version": "2", "text": "t", "changed_permissions": ["location"]})
    assert response.status_code == 201
    entry = assert_entry(request_id, privacy, "policy.publish", "policy:2")
    assert audit.details_of(entry) == {"changed_permissions": ["location"]}


def test_a_refused_publish_leaves_no_entry(client, auth):
    privacy = auth.staff("privacy")
    request_id = rid()
    response = call(client, "POST", "/v1/admin/policies", privacy, request_id,
                    json={"version": "1", "text": "t", "changed_permissions": []})
    assert response.status_code == 409
    assert AuditEntry.select().where(AuditEntry.request_id == request_id).count() == 0


def test_publish_with_notify_audits_the_policy_and_the_campaign(client, auth):
    privacy = auth.staff("privacy")
    request_id = rid()
    response = call(client, "POST", "/v1/admin/policies", privacy, request_id,
                    json={"version": "2", "text": "t", "changed_permissions": [], "notify": True})
    assert response.status_code == 201
    rows = AuditEntry.select().where(AuditEntry.request_id == request_id).order_by(AuditEntry.seq)
    campaign = Campaign.get(Campaign.name == "policy 2")
    assert [(row.action, row.target) for row in rows] == [("policy.publish", "policy:2"),
                                                          ("campaign.send", f"campaign:{campaign.id}")]


def test_campaign_create_send_cancel_and_resume_are_audited(client, auth):
    staff = auth.staff("campaigns")
    request_id = rid()
    response = call(client, "POST", "/v1/admin/campaigns", staff, request_id,
                    json={"name": "n", "kind": "marketing", "title": "t", "body": "b"})
    assert response.status_code == 201
    target = f"campaign:{response.json['id']}"
    assert audit.details_of(assert_entry(request_id, staff, "campaign.create", target)) == {"kind": "marketing"}

    request_id = rid()
    assert call(client, "POST", f"/v1/admin/campaigns/{response.json['id']}/send", staff, request_id).status_code == 202
    assert_entry(request_id, staff, "campaign.send", target)

    paused = create_campaign(client, staff)
    Campaign.update(status=Campaign.PAUSED, paused_reason="provider_unavailable").where(
        Campaign.id == paused["id"]).execute()
    request_id = rid()
    assert call(client, "POST", f"/v1/admin/campaigns/{paused['id']}/resume", staff, request_id).status_code == 202
    entry = assert_entry(request_id, staff, "campaign.resume", f"campaign:{paused['id']}")
    assert audit.details_of(entry) == {"paused_reason": "provider_unavailable"}

    draft = create_campaign(client, staff)
    request_id = rid()
    assert call(client, "POST", f"/v1/admin/campaigns/{draft['id']}/cancel", staff, request_id).status_code == 200
    entry = assert_entry(request_id, staff, "campaign.cancel", f"campaign:{draft['id']}")
    assert audit.details_of(entry) == {"status_was": "draft"}


def test_a_refused_campaign_action_leaves_no_entry(client, auth):
    staff = auth.staff("campaigns")
    draft = create_campaign(client, staff)
    request_id = rid()
    assert call(client, "POST", f"/v1/admin/campaigns/{draft['id']}/resume", staff, request_id).status_code == 409
    assert AuditEntry.select().where(AuditEntry.request_id == request_id).count() == 0


def test_a_one_user_notification_is_audited(client, auth):
    staff = auth.staff("campaigns")
    shopper = new_user(client)
    put_consents(client, shopper["headers"], service_push=True)
    request_id = rid()
    response = call(client, "POST", "/v1/notifications", staff, request_id,
                    json={"user_id": shopper["user"]["id"], "title": "t", "body": "b"})
    assert response.status_code == 200
    entry = assert_entry(request_id, staff, "notification.send", f"user:{shopper['user']['id']}")
    assert audit.details_of(entry) == {"campaign_id": response.json["campaign_id"]}


def test_guardian_consent_record_and_revoke_are_audited(client, auth):
    privacy = auth.staff("privacy")
    minor = new_user(client, birth_date="2015-01-01")
    path = f"/v1/admin/users/{minor['user']['id']}/guardian-consent"
    request_id = rid()
    response = call(client, "POST", path, privacy, request_id,
                    json={"guardian_name": "Guardian Name-Q7", "relationship": "mother", "evidence_ref": "doc-1"})
    assert response.status_code == 201
    entry = assert_entry(request_id, privacy, "guardian.record", f"user:{minor['user']['id']}")
    assert audit.details_of(entry) == {"guardian_consent_id": response.json["id"]}

    request_id = rid()
    assert call(client, "DELETE", path, privacy, request_id).status_code == 204
    assert_entry(request_id, privacy, "guardian.revoke", f"user:{minor['user']['id']}")


def test_viewing_a_users_record_is_audited(client, auth):
    privacy = auth.staff("privacy")
    shopper = new_user(client)
    request_id = rid()
    assert call(client, "GET", f"/v1/admin/users/{shopper['user']['id']}/consents", privacy,
                request_id).status_code == 200
    assert_entry(request_id, privacy, "user.view", f"user:{shopper['user']['id']}")


def test_the_log_holds_no_shoppers_personal_data(client, auth):
    privacy, campaigns = auth.staff("privacy"), auth.staff("campaigns")
    email, phone = "Shopper.Probe-91c@Example.org", "+8613911112222"
    shopper = new_user(client, email=email, phone=phone, birth_date="2015-01-01")
    user_id = shopper["user"]["id"]
    client.post(f"/v1/admin/users/{user_id}/guardian-consent", headers=privacy["headers"],
                json={"guardian_name": "Guardian Name-Q7", "relationship": "mother", "evidence_ref": "doc-1"})
    client.get(f"/v1/admin/users/{user_id}/consents", headers=privacy["headers"])
    client.post("/v1/notifications", headers=campaigns["headers"], json={"user_id": user_id, "title": "t", "body": "b"})
    rows = list(AuditEntry.select().dicts())
    assert {row["action"] for row in rows} >= {"guardian.record", "user.view", "notification.send"}
    text = json.dumps(rows, default=str).lower()
    for value in (email.lower(), phone, "guardian name-q7"):
        assert value not in text


# -- staff management ----------------------------------------------------------------

def test_staff_are_listed_with_their_roles_and_plain_users_are_not(client, auth, admin):
    campaigns = auth.staff("campaigns")
    new_user(client)
    response = client.get("/v1/admin/staff", headers=admin["headers"])
    assert response.status_code == 200
    assert sorted((s["email"], s["role"]) for s in response.json["staff"]) == sorted(
        [(admin["user"]["email"], "admin"), (campaigns["user"]["email"], "campaigns")])


def test_a_role_change_revokes_sessions_and_is_audited(client, auth, admin):
    member = auth.staff("campaigns")
    request_id = rid()
    response = call(client, "PATCH", f"/v1/admin/staff/{member['user']['id']}", admin, request_id,
                    json={"role": "privacy"})
    assert response.status_code == 200 and response.json["role"] == "privacy"
    assert User.get_by_id(member["user"]["id"]).role == "privacy"
    assert client.get("/v1/me", headers=member["headers"]).status_code == 401
    entry = assert_entry(request_id, admin, "staff.role_change", f"staff:{member['user']['id']}")
    assert audit.details_of(entry) == {"from": "campaigns", "to": "privacy"}
    relogged = auth.login(member["user"]["email"])
    assert client.get(f"/v1/admin/users/{admin['user']['id']}/consents", headers=relogged["headers"]).status_code == 200
    assert client.get("/v1/admin/campaigns", headers=relogged["headers"]).status_code == 403


def test_removing_staff_makes_a_plain_user_with_sessions_revoked(client, auth, admin):
    member = auth.staff("privacy")
    request_id = rid()
    assert call(client, "DELETE", f"/v1/admin/staff/{member['user']['id']}", admin, request_id).status_code == 204
    assert User.get_by_id(member["user"]["id"]).role == "user"
    assert client.get("/v1/me", headers=member["headers"]).status_code == 401
    entry = assert_entry(request_id, admin, "staff.remove", f"staff:{member['user']['id']}")
    assert audit.details_of(entry) == {"from": "privacy", "to": "user"}
    relogged = auth.login(member["user"]["email"])
    assert client.get(f"/v1/admin/users/{admin['user']['id']}/consents", headers=relogged["headers"]).status_code == 403
    listed = client.get("/v1/admin/staff", headers=admin["headers"]).json["staff"]
    assert member["user"]["id"] not in {s["id"] for s in listed}


def test_the_last_admin_can_neither_demote_nor_remove_itself(client, admin):
    path = f"/v1/admin/staff/{admin['user']['id']}"
    for response in (client.patch(path, json={"role": "campaigns"}, headers=admin["headers"]),
                     client.delete(path, headers=admin["headers"])):
        assert response.status_code == 409
        assert response.json["error"]["code"] == "last_admin"
    assert User.get_by_id(admin["user"]["id"]).role == "admin"
    assert client.get("/v1/me", headers=admin["headers"]).status_code == 200
    assert AuditEntry.select().where(AuditEntry.action.startswith("staff.r")).count() == 0


def test_an_admin_with_another_admin_may_step_down(client, auth, admin):
    auth.staff("admin")
    response = client.delete(f"/v1/admin/staff/{admin['user']['id']}", headers=admin["headers"])
    assert response.status_code == 204
    assert User.get_by_id(admin["user"]["id"]).role == "user"


def test_two_admins_demoting_each_other_at_once_leave_one(app, auth, serve, admin):
    url = serve(app)
    other = auth.staff("admin")
    responses = at_once([
        lambda: requests.delete(f"{url}/v1/admin/staff/{other['user']['id']}", headers=admin["headers"]),
        lambda: requests.delete(f"{url}/v1/admin/staff/{admin['user']['id']}", headers=other["headers"]),
    ])
    # the second either finds the last admin (409) or its own token revoked (401)
    assert sorted(r.status_code for r in responses)[0] == 204
    assert sorted(r.status_code for r in responses)[1] in (401, 409)
    assert User.select().where(User.role == "admin").count() == 1


def test_a_plain_user_cannot_be_made_staff_through_the_api(client, admin):
    shopper = new_user(client)
    response = client.patch(f"/v1/admin/staff/{shopper['user']['id']}", json={"role": "privacy"},
                            headers=admin["headers"])
    assert response.status_code == 404 and response.json["error"]["code"] == "not_staff"
    assert client.delete(f"/v1/admin/staff/{shopper['user']['id']}", headers=admin["headers"]).status_code == 404
    assert User.get_by_id(shopper["user"]["id"]).role == "user"


def test_a_role_outside_the_staff_roles_is_refused_by_field(client, auth, admin):
    member = auth.staff("privacy")
    response = client.patch(f"/v1/admin/staff/{member['user']['id']}", json={"role": "user"},
                            headers=admin["headers"])
    assert response.status_code == 422 and "role" in response.json["error"]["details"]


# -- the audit log through the API -----------------------------------------------------

def test_the_audit_log_is_filtered_and_paged_newest_first(client, auth, admin):
    privacy = auth.staff("privacy")
    shoppers = [new_user(client) for _ in range(3)]
    for shopper in shoppers:
        client.get(f"/v1/admin/users/{shopper['user']['id']}/consents", headers=privacy["headers"])
    client.get(f"/v1/admin/users/{shoppers[0]['user']['id']}/consents", headers=admin["headers"])

    def get(**query):
        response = client.get("/v1/admin/audit", query_string=query, headers=admin["headers"])
        assert response.status_code == 200, response.json
        return response.json

    views = get(action="user.view")["items"]
    assert [e["target"] for e in views] == [f"user:{s['user']['id']}" for s in (shoppers[0], *reversed(shoppers))]
    assert [e["actor_role"] for e in views] == ["admin", "privacy", "privacy", "privacy"]
    by_privacy = get(actor_id=privacy["user"]["id"], action="user.view")["items"]
    assert len(by_privacy) == 3 and {e["actor_email"] for e in by_privacy} == {privacy["user"]["email"]}
    assert len(get(target=f"user:{shoppers[0]['user']['id']}")["items"]) == 2

    first = get(action="user.view", limit=3)
    assert len(first["items"]) == 3 and first["next_before_seq"] == first["items"][-1]["seq"]
    rest = get(action="user.view", limit=3, before_seq=first["next_before_seq"])
    assert [e["seq"] for e in rest["items"]] == [views[3]["seq"]] and rest["next_before_seq"] is None


def test_the_audit_log_is_for_admins_only(client, auth):
    for role in ("campaigns", "privacy"):
        assert client.get("/v1/admin/audit", headers=auth.staff(role)["headers"]).status_code == 403


# -- create-admin --role -----------------------------------------------------------------

def test_create_admin_makes_staff_of_a_role_and_audits_it(runner):
    result = runner.invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD, "--role", "campaigns"])
    assert result.exit_code == 0, result.output
    user = User.by_email("ops@example.com")
    assert user.role == "campaigns" and not user.self_registered
    (entry,) = AuditEntry.select()
    assert (entry.action, entry.target, entry.actor_id, entry.request_id) == (
        "staff.create", f"staff:{user.id}", None, None)
    assert audit.details_of(entry) == {"role": "campaigns"}


def test_create_admin_changes_a_staff_role_and_refuses_an_unknown_one(runner):
    runner.invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD, "--role", "campaigns"])
    runner.invoke(args=["create-admin", "boss@example.com", "--password", PASSWORD])
    result = runner.invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD, "--role", "privacy"])
    assert result.exit_code == 0, result.output
    assert User.by_email("ops@example.com").role == "privacy"
    assert AuditEntry.select().order_by(AuditEntry.seq.desc()).first().action == "staff.role_change"
    result = runner.invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD, "--role", "user"])
    assert result.exit_code != 0 and User.by_email("ops@example.com").role == "privacy"


def test_create_admin_still_needs_promote_existing_for_a_registered_account(client, runner):
    new_user(client, email="shopper@example.com")
    result = runner.invoke(args=["create-admin", "shopper@example.com", "--password", PASSWORD, "--role", "privacy"])
    assert result.exit_code == 1 and User.by_email("shopper@example.com").role == "user"
    result = runner.invoke(args=["create-admin", "shopper@example.com", "--password", PASSWORD, "--role", "privacy",
                                 "--promote-existing"])
    assert result.exit_code == 0 and User.by_email("shopper@example.com").role == "privacy"
    assert AuditEntry.select().order_by(AuditEntry.seq.desc()).first().action == "staff.create"


def test_create_admin_will_not_demote_the_last_admin(runner):
    runner.invoke(args=["create-admin", "boss@example.com", "--password", PASSWORD])
    result = runner.invoke(args=["create-admin", "boss@example.com", "--password", PASSWORD, "--role", "privacy"])
    assert result.exit_code == 1 and "last administrator" in result.output
    assert User.by_email("boss@example.com").role == "admin"


# -- the chain under concurrent staff actions --------------------------------------------

@pytest.mark.postgres
def test_concurrent_staff_requests_through_a_server_keep_the_chain_valid(app, client, auth, serve):
    url = serve(app)
    privacy = auth.staff("privacy")
    shopper = new_user(client)
    path = f"{url}/v1/admin/users/{shopper['user']['id']}/consents"
    responses = at_once([lambda: requests.get(path, headers=privacy["headers"])] * 8)
    assert [r.status_code for r in responses] == [200] * 8
    report = audit.verify()
    assert report.ok and AuditEntry.select().where(AuditEntry.action == "user.view").count() == 8
    assert report.count == AuditEntry.select().count()
