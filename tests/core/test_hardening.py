"""Response hardening and rate limits (issue 7)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import redis

from models import LedgerEntry
from tests.conftest import ROOT, TEST_REDIS_URL, bearer, register
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, ago, point


def test_every_answer_says_nosniff(client, user):
    for path in ("/healthz", "/v1/permissions", "/v1/me", "/v1/nothing"):
        response = client.get(path, headers=user["headers"])
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/v1/me", "/v1/me/consents", "/v1/me/export", "/v1/devices"])
def test_private_answers_are_not_stored(client, user, path):
    assert client.get(path, headers=user["headers"]).headers["Cache-Control"] == "no-store"


def test_auth_answers_are_not_stored(client):
    response = client.post("/v1/auth/register", json={"email": "c@example.com", "password": "0123456789ab"})
    assert response.headers["Cache-Control"] == "no-store"
    failed = client.post("/v1/auth/login", json={"email": "c@example.com", "password": "nope"})
    assert failed.headers["Cache-Control"] == "no-store"


def test_no_cors_unless_configured(client):
    response = client.get("/v1/permissions", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options("/v1/me", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_for_configured_origins_only(make_app):
    client = make_app(CORS_ORIGINS="https://shop.example, https://m.shop.example").test_client()
    allowed = client.get("/v1/permissions", headers={"Origin": "https://shop.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    denied = client.get("/v1/permissions", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    preflight = client.options("/v1/me", headers={"Origin": "https://m.shop.example",
                                                  "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "Authorization"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://m.shop.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_processes(session_id):
    """Command lines of the live processes of a session, by pid."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getsid(int(entry)) == session_id:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found[int(entry)] = handle.read().replace(b"\0", b" ").decode()
        except (OSError, ProcessLookupError):
            continue
    return {pid: line for pid, line in found.items() if line}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``python app.py`` (what ``make run`` runs) on a free port, its output in a file."""
    instance = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "INSTANCE_PATH": str(instance), "PORT": str(port), "DATABASE_URL": "", "REDIS_URL": ""}
    env.pop("TEST_DATABASE_URL", None)
    env.pop("WEB_CONCURRENCY", None)  # one gunicorn worker, as make run has by default
    output = open(instance / "output.log", "w+")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield {"process": process, "response": response, "port": port,
               "output": lambda: (output.seek(0), output.read())[1]}
    finally:
        process.terminate()
        process.wait(timeout=30)
        output.close()


@pytest.mark.slow
def test_the_served_app_shows_no_version_banner(served):
    response = served["response"]
    server = response.headers.get("Server", "")
    assert response.status == 200
    assert "Werkzeug" not in server and "Python" not in server and "/" not in server


@pytest.mark.slow
def test_make_run_serves_with_gunicorn_one_task_consumer_and_no_dev_server(served):
    assert served["response"].headers["Server"] == "gunicorn"
    output = served["output"]()
    assert "development server" not in output.lower()
    assert "Listening at: http://127.0.0.1:%d" % served["port"] in output
    assert output.count("applied migrations:") == 1
    processes = session_processes(served["process"].pid)
    consumers = [line for line in processes.values() if " worker" in line and "flask" in line]
    assert len(consumers) == 1, processes
    assert len(processes) == 3, processes  # gunicorn's master, one gunicorn worker, the task consumer
    deadline = time.monotonic() + 30
    while "Huey consumer started" not in served["output"]() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Huey consumer started" in served["output"]()


@pytest.mark.slow
def test_stopping_the_server_stops_the_task_consumer(served):
    session = served["process"].pid
    served["process"].terminate()
    served["process"].wait(timeout=30)
    deadline = time.monotonic() + 20
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(session) == {}


def assert_limited(response):
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def test_refresh_is_rate_limited_per_session(make_app):
    client = make_app(RATELIMIT_REFRESH="2 per minute").test_client()
    session, neighbour = register(client), register(client)  # one address, as behind a carrier's NAT
    token = session["refresh_token"]
    for _ in range(2):
        response = client.post("/v1/auth/refresh", headers=bearer(token))
        assert response.status_code == 200
        token = response.json["refresh_token"]
    assert_limited(client.post("/v1/auth/refresh", headers=bearer(token)))
    assert client.post("/v1/auth/refresh", headers=bearer(neighbour["refresh_token"])).status_code == 200


def test_unsubscribe_is_rate_limited(make_app):
    app = make_app(RATELIMIT_UNSUBSCRIBE="2 per minute")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/v1/unsubscribe/not-a-valid-token").status_code == 400
    assert_limited(client.post("/v1/unsubscribe/not-a-valid-token"))
    assert LedgerEntry.select().count() == 0


def _redis_calls(client, *commands):
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in commands}


def test_rate_limit_headers_count_down_from_the_counting_round_trip(make_app):
    """With Redis, each upload costs the limiter one script call: the headers
    come from it, not from a further GET and TTL, and still match what Redis holds."""
    client = make_app(RATELIMIT_LOCATIONS="3 per minute").test_client()
    user = new_user(client)
    put_consents(client, user["headers"], location=True)
    phone = add_device(client, user["headers"])
    redis_client = redis.Redis.from_url(TEST_REDIS_URL) if TEST_REDIS_URL else None
    for n in range(3):
        before = _redis_calls(redis_client, "get", "evalsha") if redis_client else None
        response = client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(seconds=n + 1)),
                               headers=user["headers"])
        assert response.status_code == 201
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(2 - n)
        assert 0 < int(response.headers["X-RateLimit-Reset"]) - time.time() <= 61
        if redis_client:
            after = _redis_calls(redis_client, "get", "evalsha")
            assert (after["get"], after["evalsha"]) == (before["get"], before["evalsha"] + 1)
            [key] = redis_client.keys(f"*/device:{phone['id']}/*")
            assert int(redis_client.get(key)) == n + 1
            assert 0 < redis_client.ttl(key) <= 60
    limited = client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(seconds=9)),
                          headers=user["headers"])
    assert_limited(limited)
    assert limited.headers["X-RateLimit-Remaining"] == "0"


def test_location_uploads_are_rate_limited_per_device(make_app):
    client = make_app(RATELIMIT_LOCATIONS="2 per minute", RATELIMIT_LOCATION_BATCHES="1 per minute").test_client()
    user = new_user(client)
    put_consents(client, user["headers"], location=True)
    phone, tablet = add_device(client, user["headers"]), add_device(client, user["headers"])
    for n in range(2):
        response = client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(seconds=n + 1)),
                               headers=user["headers"])
        assert response.status_code == 201
    assert_limited(client.post(f"/v1/devices/{phone['id']}/locations", json=point(captured_at=ago(seconds=9)),
                               headers=user["headers"]))
    other_device = client.post(f"/v1/devices/{tablet['id']}/locations", json=point(), headers=user["headers"])
    assert other_device.status_code == 201
    batch = {"locations": [point(captured_at=ago(seconds=20))]}
    assert client.post(f"/v1/devices/{phone['id']}/locations/batch", json=batch,
                       headers=user["headers"]).status_code == 200
    assert_limited(client.post(f"/v1/devices/{phone['id']}/locations/batch", json=batch, headers=user["headers"]))
