"""Helpers for push tests: members with a push token, campaigns, and the
config of an app whose FCM provider talks to the local fake FCM server."""
import os
import signal
import subprocess
import sys
import uuid

from tests.conftest import ROOT, remember
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device


def fcm_config(server, tmp_path):
    return {
        "PUSH_PROVIDER": "fcm",
        "FCM_CREDENTIALS_FILE": server.write_service_account(tmp_path / "service-account.json"),
        "FCM_PROJECT_ID": server.project_id,
        "FCM_ENDPOINT": server.base_url,
    }


def member(client, consents=None, birth_date=None, token=None, guardian_by=None, **device):
    """A user with one device and a push token; returns a dict with the
    session, the device and the token. ``guardian_by`` (an admin session)
    records a guardian's consent first, as a minor needs."""
    extra = {"birth_date": birth_date} if birth_date else {}
    session = new_user(client, **extra)
    if guardian_by:
        response = client.post(f"/v1/admin/users/{session['user']['id']}/guardian-consent",
                               headers=guardian_by["headers"],
                               json={"guardian_name": "G", "relationship": "mother", "evidence_ref": "doc"})
        assert response.status_code == 201
    wanted = dict(consents or {})
    put_consents(client, session["headers"], **{**wanted, "service_push": True})
    phone = add_device(client, session["headers"], **device)
    token = token or "tok-" + uuid.uuid4().hex + "x" * 100
    remember("push token", token)
    response = client.put(f"/v1/devices/{phone['id']}/push-token", json={"token": token}, headers=session["headers"])
    assert response.status_code == 200, response.json
    if not wanted.get("service_push", True):
        put_consents(client, session["headers"], service_push=False)
    return {"session": session, "device": phone, "token": token, "user_id": session["user"]["id"]}


def create_campaign(client, admin, **fields):
    body = {"name": "Spring sale", "kind": "marketing", "title": "Sale", "body": "20% off", **fields}
    response = client.post("/v1/admin/campaigns", json=body, headers=admin["headers"])
    assert response.status_code == 201, response.json
    return response.json


def send(client, admin, campaign):
    response = client.post(f"/v1/admin/campaigns/{campaign['id']}/send", headers=admin["headers"])
    assert response.status_code == 202, response.json
    return response.json


def campaign_state(client, admin, campaign):
    return client.get(f"/v1/admin/campaigns/{campaign['id']}", headers=admin["headers"]).json


def consumer_env(app, settings=()):
    """The environment of a ``huey_consumer`` working for ``app``: its
    database, queue, secrets, push provider and the named ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_SECRET_KEY", "PUSH_PROVIDER", "FCM_CREDENTIALS_FILE",
                 "FCM_PROJECT_ID", "FCM_ENDPOINT", *settings):
        if app.config.get(name) is not None:
            env[name] = str(app.config[name])
    env["INSTANCE_PATH"] = app.instance_path
    return env


def start_consumer(app, log_path, workers=2, settings=()):
    """A real ``huey_consumer`` process for ``app`` (stop it with ``stop``)."""
    from tests.conftest import process_log

    log = process_log(log_path)
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.huey", "-w", str(workers), "-k", "thread"],
        cwd=ROOT, env=consumer_env(app, settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
