"""Faults of the parts (issue 14, item 21): Redis stopped, or PostgreSQL's
connections cut, in the middle of location-report load and of a campaign.
The API answers 503 in the envelope within a bound, never 500 and never a
hung request; it serves again once the part is back; the fan-out resumes
and sends nothing twice."""
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from werkzeug.serving import make_server

from models.base import db
from models import Campaign, Delivery, Location
from tests.conftest import ROOT, TEST_DATABASE_URL, free_port
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device
from tests.push_helpers import create_campaign, fcm_config, member
from tests.push.test_push_workers import SETTINGS, consumer_env, stop, wait_for

pytestmark = pytest.mark.slow

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL,
                                    reason="terminates PostgreSQL backends: needs TEST_DATABASE_URL")

BOUND_SECONDS = 5.0  # no answer may take longer, whatever part is down
FAULT_SETTINGS = {"REDIS_TIMEOUT_SECONDS": 1.0, "DB_CONNECT_TIMEOUT_SECONDS": 2}


class Server:
    """The app behind a real threaded HTTP server on a free port."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)


class ReportLoad:
    """Threads posting location reports, one device each, recording every
    answer: (started, seconds taken, status, error code or None)."""

    def __init__(self, base_url, reporters):
        self.base_url, self.reporters = base_url, reporters
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._captured = itertools.count()
        self._epoch = datetime.now(timezone.utc) - timedelta(days=1)
        self._threads = [threading.Thread(target=self._report, args=reporter, daemon=True) for reporter in reporters]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads), "a request hung"

    def _report(self, device_id, headers):
        while not self._stop.is_set():
            captured = self._epoch + timedelta(seconds=next(self._captured))
            body = json.dumps({"latitude": 31.2304, "longitude": 121.4737, "captured_at": captured.isoformat()})
            request = urllib.request.Request(f"{self.base_url}/v1/devices/{device_id}/locations", data=body.encode(),
                                             headers={**headers, "Content-Type": "application/json"}, method="POST")
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, payload, retry_after = response.status, response.read(), None
            except urllib.error.HTTPError as error:
                status, payload, retry_after = error.code, error.read(), error.headers.get("Retry-After")
            except OSError as error:  # the socket timed out: a hung request
                status, payload, retry_after = f"no answer: {error}", b"{}", None
            took = time.monotonic() - started
            code = json.loads(payload or b"{}").get("error", {}).get("code")
            with self._lock:
                self.results.append((started, took, status, code, retry_after))
            time.sleep(0.02)

    def wait_for_answers(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.05)


def reporters(client, count):
    """``count`` (device id, headers) of users who granted ``location``."""
    made = []
    for _ in range(count):
        session = new_user(client)
        put_consents(client, session["headers"], location=True)
        made.append((add_device(client, session["headers"])["id"], session["headers"]))
    return made


def assert_answers_in_bound(results, unavailable_code):
    statuses = {r[2] for r in results}
    assert statuses <= {201, 503}, f"answers other than 201/503: {statuses - {201, 503}}"
    assert max(r[1] for r in results) < BOUND_SECONDS, "an answer took longer than the bound"
    refused = [r for r in results if r[2] == 503]
    assert {r[3] for r in refused} <= {unavailable_code}
    assert all(r[4] for r in refused), "a 503 without Retry-After"


def stored_locations():
    db.close()  # this thread's connection may have been cut too
    return Location.select().count()


def test_location_reports_answer_201_or_503_in_bound_while_redis_is_down(make_app, private_redis):
    app = make_app(REDIS_URL=private_redis.url, **FAULT_SETTINGS)
    client = app.test_client()
    with Server(app) as server, ReportLoad(server.url, reporters(client, 4)) as load:
        load.wait_for_answers(20)
        frozen = time.monotonic()
        private_redis.freeze()  # accepts connections, answers nothing
        time.sleep(3)
        killed = time.monotonic()
        private_redis.kill()  # refuses connections; what it held is gone
        time.sleep(2)
        private_redis.start()
        back = time.monotonic()
        time.sleep(4)

    results = load.results
    assert_answers_in_bound(results, "redis_unavailable")
    assert {r[2] for r in results if r[0] + r[1] < frozen} == {201}
    assert 503 in {r[2] for r in results if frozen + 1.5 < r[0] < killed}, "no 503 while Redis answered nothing"
    assert 503 in {r[2] for r in results if killed + 0.5 < r[0] < back}, "no 503 while Redis refused connections"
    after = [r[2] for r in results if r[0] > back + 2]
    assert after and set(after) == {201}, "reports were not accepted again once Redis was back"
    assert stored_locations() == sum(1 for r in results if r[2] == 201), "a 503 stored a report, or a 201 did not"


def terminate_backends(url, seconds=0):
    """Cut every other connection to the test database, once, or again and
    again for ``seconds``."""
    observer = psycopg2.connect(url)
    observer.autocommit = True
    try:
        deadline = time.monotonic() + seconds
        with observer.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.2)
    finally:
        observer.close()


@needs_postgres
def test_location_reports_answer_201_or_503_in_bound_while_postgresql_backends_are_cut(make_app):
    app = make_app(**FAULT_SETTINGS)
    client = app.test_client()
    with Server(app) as server, ReportLoad(server.url, reporters(client, 4)) as load:
        load.wait_for_answers(20)
        cut = time.monotonic()
        terminate_backends(TEST_DATABASE_URL, 3)
        back = time.monotonic()
        time.sleep(5)

    results = load.results
    assert_answers_in_bound(results, "database_unavailable")
    assert {r[2] for r in results if r[0] + r[1] < cut} == {201}
    assert 503 in {r[2] for r in results if cut < r[0] < back}, "no 503 while the connections were cut"
    # each pooled connection cut while idle fails once more, and is then discarded
    late_refusals = sum(1 for r in results if r[0] > back and r[2] == 503)
    assert late_refusals <= app.config["DB_POOL_SIZE"]
    assert {r[2] for r in results if r[0] > back + 2} == {201}, "the pool kept handing out cut connections"
    assert stored_locations() == sum(1 for r in results if r[2] == 201), "a 503 stored a report, or a 201 did not"


def test_a_postgresql_server_that_never_answers_gets_503_within_the_connect_timeout(make_app, silent_listener):
    make_app()  # migrates the suite's database; the app below points elsewhere
    app = make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{silent_listener}/app", **FAULT_SETTINGS)
    with Server(app) as server:
        started = time.monotonic()
        try:
            urllib.request.urlopen(f"{server.url}/v1/permissions", timeout=3 * BOUND_SECONDS)
            pytest.fail("answered 2xx without a database")
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read())
        took = time.monotonic() - started
    assert status == 503 and body["error"]["code"] == "database_unavailable"
    assert took < BOUND_SECONDS


# -- a campaign in real huey_consumer processes --------------------------------

CONSUMER_WORKERS = 2
PEOPLE = 60


def start_consumer(app, log_path):
    env = {**consumer_env(app), **{name: str(value) for name, value in FAULT_SETTINGS.items()}}
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.huey", "-w", str(CONSUMER_WORKERS), "-k", "thread"],
        cwd=ROOT, env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def admin_session(client, runner):
    from tests.conftest import PASSWORD, bearer

    email = f"admin-{os.urandom(4).hex()}@example.com"
    assert runner.invoke(args=["create-admin", email, "--password", PASSWORD]).exit_code == 0
    session = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json
    return {**session, "headers": bearer(session["access_token"])}


def campaign_status(campaign_id):
    db.close()  # this thread's connection may have been cut too
    return Campaign.select(Campaign.status).where(Campaign.id == campaign_id).scalar()


def run_campaign_through(app, client, admin, fcm_server, log_path, break_part, restore_part):
    """Send a campaign to PEOPLE members with one consumer running; once
    some deliveries went out, break the part, ask the API for the campaign
    for 3 s, restore the part, and wait for the campaign to complete.
    Returns the members and the API's answers while the part was down."""
    people = [member(client, {"marketing_push": True}) for _ in range(PEOPLE)]
    campaign = create_campaign(client, admin)
    fcm_server.send_delay = 0.5
    consumer = start_consumer(app, log_path)
    try:
        response = client.post(f"/v1/admin/campaigns/{campaign['id']}/send", headers=admin["headers"])
        assert response.status_code == 202
        wait_for(lambda: sum(fcm_server.delivered.values()) >= 8, 60, "the first deliveries", log_path)
        break_part()
        answers = []
        until = time.monotonic() + 3
        while time.monotonic() < until:
            started = time.monotonic()
            response = client.get(f"/v1/admin/campaigns/{campaign['id']}", headers=admin["headers"])
            answers.append((response.status_code, (response.json.get("error") or {}).get("code"),
                            time.monotonic() - started))
            time.sleep(0.1)
        restore_part()
        at_fault = sum(fcm_server.delivered.values())
        fcm_server.send_delay = 0.0
        # a lost task is re-queued by the resumer, which the consumer runs every minute
        wait_for(lambda: campaign_status(campaign["id"]) == "completed", 150, "the campaign to complete", log_path)
    finally:
        stop(consumer)
    assert at_fault < PEOPLE, "the campaign finished before the fault"
    return people, answers


