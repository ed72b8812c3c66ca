"""Push providers. ``FcmProvider`` is driven through the real firebase-admin
and google-auth code against the local fake FCM server in ``devtools.fakefcm``."""
import email.utils
import logging
import socket
import time

import pytest

from core.config import ConfigError
from push.providers import (
    AUTH_ERROR,
    DELIVERED,
    FAILED,
    MAX_BATCH_SIZE,
    RETRY,
    TOKEN_INVALID,
    FcmProvider,
    LogProvider,
    Message,
    build_provider,
    mask_token,
)
from devtools.fakefcm import FakeFcmServer, make_service_account

# firebase-admin 7.7 warns on every Message(token=...); see FcmProvider._send.
pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")

TOKEN = "fcm-token-" + "a" * 140


def message(token=TOKEN, **data):
    return Message(token=token, title="Sale", body="Shoes are 20% off", data=data)


@pytest.fixture
def credentials_file(fake_fcm, tmp_path):
    return fake_fcm.write_service_account(tmp_path / "service-account.json")


@pytest.fixture
def provider(fake_fcm, credentials_file):
    built = FcmProvider(credentials_file=credentials_file, endpoint=fake_fcm.base_url)
    yield built
    built.close()


def test_delivers_and_returns_the_fcm_message_id(provider, fake_fcm):
    [result] = provider.send([message(campaign="42")])

    assert result.status == DELIVERED
    assert result.message_id.startswith("projects/fake-project/messages/")
    assert fake_fcm.delivered[TOKEN] == 1
    [(token, payload, status)] = fake_fcm.requests
    assert (token, status) == (TOKEN, 200)
    assert payload["message"]["notification"] == {"title": "Sale", "body": "Shoes are 20% off"}
    assert payload["message"]["data"] == {"campaign": "42"}


def test_sends_with_a_bearer_token_from_the_servers_own_token_endpoint(provider, fake_fcm):
    provider.send([message()])
    provider.send([message()])

    assert fake_fcm.token_requests == 1
    assert fake_fcm.bearers_seen
    assert fake_fcm.bearers_seen <= fake_fcm.issued_tokens


@pytest.mark.parametrize(
    "behaviour, status, code",
    [
        ("unregistered", TOKEN_INVALID, "unregistered"),
        ("sender_id_mismatch", TOKEN_INVALID, "sender_id_mismatch"),
        ("invalid_token", TOKEN_INVALID, "invalid_argument"),
        ("invalid_token_message", TOKEN_INVALID, "invalid_argument"),
        ("invalid_payload", FAILED, "invalid_argument"),
        ("payload_too_large", FAILED, "invalid_argument"),
        ("unavailable", RETRY, "unavailable"),
        ("internal", RETRY, "internal"),
        ("third_party_auth", AUTH_ERROR, "third_party_auth_error"),
    ],
)
def test_maps_each_fcm_error_with_a_single_request(provider, fake_fcm, behaviour, status, code):
    fake_fcm.script[TOKEN] = [behaviour]
    started = time.monotonic()

    [result] = provider.send([message()])

    assert (result.status, result.code) == (status, code)
    assert result.message_id is None
    assert result.retry_after is None
    assert fake_fcm.sends_to(TOKEN) == 1, "the SDK must not retry behind the caller"
    assert fake_fcm.delivered[TOKEN] == 0
    assert time.monotonic() - started < 1


def test_payload_error_does_not_condemn_the_token(provider, fake_fcm):
    fake_fcm.script[TOKEN] = ["invalid_payload"]

    [result] = provider.send([message()])

    assert result.status == FAILED
    assert "message.data[0].value" in result.detail


@pytest.mark.parametrize(
    "behaviour, code", [("quota:30", "quota_exceeded"), ("quota_without_code:30", "resource_exhausted")]
)
def test_quota_is_retried_after_the_retry_after_header(provider, fake_fcm, behaviour, code):
    fake_fcm.script[TOKEN] = [behaviour]
    started = time.monotonic()

    [result] = provider.send([message()])

    assert (result.status, result.code, result.retry_after) == (RETRY, code, 30)
    assert fake_fcm.sends_to(TOKEN) == 1
    assert time.monotonic() - started < 1, "Retry-After must not be slept on inside the SDK"


