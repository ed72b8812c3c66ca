"""The fan-out in real ``huey_consumer`` processes: a consumer killed with
SIGKILL mid-campaign and restarted finishes it with no duplicates, and two
consumers share one campaign (issue 5, acceptance 3 and 4). The queue is
SQLite when the suite runs embedded, Redis when TEST_REDIS_URL is set."""
import os
import signal
import time

import pytest

from models import Campaign, Delivery
from tests.push_helpers import create_campaign, fcm_config, member, stop
from tests.push_helpers import consumer_env as push_consumer_env
from tests.push_helpers import start_consumer as start_push_consumer

pytestmark = pytest.mark.slow

SETTINGS = {"PUSH_SLICE_SIZE": 4, "PUSH_SLICE_LEASE_SECONDS": 2, "PUSH_RETRY_BASE_SECONDS": 0.05,
            "PUSH_RETRY_MAX_SECONDS": 0.2}


@pytest.fixture
def queued_app(make_app, fcm_server, tmp_path):
    app = make_app(HUEY_IMMEDIATE=False, **SETTINGS, **fcm_config(fcm_server, tmp_path))
    yield app


@pytest.fixture
def app(queued_app):
    return queued_app


def consumer_env(app):
    return push_consumer_env(app, SETTINGS)


def start_consumer(app, log_path, workers=2):
    return start_push_consumer(app, log_path, workers, settings=SETTINGS)


def wait_for(predicate, timeout, what, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; consumer log:\n{open(log_path).read()[-4000:]}")


def campaign_status(campaign_id):
    return Campaign.select(Campaign.status).where(Campaign.id == campaign_id).scalar()


def start_campaign(client, admin, people_count):
    people = [member(client, {"marketing_push": True}) for _ in range(people_count)]
    campaign = create_campaign(client, admin)
    response = client.post(f"/v1/admin/campaigns/{campaign['id']}/send", headers=admin["headers"])
    assert response.status_code == 202 and response.json["status"] == "sending"
    return people, campaign["id"]


def test_killed_consumer_restarts_and_finishes_without_duplicates(queued_app, client, admin, fcm_server, tmp_path):
    log_path = tmp_path / "consumer.log"
    fcm_server.send_delay = 0.4
    people, campaign_id = start_campaign(client, admin, 24)

    first = start_consumer(queued_app, log_path)
    try:
        wait_for(lambda: sum(fcm_server.delivered.values()) >= 6, 60, "the first deliveries", log_path)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    delivered_before = sum(fcm_server.delivered.values())
    assert campaign_status(campaign_id) == "sending"
    assert delivered_before < 24, "the consumer finished before it could be killed"

    fcm_server.send_delay = 0.0
    second = start_consumer(queued_app, log_path)
    try:
        wait_for(lambda: campaign_status(campaign_id) == "completed", 90, "the campaign to complete", log_path)
    finally:
        stop(second)

    assert max(fcm_server.delivered.values()) == 1, "a token received the campaign twice"
    rows = {str(d.user_id): d.status for d in Delivery.select()}
    assert set(rows.values()) <= {"sent", "unknown"}
    for person in people:
        status = rows[person["user_id"]]
        received = fcm_server.delivered[person["token"]]
        assert received == 1 if status == "sent" else received <= 1
    # what the dead worker had claimed is marked unknown, never sent again
    assert sum(1 for s in rows.values() if s == "sent") + sum(1 for s in rows.values() if s == "unknown") == 24
    assert sum(fcm_server.delivered.values()) >= sum(1 for s in rows.values() if s == "sent")


def test_two_consumers_share_one_campaign_without_duplicates(queued_app, client, admin, fcm_server, tmp_path):
    log_path = tmp_path / "consumers.log"
    fcm_server.send_delay = 0.05
    consumers = [start_consumer(queued_app, log_path) for _ in range(2)]
    try:
        # both running before the campaign is sent: on a loaded machine one
        # consumer could otherwise finish it before the other has started
        wait_for(lambda: open(log_path).read().count("Huey consumer started") == 2, 90, "both consumers to start",
                 log_path)
        people, campaign_id = start_campaign(client, admin, 40)
        wait_for(lambda: campaign_status(campaign_id) == "completed", 90, "the campaign to complete", log_path)
    finally:
        for process in consumers:
            stop(process)
    assert all(fcm_server.delivered[p["token"]] == 1 for p in people)
    assert sum(fcm_server.delivered.values()) == 40
    assert Delivery.select().where(Delivery.status == "sent").count() == 40
    log = open(log_path).read()
    assert log.count("Huey consumer started") == 2