def assert_api_answered_in_bound(answers, unavailable_code):
    assert {status for status, _, _ in answers} <= {200, 503}
    assert {code for status, code, _ in answers if status == 503} <= {unavailable_code}
    assert max(took for _, _, took in answers) < BOUND_SECONDS


def assert_each_sent_once(people, fcm_server, unknown_may_have_gone_out):
    """Every member has a delivery; ``sent`` ones reached their phone exactly
    once. ``unknown`` ones were claimed when the part failed and their result
    was never recorded: at most once means they are not sent again. Only the
    claims in flight at the fault can be unknown: one batch per consumer
    thread. Whether they reached the phone depends on the part: a send whose
    record the database could not take went out; a run that lost Redis
    between claim and send (the push rate limiter) sent nothing."""
    db.close()
    rows = {str(d.user_id): d for d in Delivery.select()}
    assert len(rows) == PEOPLE, "a member got no delivery"
    assert max(fcm_server.delivered.values()) == 1, "a phone received the campaign twice"
    assert {d.status for d in rows.values()} <= {"sent", "unknown"}
    unknown = [p for p in people if rows[p["user_id"]].status == "unknown"]
    assert all(rows[p["user_id"]].reason == "worker_lost" for p in unknown)
    assert len(unknown) <= CONSUMER_WORKERS * SETTINGS["PUSH_SLICE_SIZE"], f"{len(unknown)} unknown deliveries"
    for person in people:
        if rows[person["user_id"]].status == "sent":
            assert fcm_server.delivered[person["token"]] == 1, "a delivery marked sent never reached its phone"
    unknown_received = sum(fcm_server.delivered[p["token"]] for p in unknown)
    if not unknown_may_have_gone_out:
        assert unknown_received == 0
    assert sum(fcm_server.delivered.values()) == PEOPLE - len(unknown) + unknown_received


