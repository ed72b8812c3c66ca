"""Campaigns and installations: the ``subjects`` audience option, with the
same consent rules, exclusions by reason and at-most-once fan-out."""
import pytest

from models.push import Delivery
from tests.installation_helpers import new_installation, put_installation_consents
from tests.device_helpers import add_device
from tests.push_helpers import create_campaign, member, send


@pytest.fixture
def app(push_app):
    return push_app


def anonymous_member(client, token, **consents):
    installation = new_installation(client)
    put_installation_consents(client, installation, service_push=True, **consents)
    device = add_device(client, installation["headers"])
    assert client.put(f"/v1/devices/{device['id']}/push-token", json={"token": token},
                      headers=installation["headers"]).status_code == 200
    return installation


def preview(client, admin, campaign):
    return client.get(f"/v1/admin/campaigns/{campaign['id']}/audience", headers=admin["headers"]).json


def test_subjects_choose_accounts_installations_or_both(push_app, fcm_server, admin):
    client = push_app.test_client()
    account = member(client, {"marketing_push": True})
    anonymous_member(client, "anon-yes-" + "a" * 60, marketing_push=True)
    anonymous_member(client, "anon-no-" + "b" * 60)  # no marketing_push: the same rule as for an account

    counts = {subjects: preview(client, admin, create_campaign(client, admin, name=subjects,
                                                               audience={"subjects": subjects}))
              for subjects in ("accounts", "installations", "all")}
    assert counts["accounts"] == {"eligible": 1, "excluded": {"filter:subjects": 2}}
    assert counts["installations"] == {"eligible": 1, "excluded": {"filter:subjects": 1,
                                                                  "marketing_push:not_asked": 1}}
    assert counts["all"] == {"eligible": 2, "excluded": {"marketing_push:not_asked": 1}}
    default = create_campaign(client, admin, name="default")
    assert preview(client, admin, default) == counts["accounts"]

    everyone = create_campaign(client, admin, name="everyone", audience={"subjects": "all"})
    send(client, admin, everyone)
    assert fcm_server.delivered[account["token"]] == 1
    assert fcm_server.delivered["anon-yes-" + "a" * 60] == 1
    assert fcm_server.sends_to("anon-no-" + "b" * 60) == 0
    assert Delivery.select().where(Delivery.campaign == everyone["id"]).count() == 2


def test_an_unknown_subjects_value_is_refused_naming_it(client, admin):
    response = client.post("/v1/admin/campaigns", headers=admin["headers"], json={
        "name": "n", "kind": "marketing", "title": "t", "body": "b", "audience": {"subjects": "everyone"}})
    assert response.status_code == 422
    assert "subjects" in response.json["error"]["details"]["audience"]
