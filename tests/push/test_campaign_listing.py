"""Every campaign, notifications to one user included, can be read, listed
(by kind, status and target) and resumed (issue 14, item 16)."""
from models import Campaign, Delivery
from tests.push_helpers import create_campaign, member


def listed(client, admin, query=""):
    response = client.get(f"/v1/admin/campaigns{query}", headers=admin["headers"])
    assert response.status_code == 200, response.json
    return [c["id"] for c in response.json["campaigns"]]


def notify(client, admin, person):
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Your order shipped", "body": "Arrives tomorrow"})
    assert response.status_code == 200, response.json
    return response.json["campaign_id"]


def notify_paused(client, admin, person):
    """A notification the provider refused: 503, and the paused notification's id."""
    response = client.post("/v1/notifications", headers=admin["headers"], json={
        "user_id": person["user_id"], "title": "Your order shipped", "body": "Arrives tomorrow"})
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "push_unavailable"
    return response.json["error"]["details"]["campaign_id"]


def test_a_paused_one_user_notification_can_be_found_read_and_resumed(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {})
    fcm_server.script[person["token"]] = ["third_party_auth"]
    notification = notify_paused(client, admin, person)
    assert Campaign.get_by_id(notification).status == "paused"
    campaign = create_campaign(client, admin)

    assert listed(client, admin, "?target=user&status=paused") == [notification]
    assert listed(client, admin, "?target=audience") == [campaign["id"]]
    assert set(listed(client, admin)) == {notification, campaign["id"]}
    state = client.get(f"/v1/admin/campaigns/{notification}", headers=admin["headers"])
    assert state.status_code == 200
    assert (state.json["status"], state.json["target"], state.json["target_user_id"]) == (
        "paused", "user", person["user_id"])
    assert "third_party_auth_error" in state.json["paused_reason"]

    fcm_server.script[person["token"]] = ["ok"]
    response = client.post(f"/v1/admin/campaigns/{notification}/resume", headers=admin["headers"])
    assert response.status_code == 202
    assert Campaign.get_by_id(notification).status == "completed"
    assert [d.status for d in Delivery.select().where(Delivery.campaign == notification)] == ["sent"]
    assert fcm_server.delivered[person["token"]] == 1


def test_campaigns_are_listed_by_kind_status_and_target(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {})
    notification = notify(client, admin, person)  # completed at once
    marketing = create_campaign(client, admin)["id"]
    service = create_campaign(client, admin, kind="service")["id"]

    assert set(listed(client, admin, "?kind=service")) == {notification, service}
    assert listed(client, admin, "?kind=marketing") == [marketing]
    assert listed(client, admin, "?kind=service&target=user") == [notification]
    assert listed(client, admin, "?status=completed") == [notification]
    assert set(listed(client, admin, "?status=draft&target=audience")) == {marketing, service}
    assert listed(client, admin, "?kind=marketing&target=user") == []
    targets = {c["id"]: c["target"] for c in client.get("/v1/admin/campaigns", headers=admin["headers"]).json[
        "campaigns"]}
    assert targets == {notification: "user", marketing: "audience", service: "audience"}


def test_unknown_campaign_list_filters_are_refused(push_app, admin):
    client = push_app.test_client()
    for query, field in (("kind=spam", "kind"), ("status=x", "status"), ("target=everyone", "target"),
                         ("colour=red", "colour")):
        response = client.get(f"/v1/admin/campaigns?{query}", headers=admin["headers"])
        assert response.status_code == 422, query
        assert response.json["error"]["code"] == "validation_error" and field in response.json["error"]["details"]


def test_the_campaign_list_filters_are_documented(client):
    operation = client.get("/openapi.json").json["paths"]["/v1/admin/campaigns"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert parameters["kind"]["schema"]["enum"] == list(Campaign.KINDS)
    assert parameters["status"]["schema"]["enum"] == list(Campaign.STATUSES)
    assert parameters["target"]["schema"]["enum"] == ["user", "audience"]
