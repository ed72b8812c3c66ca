"""Consent-aware campaigns through the real firebase-admin SDK and a local
FCM server (issue 5)."""
import pytest
from itsdangerous import URLSafeSerializer

from models import Campaign, Delivery, LedgerEntry, PushToken
from tests.consent_helpers import put_consents, years_ago
from tests.device_helpers import ago
from tests.push_helpers import campaign_state, create_campaign, member, send


@pytest.fixture
def app(push_app):
    return push_app


def population(client, admin):
    everyone = {
        "marketing": member(client, {"marketing_push": True}),
        "no_marketing": member(client, {}),
        "minor": member(client, {"marketing_push": True}, birth_date=years_ago(15).isoformat(), guardian_by=admin),
        "unsubscribed": member(client, {"marketing_push": True}),
        "no_personalization": member(client, {"marketing_push": True, "device_info": True}, model="Pixel 9"),
        "targeted": member(client, {"marketing_push": True, "personalization": True, "device_info": True},
                           model="Pixel 9"),
        "other_model": member(client, {"marketing_push": True, "personalization": True, "device_info": True},
                              model="Galaxy S25"),
    }
    return everyone


def unsubscribe_by_link(client, fcm_server, token):
    payload = next(p for t, p, _ in fcm_server.requests if t == token)
    link = payload["message"]["data"]["unsubscribe_token"]
    assert client.post(f"/v1/unsubscribe/{link}").status_code == 200


def test_marketing_campaign_reaches_exactly_the_consenting_adults(push_app, fcm_server, admin):
    client = push_app.test_client()
    people = population(client, admin)
    # the "unsubscribed" adult received an earlier campaign and used its link
    first = create_campaign(client, admin, name="warm-up")
    send(client, admin, first)
    unsubscribe_by_link(client, fcm_server, people["unsubscribed"]["token"])
    fcm_server.delivered.clear()

    broadcast = create_campaign(client, admin, name="broadcast")
    preview = client.get(f"/v1/admin/campaigns/{broadcast['id']}/audience", headers=admin["headers"]).json
    assert preview == {"eligible": 4, "excluded": {"marketing_push:not_asked": 1, "marketing_push:not_for_minors": 1,
                                                    "marketing_push:withdrawn": 1}}
    send(client, admin, broadcast)
    reached = {name for name, p in people.items() if fcm_server.delivered[p["token"]]}
    assert reached == {"marketing", "no_personalization", "targeted", "other_model"}
    state = campaign_state(client, admin, broadcast)
    assert state["status"] == "completed"
    assert state["counters"] == {"targeted": 7, "sent": 4, "failed": 0, "skipped": 3, "invalid_tokens": 0,
                                 "unknown": 0, "pending": 0}

    fcm_server.delivered.clear()
    by_model = create_campaign(client, admin, name="pixel owners", audience={"models": ["pixel 9"]})
    preview = client.get(f"/v1/admin/campaigns/{by_model['id']}/audience", headers=admin["headers"]).json
    assert preview["eligible"] == 1
    assert preview["excluded"] == {"marketing_push:not_asked": 1, "marketing_push:not_for_minors": 1,
                                   "marketing_push:withdrawn": 1, "personalization:not_asked": 2,
                                   "filter:models": 1}
    send(client, admin, by_model)
    assert {name for name, p in people.items() if fcm_server.delivered[p["token"]]} == {"targeted"}
    assert sum(fcm_server.delivered.values()) == 1
    assert campaign_state(client, admin, by_model)["counters"]["sent"] == 1


def test_marketing_pushes_carry_campaign_id_and_a_signed_unsubscribe_token(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin, data={"deeplink": "shop://sale"})
    send(client, admin, campaign)
    (token, payload, status), = fcm_server.requests
    data = payload["message"]["data"]
    assert token == person["token"] and status == 200
    assert data["campaign_id"] == campaign["id"] and data["deeplink"] == "shop://sale"
    assert payload["message"]["notification"] == {"title": "Sale", "body": "20% off"}
    assert len(data["unsubscribe_token"]) > 20


def test_service_campaign_needs_service_push_only(push_app, fcm_server, admin):
    client = push_app.test_client()
    minor = member(client, {}, birth_date=years_ago(12).isoformat(), guardian_by=admin)
    adult = member(client, {})
    no_service = member(client, {"service_push": False, "marketing_push": True})
    campaign = create_campaign(client, admin, kind="service", title="Delivery update")
    send(client, admin, campaign)
    assert fcm_server.delivered[minor["token"]] == 1 and fcm_server.delivered[adult["token"]] == 1
    assert fcm_server.delivered[no_service["token"]] == 0
    assert "unsubscribe_token" not in fcm_server.requests[0][1]["message"]["data"]