def test_retry_after_as_an_http_date(provider, fake_fcm):
    fake_fcm.script[TOKEN] = ["quota:" + email.utils.formatdate(time.time() + 120, usegmt=True)]

    [result] = provider.send([message()])

    assert result.status == RETRY
    assert 110 <= result.retry_after <= 121


def test_script_is_consumed_in_order_and_its_last_step_repeats(provider, fake_fcm):
    fake_fcm.script[TOKEN] = ["unavailable", "ok"]

    statuses = [provider.send([message()])[0].status for _ in range(3)]

    assert statuses == [RETRY, DELIVERED, DELIVERED]
    assert fake_fcm.delivered[TOKEN] == 2
    assert [status for _, _, status in fake_fcm.requests] == [503, 200, 200]


def test_results_follow_the_order_of_the_messages(provider, fake_fcm):
    behaviours = ["ok", "unregistered", "unavailable", "invalid_payload", "ok", "third_party_auth"]
    for index, behaviour in enumerate(behaviours):
        fake_fcm.script[f"token-{index}"] = [behaviour]

    results = provider.send([message(f"token-{index}") for index in range(len(behaviours))])

    assert [r.status for r in results] == [DELIVERED, TOKEN_INVALID, RETRY, FAILED, DELIVERED, AUTH_ERROR]


def test_a_full_batch_of_500_is_sent_with_one_token_fetch(provider, fake_fcm):
    messages = [message(f"token-{index:03d}") for index in range(MAX_BATCH_SIZE)]

    results = provider.send(messages)

    assert [r.status for r in results] == [DELIVERED] * MAX_BATCH_SIZE
    assert len({r.message_id for r in results}) == MAX_BATCH_SIZE
    assert sum(fake_fcm.delivered.values()) == MAX_BATCH_SIZE
    assert fake_fcm.token_requests == 1


def test_more_than_500_messages_are_refused_before_sending(provider, fake_fcm):
    with pytest.raises(ValueError, match="500"):
        provider.send([message(f"token-{index}") for index in range(MAX_BATCH_SIZE + 1)])
    assert fake_fcm.requests == []


def test_an_empty_batch_sends_nothing(provider, fake_fcm):
    assert provider.send([]) == []
    assert fake_fcm.requests == []


def test_an_unreachable_endpoint_is_one_failed_attempt_to_retry(fake_fcm, credentials_file):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = FcmProvider(credentials_file=credentials_file, endpoint=f"http://127.0.0.1:{closed_port}")
    try:
        [result] = provider.send([message()])
    finally:
        provider.close()

    assert (result.status, result.code) == (RETRY, "unavailable")


def test_a_refused_service_account_is_an_auth_error(fake_fcm, tmp_path):
    untrusted = tmp_path / "untrusted.json"
    make_service_account(untrusted, fake_fcm.token_uri, fake_fcm.project_id)
    provider = FcmProvider(credentials_file=str(untrusted), endpoint=fake_fcm.base_url)
    try:
        results = provider.send([message("token-1"), message("token-2")])
    finally:
        provider.close()

    assert [(r.status, r.code) for r in results] == [(AUTH_ERROR, "token_refresh")] * 2
    assert fake_fcm.requests == []


def test_project_id_defaults_to_the_credentials_and_can_be_overridden(fake_fcm, credentials_file):
    fake_fcm.project_id = "other-project"
    default = FcmProvider(credentials_file=credentials_file, endpoint=fake_fcm.base_url)
    explicit = FcmProvider(
        credentials_file=credentials_file, project_id="other-project", endpoint=fake_fcm.base_url
    )
    try:
        [refused] = default.send([message()])
        [accepted] = explicit.send([message()])
    finally:
        default.close()
        explicit.close()

    assert default.project_id == "fake-project"
    assert (refused.status, refused.code) == (AUTH_ERROR, "permission_denied")
    assert accepted.status == DELIVERED
    assert accepted.message_id.startswith("projects/other-project/messages/")


