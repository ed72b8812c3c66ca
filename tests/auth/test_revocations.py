"""Each process's copy of the revoked sessions (revocations.RevokedSessions),
against the real Redis of TEST_REDIS_URL: revocations published by other
processes reach it, revocations made before it subscribed are read from
Redis, and while it is incomplete the check asks Redis; Redis losing its
keys revives nothing, because the database stays the truth. Without Redis
the database alone holds revocations and these tests are skipped."""
import time
import uuid

import jwt as pyjwt
import pytest
import redis

from auth.revocations import RedisRevocations, RevokedSessions
from tests.conftest import TEST_REDIS_URL, bearer, flush_redis, register

pytestmark = pytest.mark.redis

PREFIX = "test-revoked-session:"


def _copy(ttl=60):
    client = redis.Redis.from_url(TEST_REDIS_URL)
    return client, RevokedSessions(client, PREFIX, f"{PREFIX}{uuid.uuid4().hex}", ttl)


def _eventually(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_revocation_published_by_another_process_reaches_this_one():
    client, known = _copy()
    assert known.contains("not-revoked") is None  # subscribing: ask Redis meanwhile
    assert _eventually(lambda: known.contains("not-revoked") is False)
    sid = uuid.uuid4().hex
    other = redis.Redis.from_url(TEST_REDIS_URL)  # what another API process's revoke() sends
    other.set(PREFIX + sid, "logout", ex=60)
    other.publish(known.channel, sid)
    assert _eventually(lambda: known.contains(sid) is True, seconds=2)
    assert known.contains("not-revoked") is False


def test_revocations_made_before_subscribing_are_read_from_redis():
    sid = uuid.uuid4().hex
    redis.Redis.from_url(TEST_REDIS_URL).set(PREFIX + sid, "logout", ex=60)
    _, known = _copy()
    assert _eventually(lambda: known.contains(sid) is not None)
    assert known.contains(sid) is True


def test_a_lost_subscription_is_renewed_and_what_it_missed_read_again():
    client, known = _copy()
    known.RETRY_SECONDS = 0.05
    assert _eventually(lambda: known.contains("x") is False)
    client.client_kill_filter(_type="pubsub")
    missed = uuid.uuid4().hex
    client.set(PREFIX + missed, "logout", ex=60)  # revoked while no one listened: no message arrives
    assert _eventually(lambda: known.contains(missed) is True)


def test_while_the_copy_is_incomplete_tokens_are_checked_against_redis():
    client = redis.Redis.from_url(TEST_REDIS_URL)
    store = RedisRevocations(client, ttl_seconds=60)
    store.known = RevokedSessions(client, store.PREFIX, f"{PREFIX}{uuid.uuid4().hex}", 60)  # not subscribed yet
    sid = uuid.uuid4().hex
    client.set(store.PREFIX + sid, "logout", ex=60)
    assert store.known.contains(sid) is None
    assert store.is_revoked(sid) is True
    assert store.is_revoked(uuid.uuid4().hex) is False


def test_an_id_is_forgotten_when_its_key_would_have_expired():
    _, known = _copy(ttl=0.2)
    assert _eventually(lambda: known.contains("x") is False)
    known.add(["short-lived"])
    assert known.contains("short-lived") is True
    time.sleep(0.3)
    assert known.contains("short-lived") is False
    known._forget_expired()
    assert "short-lived" not in known._until


def _as_a_new_process(monkeypatch, make_app):
    """An app with its own revocation copy, as another API process (or this
    one restarted) would build it."""
    monkeypatch.setattr(RevokedSessions, "_shared", {})
    return make_app().test_client()


def test_a_logged_out_token_stays_revoked_when_redis_loses_its_keys(monkeypatch, make_app):
    client = make_app().test_client()
    session = register(client)
    assert client.post("/v1/auth/logout", headers=bearer(session["access_token"])).status_code == 204
    flush_redis(TEST_REDIS_URL)  # FLUSHDB, or every key evicted under memory pressure
    other = _as_a_new_process(monkeypatch, make_app)
    for token, path in ((session["access_token"], "/v1/me"), (session["refresh_token"], "/v1/auth/refresh")):
        method = other.get if path == "/v1/me" else other.post
        response = method(path, headers=bearer(token))
        assert response.status_code == 401 and response.json["error"]["code"] == "token_revoked"
    sid = pyjwt.decode(session["access_token"], options={"verify_signature": False})["sid"]
    known = other.application.extensions["revocations"].known
    assert _eventually(lambda: known.contains(sid) is True)  # the next replay costs no query


def test_a_live_session_is_read_from_the_database_once_per_process(app, client, user):
    store = app.extensions["revocations"]
    sid = pyjwt.decode(user["access_token"], options={"verify_signature": False})["sid"]
    assert store.live.user_of(sid) is None
    assert client.get("/v1/me", headers=user["headers"]).status_code == 200
    assert str(store.live.user_of(sid)) == user["user"]["id"]
    assert client.post("/v1/auth/logout", headers=user["headers"]).status_code == 204
    assert store.live.user_of(sid) is None
    assert client.get("/v1/me", headers=user["headers"]).status_code == 401


def test_a_redis_that_stays_down_is_logged_once_without_a_traceback(private_redis, caplog):
    client = redis.Redis.from_url(private_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    known = RevokedSessions(client, PREFIX, f"{PREFIX}{uuid.uuid4().hex}", 60)
    known.RETRY_SECONDS, known.MAX_RETRY_SECONDS = 0.01, 0.05
    assert _eventually(lambda: known.contains("x") is False)
    with caplog.at_level("WARNING", logger="auth.revocations"):
        private_redis.kill()
        assert _eventually(lambda: known.contains("x") is None)
        time.sleep(1.0)  # many retries
    lost = [r for r in caplog.records if "lost the revocation subscription" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].exc_info is None


def test_apps_on_one_redis_database_share_one_copy_and_its_thread(make_app):
    first, second = (make_app().extensions["revocations"].known for _ in range(2))
    assert first is second