def test_audience_filters_area_platform_version_and_activity(push_app, fcm_server, admin):
    client = push_app.test_client()
    full = {"marketing_push": True, "personalization": True, "device_info": True, "location": True}
    near = member(client, full, platform="ios", app_version="3.2.0")
    far = member(client, full, platform="ios", app_version="3.2.0")
    old_app = member(client, full, platform="ios", app_version="2.9")
    android = member(client, full, platform="android", app_version="3.2.0")
    no_location = member(client, {"marketing_push": True, "personalization": True}, platform="ios",
                         app_version="3.2.0")
    for person, (lat, lon) in ((near, (31.2304, 121.4737)), (far, (39.9042, 116.4074))):
        response = client.post(f"/v1/devices/{person['device']['id']}/locations",
                               json={"latitude": lat, "longitude": lon,
                                     "captured_at": ago(minutes=1)},
                               headers=person["session"]["headers"])
        assert response.status_code == 201
    campaign = create_campaign(client, admin, audience={
        "platforms": ["ios"], "app_version_min": "3.0",
        "area": {"latitude": 31.22, "longitude": 121.46, "radius_km": 10}, "active_within_days": 30})
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview == {"eligible": 1, "excluded": {"filter:area": 1, "filter:app_version_min": 1,
                                                    "filter:platforms": 1, "location:not_asked": 1}}
    send(client, admin, campaign)
    assert [t for t, _, _ in fcm_server.requests] == [near["token"]]
    assert not (far["token"] in fcm_server.delivered or old_app["token"] in fcm_server.delivered
                or android["token"] in fcm_server.delivered or no_location["token"] in fcm_server.delivered)


def test_withdrawal_after_preview_and_before_the_slice_is_sent(push_app, fcm_server, admin):
    client = push_app.test_client()
    stays, leaves = member(client, {"marketing_push": True}), member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview["eligible"] == 2
    put_consents(client, leaves["session"]["headers"], marketing_push=False)
    send(client, admin, campaign)
    assert fcm_server.delivered[stays["token"]] == 1
    assert fcm_server.sends_to(leaves["token"]) == 0
    assert not Delivery.select().where(Delivery.user == leaves["user_id"]).exists()
    state = client.get(f"/v1/admin/campaigns/{campaign['id']}", headers=admin["headers"]).json
    assert state["counters"]["skipped"] == 1 and state["counters"]["sent"] == 1


def test_withdrawal_cancels_queued_marketing_deliveries(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    fcm_server.script[person["token"]] = ["unavailable", "ok"]
    push_app.config["PUSH_INLINE_RETRY_MAX_SECONDS"] = 0  # the retry waits in the queue
    push_app.config["PUSH_RETRY_BASE_SECONDS"] = 60
    push_app.config["PUSH_RETRY_MAX_SECONDS"] = 60
    send(client, admin, campaign)
    assert Delivery.get().status == "pending"
    put_consents(client, person["session"]["headers"], marketing_push=False)
    row = Delivery.get()
    assert (row.status, row.reason) == ("cancelled", "consent_withdrawn")
    assert fcm_server.sends_to(person["token"]) == 1


def test_unsubscribe_link_works_without_login_and_writes_the_ledger(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    link = fcm_server.requests[0][1]["message"]["data"]["unsubscribe_token"]

    described = client.get(f"/v1/unsubscribe/{link}")
    assert described.status_code == 200 and described.json["permission"] == "marketing_push"
    assert LedgerEntry.select().where(LedgerEntry.source == "unsubscribe_link").count() == 0

    tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    for method in ("get", "post"):
        response = getattr(client, method)(f"/v1/unsubscribe/{tampered}")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_token"
    forged = URLSafeSerializer("wrong-key", salt="marketing-unsubscribe").dumps(
        {"u": person["user_id"], "c": "x"})
    assert client.post(f"/v1/unsubscribe/{forged}").status_code == 400
    status = client.get("/v1/me/consents", headers=person["session"]["headers"]).json["consents"]["marketing_push"]
    assert status["effective"] is True

    response = client.post(f"/v1/unsubscribe/{link}")
    assert response.status_code == 200 and response.json == {"unsubscribed": True, "permission": "marketing_push"}
    entry = LedgerEntry.select().order_by(LedgerEntry.id.desc()).first()
    assert (entry.permission, entry.granted, entry.source) == ("marketing_push", False, "unsubscribe_link")
    assert client.post(f"/v1/unsubscribe/{link}").status_code == 200  # idempotent
    assert LedgerEntry.select().where(LedgerEntry.source == "unsubscribe_link").count() == 1


def test_service_notification_to_one_user(push_app, fcm_server, admin, client):
    client = push_app.test_client()
    person = member(client, {})
    from tests.device_helpers import add_device

    add_device(client, person["session"]["headers"])  # a second phone without a token
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Your order shipped", "body": "Arrives tomorrow"})
    assert response.status_code == 200
    assert response.json["reached"] == 1 and response.json["skipped"] == {"no_push_token": 1}
    assert fcm_server.delivered[person["token"]] == 1

    put_consents(client, person["session"]["headers"], service_push=False, marketing_push=True)
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Again", "body": "b"})
    assert response.json["reached"] == 0
    assert response.json["skipped"] == {"service_push:withdrawn": 1, "no_push_token": 1}


def test_policy_publication_with_notify(push_app, fcm_server, admin):
    client = push_app.test_client()
    with_service, without = member(client, {}), member(client, {"service_push": False, "marketing_push": True})
    response = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "2", "text": "t", "changed_permissions": ["location"], "notify": True})
    assert response.status_code == 201
    assert fcm_server.delivered[with_service["token"]] == 1 and fcm_server.delivered[without["token"]] == 0
    data = fcm_server.requests[0][1]["message"]["data"]
    assert data["type"] == "policy_update" and data["policy_version"] == "2"


