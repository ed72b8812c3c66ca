"""PUSH_RATE_PER_MINUTE caps what the senders hand to the push service; the
permit is taken before deliveries are claimed, never between a claim and
its send (issue 14, item 1)."""
import sys
import threading
import time

import pytest

from app import create_app
from core.config import ConfigError
from models import Delivery
from push import sender
from push.sender import RateLimit
from tests.conftest import base_config
from tests.consent_helpers import put_consents
from tests.push_helpers import campaign_state, create_campaign, fcm_config, member, send

RATE = 2  # messages per minute, below a batch
KEY = "push-messages"  # what RateLimit counts under


@pytest.fixture
def app(make_app, fcm_server, tmp_path):
    """Sends through the real SDK to the fake FCM server, RATE messages a minute."""
    app = make_app(PUSH_RATE_PER_MINUTE=RATE, **fcm_config(fcm_server, tmp_path))
    yield app
    provider = app.extensions.get("push_provider")
    if provider is not None:
        provider.close()


class Sending(threading.Thread):
    """``send`` of a campaign in its own thread (the worker runs inline, as
    HUEY_IMMEDIATE makes it), its failure re-raised by ``finish``."""

    def __init__(self, client, admin, campaign):
        super().__init__(daemon=True)
        self.args_ = (client, admin, campaign)
        self.error = None

    def run(self):
        try:
            send(*self.args_)
        except BaseException as error:  # handed to the test's thread
            self.error = error

    def waiting_for_a_permit(self):
        frame = sys._current_frames().get(self.ident)
        return frame is not None and frame.f_code is RateLimit.acquire.__code__

    def finish(self, timeout):
        self.join(timeout)
        assert not self.is_alive(), f"the campaign was still sending after {timeout} s"
        if self.error is not None:
            raise self.error


def the_rate_limit(app):
    with app.app_context():
        return sender.rate_limit()


def test_the_rate_limit_refuses_messages_beyond_the_budget(make_app):
    app = make_app(PUSH_RATE_PER_MINUTE=5)
    limit = RateLimit(app.config)
    limit.acquire(3)
    limit.acquire(2)  # exactly the budget: no wait
    assert not limit.limiter.test(limit.limit, "push-messages")  # a sixth message would wait


def test_the_default_stays_under_the_fcm_quota(make_app):
    app = make_app()
    assert app.config["PUSH_RATE_PER_MINUTE"] < 600_000
    limit = RateLimit(app.config)
    limit.acquire(500)
    assert limit.limiter.test(limit.limit, "push-messages")


def test_a_batch_that_can_never_fit_the_window_is_refused_instead_of_waiting_forever(make_app):
    limit = RateLimit(make_app(PUSH_RATE_PER_MINUTE=5).config)
    with pytest.raises(ValueError, match="smaller batches"):
        limit.acquire(6)


def test_a_rate_limit_below_one_message_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="PUSH_RATE_PER_MINUTE"):
        create_app({**base_config(tmp_path), "PUSH_RATE_PER_MINUTE": 0})


def test_a_withdrawal_while_the_sender_waits_for_its_permit_is_honoured(app, client, admin, fcm_server):
    person = member(client, {"marketing_push": True})
    campaign = create_campaign(client, admin)
    limit = the_rate_limit(app)
    assert limit.limiter.hit(limit.limit, KEY, cost=RATE)  # the window is full
    sending = Sending(app.test_client(), admin, campaign)
    sending.start()
    deadline = time.monotonic() + 10
    while not sending.waiting_for_a_permit():
        assert sending.is_alive() and time.monotonic() < deadline, "the sender never waited for a permit"
        time.sleep(0.01)

    put_consents(client, person["session"]["headers"], marketing_push=False)
    limit.limiter.clear(limit.limit, KEY)  # the window ends
    sending.finish(timeout=15)

    delivery = Delivery.get(Delivery.user == person["user_id"])
    assert (delivery.status, delivery.reason) == ("cancelled", "consent_withdrawn")
    assert fcm_server.sends_to(person["token"]) == 0
    assert fcm_server.requests == []
    assert campaign_state(client, admin, campaign)["status"] == "completed"


def test_a_campaign_larger_than_the_rate_limit_is_sent_in_smaller_batches(app, client, admin, fcm_server):
    people = [member(client, {"marketing_push": True}) for _ in range(2 * RATE + 1)]
    campaign = create_campaign(client, admin)
    limit = the_rate_limit(app)
    sending = Sending(app.test_client(), admin, campaign)
    sending.start()
    # Clearing the window stands in for each minute passing, so the test
    # takes seconds; a batch bigger than RATE would still never fit.
    deadline = time.monotonic() + 15
    while sending.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
        limit.limiter.clear(limit.limit, KEY)
    sending.finish(timeout=0)

    state = campaign_state(client, admin, campaign)
    assert state["status"] == "completed"
    assert state["counters"]["sent"] == len(people)
    assert Delivery.select().where(Delivery.status == "sent").count() == len(people)
    assert all(fcm_server.delivered[p["token"]] == 1 for p in people)
