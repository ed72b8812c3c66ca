"""What each FCM answer does to deliveries, tokens and the campaign (issue 5, acceptance 2)."""
import pytest

from models import Campaign, Delivery, PushToken
from tests.push_helpers import campaign_state, create_campaign, member, send

SCRIPTS = {
    "ok": ["ok"],
    "unregistered": ["unregistered"],
    "invalid_token": ["invalid_token"],
    "invalid_payload": ["invalid_payload"],
    "unavailable_then_ok": ["unavailable", "ok"],
    "internal_then_ok": ["internal", "ok"],
    "quota_then_ok": ["quota:1", "ok"],
    "quota_without_code_then_ok": ["quota_without_code:0", "ok"],
    "always_unavailable": ["unavailable"],
}


@pytest.fixture
def app(push_app):
    return push_app


def delivery_of(person):
    return Delivery.get(Delivery.user == person["user_id"])


def test_each_fcm_answer_ends_as_specified(push_app, fcm_server, admin):
    client = push_app.test_client()
    people = {name: member(client, {"marketing_push": True}) for name in SCRIPTS}
    for name, person in people.items():
        fcm_server.script[person["token"]] = list(SCRIPTS[name])
    send(client, admin, create_campaign(client, admin))

    outcome = {name: (delivery_of(p).status, delivery_of(p).reason) for name, p in people.items()}
    assert outcome == {
        "ok": ("sent", None),
        "unregistered": ("invalid_token", "unregistered"),
        "invalid_token": ("invalid_token", "invalid_argument"),
        "invalid_payload": ("failed", "invalid_argument"),
        "unavailable_then_ok": ("sent", None),
        "internal_then_ok": ("sent", None),
        "quota_then_ok": ("sent", None),
        "quota_without_code_then_ok": ("sent", None),
        "always_unavailable": ("failed", "retries_exhausted:unavailable"),
    }
    # tokens are dropped for token errors only, never for a payload error
    kept = {name for name, p in people.items() if PushToken.select().where(PushToken.token == p["token"]).exists()}
    assert kept == set(SCRIPTS) - {"unregistered", "invalid_token"}
    # retries were observed by the server, up to five attempts
    sends = {name: fcm_server.sends_to(p["token"]) for name, p in people.items()}
    assert sends == {"ok": 1, "unregistered": 1, "invalid_token": 1, "invalid_payload": 1, "unavailable_then_ok": 2,
                     "internal_then_ok": 2, "quota_then_ok": 2, "quota_without_code_then_ok": 2,
                     "always_unavailable": 5}
    times = [t for token, t in fcm_server.request_times if token == people["quota_then_ok"]["token"]]
    assert times[1] - times[0] >= 1.0  # Retry-After: 1 was honoured
    state = campaign_state(client, admin, {"id": Delivery.get().campaign_id})
    assert state["status"] == "completed"
    assert state["counters"] == {"targeted": 9, "sent": 5, "failed": 2, "skipped": 0, "invalid_tokens": 2,
                                 "unknown": 0, "pending": 0}


def test_a_payload_error_keeps_the_device_for_the_next_campaign(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    fcm_server.script[person["token"]] = ["invalid_payload", "ok"]
    send(client, admin, create_campaign(client, admin, name="broken"))
    send(client, admin, create_campaign(client, admin, name="fixed"))
    assert fcm_server.delivered[person["token"]] == 1


def test_third_party_auth_error_pauses_instead_of_burning_the_audience(make_app, fcm_server, tmp_path):
    from tests.conftest import PASSWORD, AuthActions
    from tests.push_helpers import fcm_config

    app = make_app(PUSH_SLICE_SIZE=2, **fcm_config(fcm_server, tmp_path))
    client = app.test_client()
    runner = app.test_cli_runner()
    runner.invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD])
    admin = AuthActions(client).login("ops@example.com")
    people = [member(client, {"marketing_push": True}) for _ in range(6)]
    for person in people:
        fcm_server.script[person["token"]] = ["third_party_auth"]
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)

    state = campaign_state(client, admin, campaign)
    assert state["status"] == "paused"
    assert "third_party_auth_error" in state["paused_reason"]
    assert len(fcm_server.requests) <= 2  # the first slice only
    assert state["counters"]["failed"] == 0 and state["counters"]["invalid_tokens"] == 0
    assert PushToken.select().count() == 6

    for person in people:
        fcm_server.script[person["token"]] = ["ok"]
    response = client.post(f"/v1/admin/campaigns/{campaign['id']}/resume", headers=admin["headers"])
    assert response.status_code == 202
    state = campaign_state(client, admin, campaign)
    assert state["status"] == "completed" and state["counters"]["sent"] == 6
    assert all(fcm_server.delivered[p["token"]] == 1 for p in people)
    app.extensions["push_provider"].close()


def test_a_token_is_dropped_only_if_unchanged_since_the_send(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    fcm_server.script[person["token"]] = ["unregistered"]
    send(client, admin, create_campaign(client, admin))
    assert PushToken.select().count() == 0
    new_token = person["token"] + "new"
    client.put(f"/v1/devices/{person['device']['id']}/push-token", json={"token": new_token},
               headers=person["session"]["headers"])
    send(client, admin, create_campaign(client, admin, name="second"))
    assert fcm_server.delivered[new_token] == 1 and PushToken.get().token == new_token


def test_a_retry_waits_between_half_and_all_of_its_ceiling_and_never_less_than_retry_after(push_app):
    from push.sender import backoff

    push_app.config.update(PUSH_RETRY_BASE_SECONDS=2, PUSH_RETRY_MAX_SECONDS=300)
    with push_app.app_context():
        for attempt, ceiling in ((1, 2), (4, 16), (12, 300)):
            delays = [backoff(attempt) for _ in range(500)]
            assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
            assert max(delays) - min(delays) > ceiling / 4  # jittered, not a fixed wait
        assert backoff(1, retry_after=60) == 60


def test_a_slice_run_ends_stopped_later_or_done(push_app, fcm_server, admin):
    from models import CampaignSlice
    from models.base import utcnow
    from push.sender import Outcome, SliceEnd, run_slice

    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    part = CampaignSlice.create(campaign=campaign["id"], after=None, upto=person["device"]["id"])

    def run():
        with push_app.app_context():
            return run_slice(campaign["id"], part.id)

    assert run() == Outcome(SliceEnd.STOPPED)  # a draft is not sending
    Campaign.update(status="sending", planned=True, started_at=utcnow()).execute()
    push_app.config.update(PUSH_RETRY_BASE_SECONDS=30, PUSH_RETRY_MAX_SECONDS=30)
    fcm_server.script[person["token"]] = ["unavailable", "ok"]
    waiting = run()
    assert waiting.kind is SliceEnd.LATER and push_app.config["PUSH_INLINE_RETRY_MAX_SECONDS"] < waiting.delay <= 30
    Delivery.update(next_attempt_at=utcnow()).execute()
    assert run() == Outcome(SliceEnd.DONE)
    assert fcm_server.delivered[person["token"]] == 1
    assert Campaign.get_by_id(campaign["id"]).status == "completed"