def test_cancel_and_state_rules(push_app, fcm_server, admin):
    client = push_app.test_client()
    member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    assert client.post(f"/v1/admin/campaigns/{campaign['id']}/cancel", headers=admin["headers"]).json[
        "status"] == "cancelled"
    again = client.post(f"/v1/admin/campaigns/{campaign['id']}/send", headers=admin["headers"])
    assert again.status_code == 409
    assert fcm_server.requests == []
    assert client.post(f"/v1/admin/campaigns/{campaign['id']}/resume", headers=admin["headers"]).status_code == 409


def test_scheduled_campaign_waits_for_send_at(push_app, fcm_server, admin):
    client = push_app.test_client()
    member(client, {"marketing_push": True})
    from tests.device_helpers import iso
    from datetime import datetime, timedelta, timezone

    campaign = create_campaign(client, admin, send_at=iso(datetime.now(timezone.utc) + timedelta(hours=2)))
    assert send(client, admin, campaign)["status"] == "scheduled"
    assert fcm_server.requests == []
    from models.base import utcnow

    Campaign.update(send_at=utcnow() - timedelta(minutes=1)).execute()
    from push.fanout import resume_campaigns

    with push_app.app_context():
        resume_campaigns()
    assert campaign_state(client, admin, campaign)["status"] == "completed"
    assert len(fcm_server.requests) == 1


def test_campaign_validation(push_app, admin):
    client = push_app.test_client()
    cases = [
        ({"kind": "spam"}, "kind"),
        ({"title": ""}, "title"),
        ({"data": {"campaign_id": "x"}}, "data"),
        ({"data": {"k": 5}}, "data"),
        ({"audience": {"platforms": ["symbian"]}}, "audience"),
        ({"audience": {"area": {"latitude": 91, "longitude": 0, "radius_km": 5}}}, "audience"),
        ({"audience": {"colour": "red"}}, "audience"),
    ]
    for fields, name in cases:
        body = {"name": "n", "kind": "marketing", "title": "t", "body": "b", **fields}
        response = client.post("/v1/admin/campaigns", json=body, headers=admin["headers"])
        assert response.status_code == 422, fields
        assert name in response.json["error"]["details"]
    assert Campaign.select().count() == 0
    assert PushToken.select().count() == 0


def test_a_slice_lost_before_it_started_is_queued_again(push_app, fcm_server, admin):
    from datetime import timedelta

    from models import CampaignSlice
    from models.base import utcnow
    from push.fanout import resume_campaigns

    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    # a worker took the slice's task and died before taking its lease
    Campaign.update(status="sending", planned=True, started_at=utcnow()).execute()
    part = CampaignSlice.create(campaign=campaign["id"], after=None, upto=person["device"]["id"],
                                queued_at=utcnow() - timedelta(seconds=5))
    with push_app.app_context():
        resume_campaigns()
    assert fcm_server.delivered[person["token"]] == 0  # not yet stale: it may still be waiting in the queue
    CampaignSlice.update(queued_at=utcnow() - timedelta(hours=1)).where(CampaignSlice.id == part.id).execute()
    with push_app.app_context():
        resume_campaigns()
    assert fcm_server.delivered[person["token"]] == 1
    assert campaign_state(client, admin, campaign)["status"] == "completed"


def test_a_slice_whose_run_failed_is_retried(push_app, fcm_server, admin, monkeypatch):
    from push import audience
    from push.fanout import resume_campaigns

    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    real = audience.slice_audience
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("deadlock detected")  # what PostgreSQL answers one of two deadlocked writers
        return real(*args, **kwargs)

    monkeypatch.setattr(audience, "slice_audience", fails_once)
    campaign = create_campaign(client, admin)
    client.post(f"/v1/admin/campaigns/{campaign['id']}/send", headers=admin["headers"])
    # huey retried the task at once (immediate mode); a resume would have too
    with push_app.app_context():
        resume_campaigns()
    assert failures == [1]
    assert fcm_server.delivered[person["token"]] == 1
    assert campaign_state(client, admin, campaign)["status"] == "completed"
