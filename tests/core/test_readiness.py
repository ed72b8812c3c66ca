"""``/readyz`` (issue 16): 200 naming each check, or 503 naming every check
that fails and why: a pending migration, a misconfigured push provider, a
stopped worker (stale heartbeat), Redis down when configured. The checks
are ``core.readiness``'s registry, which the console reads too."""
import os
import signal
import subprocess
import sys
import time

import pytest

from core import readiness
from models.base import db
from models.schema import migration_runner
from tests.conftest import ROOT
from tests.push_helpers import fcm_config


def not_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "not_ready"
    return response.json["error"]["details"]


def forget_migration(app):
    """The newest migration's record removed: to the app it is pending."""
    with app.app_context(), db.connection_context():
        runner = migration_runner()
        newest = max(migration.name for migration in runner.migrations())
        runner.History.delete().where(runner.History.name == newest).execute()
    return newest


def test_registry_results_match_readyz(app, client):
    with app.test_request_context():
        db.connect(reuse_if_open=True)
        results = readiness.run()
    assert [result.name for result in results] == [name for name in client.get("/readyz").json if name != "status"]
    assert all(result.ok and result.detail is None for result in results)


def test_pending_migration_is_named(app, client):
    newest = forget_migration(app)
    details = not_ready(client)
    assert list(details) == ["migrations"]
    assert details["migrations"] == f"not applied: {newest}"


def test_every_failing_check_is_named(make_app, fcm_server, tmp_path):
    app = make_app(**fcm_config(fcm_server, tmp_path))
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    forget_migration(app)
    (tmp_path / "service-account.json").write_text("{not json")
    details = not_ready(client)
    assert set(details) == {"migrations", "push"}
    assert "FCM_CREDENTIALS_FILE" in details["push"]
    app.extensions["push_provider"].close()


@pytest.mark.slow
def test_redis_down_is_named_when_configured(make_app, private_redis):
    client = make_app(REDIS_URL=private_redis.url).test_client()
    assert client.get("/readyz").json["redis"] == "ok"
    private_redis.kill()
    details = not_ready(client)
    assert "redis" in details and "ConnectionError" in details["redis"]


def test_an_app_without_redis_has_no_redis_check(make_app):
    assert "redis" not in make_app(REDIS_URL=None).test_client().get("/readyz").json


def start_consumer(app, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_SECRET_KEY"):
        if app.config.get(name) is not None:
            env[name] = str(app.config[name])
    env["INSTANCE_PATH"] = app.instance_path
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.huey", "-w", "1", "-k", "thread"],
        cwd=ROOT, env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_readyz(client, predicate, what, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if predicate(response):
            return response
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; consumer log:\n{open(log_path).read()[-3000:]}")


@pytest.mark.slow
def test_stopped_worker_is_named_once_its_heartbeat_is_stale(make_app, tmp_path):
    app = make_app(HUEY_IMMEDIATE=False, WORKER_HEARTBEAT_SECONDS=2)
    client = app.test_client()
    log_path = tmp_path / "consumer.log"
    assert not_ready(client) == {"worker": "no task consumer has written a heartbeat"}
    with app.app_context():
        from core.worker import write_heartbeat

        write_heartbeat()  # queued, for the consumer to come
        assert readiness.queue_depth() == 1
    assert "worker_queue_depth 1.0" in client.get("/metrics").get_data(as_text=True)

    consumer = start_consumer(app, log_path)
    try:
        wait_for_readyz(client, lambda r: r.status_code == 200, "the consumer's heartbeat", log_path)
        with app.app_context():
            assert readiness.heartbeat_age() is not None
            wait_for_readyz(client, lambda r: readiness.queue_depth() == 0, "the queued heartbeat to run", log_path)
    finally:
        os.killpg(consumer.pid, signal.SIGTERM)
        consumer.wait(timeout=30)

    stale = wait_for_readyz(client, lambda r: r.status_code == 503, "the heartbeat to go stale", log_path)
    details = stale.json["error"]["details"]
    assert list(details) == ["worker"]
    assert "stale after 2 s" in details["worker"]
