"""Requests that race for one unique value answer as the serial case does
(issue 14, item 14): eight at once through a threaded server on PostgreSQL,
where the database, not a process-wide lock, decides who was first."""
import logging
import threading
import uuid

import pytest
import requests

from models import Device, PushToken, User
from tests.conftest import PASSWORD, TEST_DATABASE_URL
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import device_body

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="races need PostgreSQL: set TEST_DATABASE_URL "
                                                              "(SQLite serialises every writer)")

RACERS = 8
TOKEN = "fcm-race-token-" + "r" * 140


def at_once(calls):
    """Run the calls (each returns a requests.Response) in one thread each,
    released together; the responses in call order."""
    start = threading.Barrier(len(calls))
    responses = [None] * len(calls)

    def run(index, call):
        start.wait()
        responses[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def statuses(responses):
    return sorted(response.status_code for response in responses)


def codes(responses, status):
    return {response.json()["error"]["code"] for response in responses if response.status_code == status}


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def assert_logs_name_none_of(logs, *secrets):
    text = "\n".join(record.getMessage() + (logs.handler.formatter.formatException(record.exc_info)
                                            if record.exc_info else "") for record in logs.records)
    assert "DETAIL" not in text
    for secret in secrets:
        assert secret not in text


def test_one_installation_registered_eight_times_at_once_is_one_device_201_then_200(app, client, serve, logs):
    url = serve(app)
    owner = new_user(client)
    body = device_body(installation_id="race-install-" + uuid.uuid4().hex[:8])
    responses = at_once([lambda: requests.post(f"{url}/v1/devices", json=body, headers=owner["headers"])] * RACERS)
    assert statuses(responses) == [200] * (RACERS - 1) + [201]
    assert len({response.json()["device"]["id"] for response in responses}) == 1
    assert Device.select().where(Device.installation_id == body["installation_id"]).count() == 1
    assert_logs_name_none_of(logs, body["installation_id"])


def test_one_new_email_registered_eight_times_at_once_is_one_account_201_then_409(app, serve, logs):
    url = serve(app)
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    responses = at_once([lambda: requests.post(f"{url}/v1/auth/register",
                                               json={"email": email, "password": PASSWORD})] * RACERS)
    assert statuses(responses) == [201] + [409] * (RACERS - 1)
    assert codes(responses, 409) == {"email_taken"}
    assert User.select().where(User.email_normalized == email).count() == 1
    assert_logs_name_none_of(logs, email)


def test_one_token_put_by_eight_installations_at_once_stays_with_the_first_and_the_rest_are_409(
        app, client, serve, logs):
    url = serve(app)
    devices = []
    for _ in range(RACERS):
        account = new_user(client)
        put_consents(client, account["headers"], service_push=True)
        body = device_body()
        devices.append((account, client.post("/v1/devices", json=body, headers=account["headers"]).json["device"]))
    responses = at_once([
        lambda account=account, device=device: requests.put(
            f"{url}/v1/devices/{device['id']}/push-token", json={"token": TOKEN}, headers=account["headers"])
        for account, device in devices])
    assert statuses(responses) == [200] + [409] * (RACERS - 1)
    assert codes(responses, 409) == {"token_in_use"}
    winner = next(device for (_, device), response in zip(devices, responses) if response.status_code == 200)
    assert [str(row.device_id) for row in PushToken.select().where(PushToken.token == TOKEN)] == [winner["id"]]
    assert_logs_name_none_of(logs, TOKEN)


def test_one_token_put_by_eight_accounts_of_one_installation_at_once_moves_without_error(app, client, serve, logs):
    url = serve(app)
    installation = "race-phone-" + uuid.uuid4().hex[:8]
    devices = []
    for _ in range(RACERS):
        account = new_user(client)
        put_consents(client, account["headers"], service_push=True)
        body = device_body(installation_id=installation)
        devices.append((account, client.post("/v1/devices", json=body, headers=account["headers"]).json["device"]))
    responses = at_once([
        lambda account=account, device=device: requests.put(
            f"{url}/v1/devices/{device['id']}/push-token", json={"token": TOKEN}, headers=account["headers"])
        for account, device in devices])
    assert statuses(responses) == [200] * RACERS
    holders = [str(row.device_id) for row in PushToken.select().where(PushToken.token == TOKEN)]
    assert len(holders) == 1 and holders[0] in {device["id"] for _, device in devices}
    assert PushToken.select().count() == 1
    assert_logs_name_none_of(logs, TOKEN, installation)


def test_device_limit_holds_when_eight_installations_register_at_once(make_app, serve, logs):
    app = make_app(MAX_DEVICES_PER_USER=3)
    url = serve(app)
    owner = new_user(app.test_client())
    bodies = [device_body() for _ in range(RACERS)]
    responses = at_once([lambda body=body: requests.post(f"{url}/v1/devices", json=body, headers=owner["headers"])
                         for body in bodies])
    assert statuses(responses) == [201] * 3 + [409] * (RACERS - 3)
    assert codes(responses, 409) == {"too_many_devices"}
    assert Device.select().where(Device.user == owner["user"]["id"]).count() == 3
