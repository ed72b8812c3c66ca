"""Session flows (issue 2, acceptance 3) and rate limits on login and registration."""
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token

from models import AuthSession, User, utcnow
from tests.conftest import PASSWORD, ROOT, bearer, register


def test_register_stores_a_hash_and_answers_a_session(client):
    body = register(client, email="Ann@Example.com", birth_date="2000-05-01", phone="+86 138 0000 0000")
    assert body["user"]["email"] == "Ann@Example.com"
    assert body["user"]["birth_date"] == "2000-05-01"
    assert body["access_token"] and body["refresh_token"]
    stored = User.get(User.email_normalized == "ann@example.com")
    assert stored.password_hash.startswith("$argon2")
    assert PASSWORD not in stored.password_hash
    assert stored.phone == "+8613800000000"
    assert AuthSession.select().where(AuthSession.user == stored).count() == 1


def test_email_is_unique_regardless_of_case(client):
    register(client, email="bob@example.com")
    response = client.post("/v1/auth/register", json={"email": "BOB@example.COM", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "email_taken"
    assert User.select().count() == 1


def test_short_password_and_future_birth_date_are_refused_by_field(client):
    response = client.post(
        "/v1/auth/register", json={"email": "c@example.com", "password": "short", "birth_date": "2999-01-01"}
    )
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"password", "birth_date"}
    assert User.select().count() == 0


def test_login_with_wrong_password_or_unknown_email_is_401(client):
    register(client, email="dan@example.com")
    for email, password in (("dan@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)):
        response = client.post("/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 401
        assert response.json["error"]["code"] == "invalid_credentials"


def test_register_login_refresh_logout(client):
    register(client, email="eve@example.com")
    login = client.post("/v1/auth/login", json={"email": "EVE@example.com", "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.json

    refreshed = client.post("/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert refreshed.status_code == 200
    new = refreshed.json
    assert new["refresh_token"] != tokens["refresh_token"]

    assert client.post("/v1/auth/logout", headers=bearer(new["access_token"])).status_code == 204
    for token in (new["access_token"], new["refresh_token"]):
        response = client.post("/v1/auth/logout", headers=bearer(token))
        assert response.status_code == 401
        assert response.json["error"]["code"] == "token_revoked"
    response = client.post("/v1/auth/refresh", headers=bearer(new["refresh_token"]))
    assert response.json["error"]["code"] == "token_revoked"
    sid = pyjwt.decode(new["access_token"], options={"verify_signature": False})["sid"]
    session = AuthSession.get_by_id(sid)
    assert session.revoked_at is not None and session.revoked_reason == "logout"


def test_access_token_cannot_refresh(client, user):
    response = client.post("/v1/auth/refresh", headers=user["headers"])
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def _jti(token):
    return pyjwt.decode(token, options={"verify_signature": False})["jti"]


def _rotated_ago(seconds):
    AuthSession.update(refreshed_at=utcnow() - timedelta(seconds=seconds)).execute()


def test_reused_refresh_token_revokes_the_whole_session(client, user):
    first = user["refresh_token"]
    second = client.post("/v1/auth/refresh", headers=bearer(first)).json
    _rotated_ago(11)  # past REFRESH_REUSE_GRACE_SECONDS (10)
    reuse = client.post("/v1/auth/refresh", headers=bearer(first))
    assert reuse.status_code == 401
    assert reuse.json["error"]["code"] == "token_reused"
    # the thief's replay also kills the legitimate newest tokens
    for token in (second["refresh_token"], second["access_token"]):
        response = client.post("/v1/auth/logout", headers=bearer(token))
        assert response.status_code == 401
        assert response.json["error"]["code"] == "token_revoked"
    assert AuthSession.get().revoked_reason == "refresh_reused"


def test_a_second_refresh_within_the_grace_answers_the_same_successor(client, user):
    first = user["refresh_token"]
    one = client.post("/v1/auth/refresh", headers=bearer(first))
    _rotated_ago(9)
    two = client.post("/v1/auth/refresh", headers=bearer(first))
    assert one.status_code == two.status_code == 200, two.json
    assert _jti(one.json["refresh_token"]) == _jti(two.json["refresh_token"]) != _jti(first)
    session = AuthSession.get()
    assert session.revoked_at is None and session.refresh_jti == _jti(one.json["refresh_token"])
    for pair in (one.json, two.json):
        assert client.get("/v1/me", headers=bearer(pair["access_token"])).status_code == 200
    # both callers continue the one session: either successor refreshes, once
    assert client.post("/v1/auth/refresh", headers=bearer(two.json["refresh_token"])).status_code == 200


def test_only_the_last_rotated_token_gets_the_grace(client, user):
    first = user["refresh_token"]
    second = client.post("/v1/auth/refresh", headers=bearer(first)).json
    client.post("/v1/auth/refresh", headers=bearer(second["refresh_token"]))
    reuse = client.post("/v1/auth/refresh", headers=bearer(first))
    assert reuse.status_code == 401 and reuse.json["error"]["code"] == "token_reused"
    assert AuthSession.get().revoked_reason == "refresh_reused"


def test_concurrent_refreshes_all_get_the_same_successor(app, user):
    """Four requests of one app refresh with the same token at once (the
    race that matters on PostgreSQL): none logs the user out."""
    barrier = threading.Barrier(4)
    answers = []

    def refresh():
        client = app.test_client()
        barrier.wait()
        answers.append(client.post("/v1/auth/refresh", headers=bearer(user["refresh_token"])))

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [200] * 4, [a.json for a in answers]
    assert len({_jti(a.json["refresh_token"]) for a in answers}) == 1
    client = app.test_client()
    assert AuthSession.get().revoked_at is None
    assert client.get("/v1/me", headers=bearer(answers[0].json["access_token"])).status_code == 200
    assert client.post("/v1/auth/refresh", headers=bearer(answers[1].json["refresh_token"])).status_code == 200


def test_other_sessions_survive_a_logout(client):
    register(client, email="fay@example.com")
    one = client.post("/v1/auth/login", json={"email": "fay@example.com", "password": PASSWORD}).json
    two = client.post("/v1/auth/login", json={"email": "fay@example.com", "password": PASSWORD}).json
    assert client.post("/v1/auth/logout", headers=bearer(one["access_token"])).status_code == 204
    assert client.post("/v1/auth/refresh", headers=bearer(two["refresh_token"])).status_code == 200


def test_a_token_whose_session_is_another_users_is_refused(app, client, user):
    victim = register(client)
    sid = pyjwt.decode(victim["access_token"], options={"verify_signature": False})["sid"]
    assert client.get("/v1/me", headers=bearer(victim["access_token"])).status_code == 200  # session seen live
    with app.app_context():
        crossed = create_access_token(identity=user["user"]["id"], additional_claims={"sid": sid})
    for method, path in (("GET", "/v1/me"), ("POST", f"/v1/devices/{uuid.uuid4()}/locations")):  # row, UserRef
        response = client.open(path, method=method, headers=bearer(crossed), json={})
        assert response.status_code == 401 and response.json["error"]["code"] == "token_revoked"
    assert client.get("/v1/me", headers=bearer(victim["access_token"])).status_code == 200


def test_expired_token_is_401_token_expired(app, client, user):
    payload = pyjwt.decode(user["access_token"], options={"verify_signature": False})
    with app.app_context():
        expired = create_access_token(
            identity=payload["sub"], additional_claims={"sid": payload["sid"]}, expires_delta=timedelta(seconds=-5)
        )
    response = client.post("/v1/auth/logout", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_expired"


def test_token_signed_with_another_key_is_401(client, user):
    payload = pyjwt.decode(user["access_token"], options={"verify_signature": False})
    forged = pyjwt.encode(payload, "another-key-that-is-long-enough-0123456789", algorithm="HS256")
    response = client.post("/v1/auth/logout", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_unsigned_alg_none_token_is_401(client, user):
    payload = pyjwt.decode(user["access_token"], options={"verify_signature": False})
    unsigned = pyjwt.encode(payload, None, algorithm="none")
    response = client.post("/v1/auth/logout", headers=bearer(unsigned))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_garbage_and_missing_tokens_are_401(client):
    assert client.post("/v1/auth/logout", headers=bearer("not.a.jwt")).json["error"]["code"] == "invalid_token"
    missing = client.post("/v1/auth/logout")
    assert missing.status_code == 401
    assert missing.json["error"]["code"] == "authorization_required"


def test_revocation_survives_a_restart(make_app):
    first = make_app()
    client = first.test_client()
    session = register(client)
    assert client.post("/v1/auth/logout", headers=bearer(session["access_token"])).status_code == 204

    restarted = make_app().test_client()
    response = restarted.post("/v1/auth/refresh", headers=bearer(session["refresh_token"]))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_revoked"


def test_revocation_is_seen_by_another_process(app, client, tmp_path):
    session = register(client)
    assert client.post("/v1/auth/logout", headers=bearer(session["access_token"])).status_code == 204
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {ROOT!r})
        from app import create_app
        config = json.loads(sys.argv[1])
        client = create_app(config).test_client()
        response = client.post("/v1/auth/refresh", headers={{"Authorization": "Bearer " + sys.argv[2]}})
        print(response.status_code, response.json["error"]["code"])
        """
    )
    import json

    config = {k: v for k, v in app.config.items() if k in (
        "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_SECRET_KEY", "INSTANCE_PATH", "HUEY_SQLITE_FILE")}
    config["INSTANCE_PATH"] = str(tmp_path / "other")
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config), session["refresh_token"]],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.stdout.split() == ["401", "token_revoked"], out.stderr


def test_repeated_login_failures_from_one_address_get_429(make_app):
    client = make_app(RATELIMIT_LOGIN="3 per minute").test_client()
    register(client, email="gus@example.com")
    # successes do not count against the limit
    for _ in range(4):
        assert client.post("/v1/auth/login", json={"email": "gus@example.com", "password": PASSWORD}).status_code == 200
    for attempt in range(3):
        response = client.post("/v1/auth/login", json={"email": f"x{attempt}@example.com", "password": "wrong password"})
        assert response.status_code == 401
    blocked = client.post("/v1/auth/login", json={"email": "gus@example.com", "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0


def _login(client, email, password, address):
    return client.post("/v1/auth/login", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_failures_from_other_addresses_do_not_lock_the_owner_out(make_app):
    client = make_app(RATELIMIT_LOGIN_ACCOUNT="3 per minute").test_client()
    register(client, email="hal@example.com")
    for attacker in ("10.0.0.1", "10.0.0.2", "2001:db8::1"):
        for _ in range(3):
            assert _login(client, "hal@example.com", "wrong password", attacker).status_code == 401
    owner = _login(client, "HAL@example.com", PASSWORD, "10.0.0.99")
    assert owner.status_code == 200


def test_repeated_failures_for_one_account_from_one_address_get_429(make_app):
    client = make_app(RATELIMIT_LOGIN_ACCOUNT="3 per minute").test_client()
    register(client, email="ida@example.com")
    for _ in range(3):
        assert _login(client, "ida@example.com", "wrong password", "10.0.0.1").status_code == 401
    # even the right password: the address has used up its guesses at this account
    blocked = _login(client, "IDA@example.com", PASSWORD, "10.0.0.1")
    assert blocked.status_code == 429
    assert blocked.json["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0
    assert _login(client, "nobody@example.com", "x", "10.0.0.1").status_code == 401  # other accounts: still asked


def test_an_ipv6_client_counts_as_its_64(make_app):
    client = make_app(RATELIMIT_LOGIN_ACCOUNT="3 per minute").test_client()
    register(client, email="jo@example.com")
    for host in range(1, 4):  # rotating addresses inside one /64
        assert _login(client, "jo@example.com", "wrong password", f"2001:db8:0:1::{host}").status_code == 401
    assert _login(client, "jo@example.com", PASSWORD, "2001:db8:0:1::ffff").status_code == 429
    assert _login(client, "jo@example.com", PASSWORD, "2001:db8:0:2::1").status_code == 200


def test_default_per_address_limits_admit_a_carrier_grade_nat_address(make_app):
    """Thousands of phones behind one address: the documented defaults let
    500 registrations an hour and 100 failed logins in 15 minutes through."""
    from core.config import DEFAULTS

    client = make_app(RATELIMIT_REGISTER=DEFAULTS["RATELIMIT_REGISTER"],
                      RATELIMIT_LOGIN=DEFAULTS["RATELIMIT_LOGIN"]).test_client()
    carrier = "100.64.0.1"
    for n in range(25):  # past the old default of 20 an hour
        response = client.post("/v1/auth/register", json={"email": f"phone-{n}@example.com", "password": PASSWORD},
                               environ_base={"REMOTE_ADDR": carrier})
        assert response.status_code == 201, (n, response.json)
    assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("500", "475")
    for n in range(100):
        assert _login(client, f"phone-{n}@example.com", "mistyped password", carrier).status_code == 401
    assert _login(client, "phone-0@example.com", PASSWORD, carrier).status_code == 429


def test_registration_is_rate_limited_per_address(make_app):
    client = make_app(RATELIMIT_REGISTER="2 per minute").test_client()
    register(client)
    register(client)
    response = client.post("/v1/auth/register", json={"email": "late@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert User.select().count() == 2


@pytest.mark.redis
def test_failed_login_counters_in_redis_hold_no_email(client):
    import redis

    from tests.conftest import TEST_REDIS_URL

    email = f"Counted-{uuid.uuid4().hex[:8]}@Example.com"
    register(client, email=email)
    assert client.post("/v1/auth/login", json={"email": email, "password": "wrong password"}).status_code == 401
    keys = [key.decode() for key in redis.Redis.from_url(TEST_REDIS_URL).keys("*")]
    assert any("login-account:" in key for key in keys)
    assert not [key for key in keys if email.lower() in key.lower() or email.split("@")[0].lower() in key.lower()]
