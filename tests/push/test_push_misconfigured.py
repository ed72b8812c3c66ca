"""A misconfigured FCM provider never loses sends silently (issue 14, item
15): it stops start-up naming FCM_CREDENTIALS_FILE, a provider that cannot
send pauses the campaign before any delivery is claimed, and /readyz says
when the configuration no longer builds. Driven through the real
firebase-admin SDK against the fake FCM server."""
import os
import socket
import subprocess
import sys

import pytest

from app import create_app
from core.config import ConfigError
from models import Campaign, Delivery
from push import sender
from tests.conftest import ROOT, base_config, receipt_signing_key
from devtools.fakefcm import make_service_account
from tests.push_helpers import campaign_state, create_campaign, fcm_config, member, send

pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")

LOGIN_PAGE = (200, "text/html", "<html><body>Sign in to use this network</body></html>")


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app(request, make_app, fcm_server, tmp_path):
    """An app whose FCM provider builds; ``request.param`` says why it then
    gets no access token: ``rejected`` (a key the token endpoint does not
    trust), ``unreachable`` (a token_uri nobody listens on) or ``login_page``
    (the token endpoint answers an HTML page). Unparametrized, it works."""
    config = fcm_config(fcm_server, tmp_path)
    fault = getattr(request, "param", None)
    if fault == "rejected":
        make_service_account(config["FCM_CREDENTIALS_FILE"], fcm_server.token_uri, fcm_server.project_id)
    elif fault == "unreachable":
        make_service_account(config["FCM_CREDENTIALS_FILE"], f"http://127.0.0.1:{closed_port()}/token",
                             fcm_server.project_id)
    elif fault == "login_page":
        fcm_server.token_reply = LOGIN_PAGE
    app = make_app(**config)
    yield app
    app.extensions["push_provider"].close()


def write(path, text):
    path.write_text(text)
    return str(path)


UNUSABLE_FILES = {
    "unset": lambda tmp_path: None,
    "missing": lambda tmp_path: str(tmp_path / "nowhere.json"),
    "a_directory": lambda tmp_path: str(tmp_path),
    "not_json": lambda tmp_path: write(tmp_path / "key.json", "-----BEGIN PRIVATE KEY-----"),
    "not_a_service_account": lambda tmp_path: write(tmp_path / "key.json", '{"type": "authorized_user"}'),
}


@pytest.mark.parametrize("app_env", ["development", "production"])
@pytest.mark.parametrize("case", sorted(UNUSABLE_FILES))
def test_fcm_without_usable_credentials_refuses_to_start(tmp_path, monkeypatch, app_env, case):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    config = {**base_config(tmp_path), "APP_ENV": app_env, "PUSH_PROVIDER": "fcm", "RECEIPT_SIGNING_KEY": receipt_signing_key(),
              "FCM_CREDENTIALS_FILE": UNUSABLE_FILES[case](tmp_path)}
    with pytest.raises(ConfigError, match="FCM_CREDENTIALS_FILE"):
        create_app(config)


