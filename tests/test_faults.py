"""Faults of the parts (issue 14, item 21): Redis stopped, or PostgreSQL's
connections cut, in the middle of location-report load and of a campaign.
The API answers 503 in the envelope within a bound, never 500 and never a
hung request; it serves again once the part is back; the fan-out resumes
and sends nothing twice."""
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from werkzeug.serving import make_server

from extensions import db
from models import Campaign, Delivery, Location
from tests.conftest import TEST_DATABASE_URL, free_port
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device
from tests.push_helpers import fcm_config, fcm_server, member  # noqa: F401
from tests.test_push_workers import SETTINGS, start_consumer, stop, wait_for

pytestmark = pytest.mark.slow

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="terminates PostgreSQL backends: needs TEST_DATABASE_URL")

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


def terminate_backends(url, seconds):
    """Cut every other connection to the test database, again and again, for ``seconds``."""
    observer = psycopg2.connect(url)
    observer.autocommit = True
    try:
        deadline = time.monotonic() + seconds
        with observer.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
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


@pytest.fixture
def silent_listener():
    """A port that accepts connections and never answers: a server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


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
