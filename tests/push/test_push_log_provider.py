"""The embedded default provider records instead of sending."""
import logging

from models import Campaign, Delivery
from tests.push_helpers import campaign_state, create_campaign, member, send


def test_log_provider_is_the_default(app, admin, client):
    member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)
    assert campaign_state(client, admin, campaign)["counters"]["sent"] == 1
    assert Delivery.get().message_id.startswith("log/")
    assert Campaign.get().status == "completed"


def test_log_provider_logs_the_token_masked(app, admin, client, caplog):
    person = member(client, {"marketing_push": True})
    with caplog.at_level(logging.INFO, logger="push.providers"):
        send(client, admin, create_campaign(client, admin))
    lines = [record.getMessage() for record in caplog.records if record.name == "push.providers"]
    assert len(lines) == 1 and "token=" in lines[0]
    assert person["token"] not in lines[0]
    assert person["token"][:12] not in lines[0]


def test_log_provider_keeps_what_it_would_have_sent(app, admin, client):
    member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin, title="Hello"))
    sent = list(app.extensions["push_provider"].sent)
    assert [m.title for m in sent] == ["Hello"]