def test_the_worker_process_refuses_to_start_naming_the_credentials_setting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_") and k != "GOOGLE_APPLICATION_CREDENTIALS"}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL="sqlite:///" + str(tmp_path / "app.db"),
               PUSH_PROVIDER="fcm", FCM_CREDENTIALS_FILE=str(tmp_path / "nowhere.json"))
    worker = subprocess.run([sys.executable, "-c", "import app; app.huey"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert worker.returncode != 0
    assert "ConfigError: PUSH_PROVIDER=fcm cannot send: FCM_CREDENTIALS_FILE" in worker.stderr
    assert "nowhere.json" in worker.stderr and "No such file or directory" in worker.stderr


def assert_nothing_claimed(people, fcm_server):
    deliveries = list(Delivery.select())
    assert len(deliveries) == len(people)
    assert {(d.status, d.attempts, d.claim_owner) for d in deliveries} == {("pending", 0, None)}
    assert fcm_server.requests == []


@pytest.mark.parametrize("app, reason", [
    ("rejected", "token_refresh: ('invalid_grant: Invalid JWT Signature."),
    ("unreachable", "token_endpoint_unavailable: HTTPConnectionPool"),
    ("login_page", "TypeError: string indices must be integers"),
], indirect=["app"])
def test_a_provider_without_an_access_token_pauses_the_campaign_before_any_claim(
        app, client, admin, fcm_server, reason):
    people = [member(client, {"marketing_push": True}) for _ in range(3)]
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)

    state = campaign_state(client, admin, campaign)
    assert state["status"] == "paused"
    assert state["paused_reason"].startswith("the push provider cannot send: " + reason)
    assert state["counters"]["pending"] == 3 and state["counters"]["unknown"] == 0
    assert_nothing_claimed(people, fcm_server)


@pytest.mark.parametrize("app", ["login_page"], indirect=True)
def test_a_paused_campaign_resumes_once_the_token_endpoint_answers(app, client, admin, fcm_server):
    people = [member(client, {"marketing_push": True}) for _ in range(3)]
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)
    assert campaign_state(client, admin, campaign)["status"] == "paused"

    fcm_server.token_reply = None
    response = client.post(f"/v1/admin/campaigns/{campaign['id']}/resume", headers=admin["headers"])
    assert response.status_code == 202
    state = campaign_state(client, admin, campaign)
    assert state["status"] == "completed" and state["counters"]["sent"] == 3
    assert all(fcm_server.delivered[p["token"]] == 1 for p in people)


@pytest.mark.parametrize("app", ["rejected", "login_page"], indirect=True)
def test_a_notification_through_a_provider_that_cannot_send_answers_503(app, client, admin, fcm_server):
    person = member(client)
    response = client.post("/v1/notifications", headers=admin["headers"],
                           json={"user_id": person["user_id"], "title": "Your order", "body": "It has shipped"})

    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "push_unavailable"
    assert error["details"]["reason"].startswith("the push provider cannot send: ")
    notification = Campaign.get_by_id(error["details"]["campaign_id"])
    assert (notification.status, notification.paused_reason) == ("paused", error["details"]["reason"])
    assert_nothing_claimed([person], fcm_server)


def test_a_provider_that_raises_while_sending_pauses_after_one_batch(make_app, fcm_server, tmp_path):
    from tests.conftest import PASSWORD

    app = make_app(PUSH_SLICE_SIZE=2, **fcm_config(fcm_server, tmp_path))
    client = app.test_client()
    app.test_cli_runner().invoke(args=["create-admin", "ops@example.com", "--password", PASSWORD])
    login = client.post("/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD})
    admin = {"headers": {"Authorization": f"Bearer {login.json['access_token']}"}}
    for _ in range(6):
        member(client, {"marketing_push": True})
    # A closed provider still gets its access token, then raises in send_each.
    app.extensions["push_provider"].close()
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)

    state = campaign_state(client, admin, campaign)
    assert state["status"] == "paused"
    assert state["paused_reason"] == "the push provider raised ValueError while sending"
    # what was claimed may or may not have gone out: unknown, one batch only
    assert state["counters"]["unknown"] == 2
    assert {(d.status, d.reason) for d in Delivery.select()} == {("unknown", "provider_error")}
    assert fcm_server.requests == []


def test_readyz_reports_credentials_that_no_longer_build_a_provider(app, client, tmp_path, fcm_server):
    assert client.get("/readyz").json["push"] == "ok"
    credentials = tmp_path / "service-account.json"

    credentials.write_text("{not json")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "not_ready"
    assert list(response.json["error"]["details"]) == ["push"]
    assert "FCM_CREDENTIALS_FILE" in response.json["error"]["details"]["push"]

    credentials.unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "cannot be read: No such file or directory" in response.json["error"]["details"]["push"]

    fcm_server.write_service_account(credentials)
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        assert sender.provider().prepare() is None  # the running provider was never affected
