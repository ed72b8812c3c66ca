"""A device whose OS notifications are off is not reachable (issue 17 §2):
excluded as ``os_notifications_off`` in the preview and the results, sent
nothing, in campaigns and one-user notifications alike."""
import pytest

from models import Campaign, CampaignExclusion, Delivery
from push import campaigns
from tests.push_helpers import campaign_state, create_campaign, member, send


@pytest.fixture
def app(push_app):
    return push_app


def people(client):
    return {state: member(client, {"marketing_push": True}, os_permissions={"notifications": state})
            for state in ("authorized", "provisional", "denied", "not_determined")}


def test_preview_and_results_count_os_notifications_off_and_nothing_is_sent(push_app, fcm_server, admin):
    client = push_app.test_client()
    everyone = people(client)
    unreported = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview == {"eligible": 4, "excluded": {"os_notifications_off": 1}}

    send(client, admin, campaign)
    assert campaign_state(client, admin, campaign)["status"] == "completed"
    assert fcm_server.sends_to(everyone["denied"]["token"]) == 0
    for state in ("authorized", "provisional", "not_determined"):
        assert fcm_server.delivered[everyone[state]["token"]] == 1, state
    assert fcm_server.delivered[unreported["token"]] == 1
    with push_app.app_context():
        row = Campaign.get_by_id(campaign["id"])
        assert CampaignExclusion.counts(row) == {"os_notifications_off": 1}
        assert campaigns.results(row)["reasons"] == {"os_notifications_off": 1}
        assert not Delivery.select().where(Delivery.device == everyone["denied"]["device"]["id"]).exists()


def test_notifications_turned_off_after_the_preview_skip_the_device_at_send_time(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True}, os_permissions={"notifications": "authorized"})
    campaign = create_campaign(client, admin)
    preview = client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json
    assert preview == {"eligible": 1, "excluded": {}}
    response = client.post(f"/v1/devices/{person['device']['id']}/reports", headers=person["session"]["headers"],
                           json={"app_version": "3.12.0", "os_permissions": {"notifications": "denied"}})
    assert response.status_code == 201
    send(client, admin, campaign)
    assert fcm_server.sends_to(person["token"]) == 0
    with push_app.app_context():
        assert campaigns.results(Campaign.get_by_id(campaign["id"]))["reasons"] == {"os_notifications_off": 1}


def test_one_user_notification_skips_the_silenced_phone(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {}, os_permissions={"notifications": "denied"})
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Your order shipped", "body": "Arrives tomorrow"})
    assert response.status_code == 200
    assert response.json["reached"] == 0
    assert response.json["skipped"] == {"os_notifications_off": 1}
    assert fcm_server.sends_to(person["token"]) == 0


def test_provisional_notifications_are_reachable_one_to_one(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {}, os_permissions={"notifications": "provisional"})
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Your order shipped", "body": "Arrives tomorrow"})
    assert response.json["reached"] == 1 and response.json["skipped"] == {}
    assert fcm_server.delivered[person["token"]] == 1