def test_providers_coexist_and_close_independently(fake_fcm, credentials_file, tmp_path):
    other_server = FakeFcmServer().start()
    try:
        other_file = other_server.write_service_account(tmp_path / "other.json")
        first = FcmProvider(credentials_file=credentials_file, endpoint=fake_fcm.base_url)
        second = FcmProvider(credentials_file=other_file, endpoint=other_server.base_url)
        first.send([message("to-first")])
        first.close()
        [result] = second.send([message("to-second")])
        second.close()
    finally:
        other_server.stop()

    assert result.status == DELIVERED
    assert fake_fcm.delivered == {"to-first": 1}
    assert other_server.delivered == {"to-second": 1}


def test_endpoint_must_be_an_http_base_url(credentials_file):
    with pytest.raises(ValueError, match="FCM_ENDPOINT"):
        FcmProvider(credentials_file=credentials_file, endpoint="fcm.example.com")


def test_log_provider_records_and_masks(caplog):
    provider = LogProvider()
    caplog.set_level(logging.INFO, logger="push.providers")

    results = provider.send([message(campaign="7"), message("second-" + "b" * 150)])

    assert [r.status for r in results] == [DELIVERED, DELIVERED]
    assert all(r.message_id for r in results)
    assert [m.token for m in provider.sent] == [TOKEN, "second-" + "b" * 150]
    assert len(caplog.records) == 2
    assert TOKEN not in caplog.text
    assert mask_token(TOKEN) in caplog.text
    assert "Shoes are 20% off" not in caplog.text


def test_log_provider_memory_is_bounded_and_batches_are_capped():
    provider = LogProvider(capacity=3)
    provider.send([message(f"token-{index}") for index in range(5)])

    assert [m.token for m in provider.sent] == ["token-2", "token-3", "token-4"]
    with pytest.raises(ValueError):
        provider.send([message()] * (MAX_BATCH_SIZE + 1))


def test_mask_token_hides_the_middle_and_short_tokens_entirely():
    assert mask_token(TOKEN) == "fcm-to...aaaa"
    assert mask_token("short") == "***"


def test_message_refuses_non_string_data():
    with pytest.raises(ValueError, match="data"):
        Message(token=TOKEN, title="t", body="b", data={"count": 3})


def test_build_provider_defaults_to_log():
    assert isinstance(build_provider({}), LogProvider)
    assert isinstance(build_provider({"PUSH_PROVIDER": "log"}), LogProvider)


def test_build_provider_fcm_reads_the_fcm_settings(fake_fcm, credentials_file):
    provider = build_provider(
        {
            "PUSH_PROVIDER": "fcm",
            "FCM_CREDENTIALS_FILE": credentials_file,
            "FCM_PROJECT_ID": None,
            "FCM_ENDPOINT": fake_fcm.base_url + "/",
        }
    )
    try:
        assert isinstance(provider, FcmProvider)
        assert provider.endpoint == fake_fcm.base_url
        assert provider.send([message()])[0].status == DELIVERED
    finally:
        provider.close()


def test_build_provider_fcm_defaults(credentials_file, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", credentials_file)
    provider = build_provider({"PUSH_PROVIDER": "fcm"})
    try:
        assert provider.endpoint == "https://fcm.googleapis.com"
        assert provider.project_id == "fake-project"
    finally:
        provider.close()


def test_build_provider_fcm_without_credentials(monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(ConfigError, match="FCM_CREDENTIALS_FILE"):
        build_provider({"PUSH_PROVIDER": "fcm"})


def test_build_provider_refuses_unknown_names():
    with pytest.raises(ConfigError, match="PUSH_PROVIDER"):
        build_provider({"PUSH_PROVIDER": "apns"})