def test_campaign_completes_once_redis_returns_empty_with_each_delivery_sent_once(
        make_app, private_redis, fcm_server, tmp_path):
    app = make_app(HUEY_IMMEDIATE=False, REDIS_URL=private_redis.url, **SETTINGS, **FAULT_SETTINGS,
                   **fcm_config(fcm_server, tmp_path))
    client, runner = app.test_client(), app.test_cli_runner()
    admin = admin_session(client, runner)

    # killed, the queued tasks are lost with it (no persistence)
    people, answers = run_campaign_through(app, client, admin, fcm_server, tmp_path / "consumer.log",
                                           private_redis.kill, private_redis.start)
    assert_api_answered_in_bound(answers, "redis_unavailable")
    assert_each_sent_once(people, fcm_server, unknown_may_have_gone_out=False)


@needs_postgres
def test_campaign_completes_after_postgresql_backends_are_cut_with_each_delivery_sent_once(
        make_app, fcm_server, tmp_path):
    app = make_app(HUEY_IMMEDIATE=False, **SETTINGS, **FAULT_SETTINGS, **fcm_config(fcm_server, tmp_path))
    client, runner = app.test_client(), app.test_cli_runner()
    admin = admin_session(client, runner)
    # every connection cut at once, as a failover or a restart of PostgreSQL does
    people, answers = run_campaign_through(app, client, admin, fcm_server, tmp_path / "consumer.log",
                                           lambda: terminate_backends(TEST_DATABASE_URL), lambda: None)
    assert_api_answered_in_bound(answers, "database_unavailable")
    assert_each_sent_once(people, fcm_server, unknown_may_have_gone_out=True)

