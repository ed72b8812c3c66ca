"""Sessions a user manages (issue 17, section 4): the session list, ending
one or all of them, changing the password, and confirming an erasure."""
import uuid
from datetime import datetime, timedelta

import jwt as pyjwt
from flask_jwt_extended import create_access_token

from models import AuthSession, User
from tests.conftest import PASSWORD, bearer, register

NEW_PASSWORD = "a brand new horse battery"


def sid_of(session):
    return pyjwt.decode(session["access_token"], options={"verify_signature": False})["sid"]


def login(client, email, password=PASSWORD, **extra):
    response = client.post("/v1/auth/login", json={"email": email, "password": password}, **extra)
    assert response.status_code == 200, response.json
    return response.json


def revoked_at(session):
    return AuthSession.get_by_id(sid_of(session)).revoked_at


def test_sessions_list_device_address_times_and_current(client):
    first = register(client, email="sam@example.com")
    phone = login(client, "sam@example.com", headers={"User-Agent": "ShopApp/3.2\x01 (iPhone;\t iOS 17.1)" + "x" * 200},
                  environ_base={"REMOTE_ADDR": "203.0.113.77"})
    tablet = client.post("/v1/auth/login", json={"email": "sam@example.com", "password": PASSWORD,
                                                 "device_name": "Sam's tablet"},
                         environ_base={"REMOTE_ADDR": "2001:db8:1234:5678::9"}).json

    response = client.get("/v1/me/sessions", headers=bearer(phone["access_token"]))
    assert response.status_code == 200
    by_id = {item["id"]: item for item in response.json["items"]}
    assert set(by_id) == {sid_of(first), sid_of(phone), sid_of(tablet)}
    assert [item["current"] for item in by_id.values()].count(True) == 1 and by_id[sid_of(phone)]["current"]
    assert by_id[sid_of(phone)]["device"] == ("ShopApp/3.2 (iPhone; iOS 17.1)" + "x" * 200)[:64]
    assert by_id[sid_of(phone)]["address"] == "203.0.113.0"
    assert by_id[sid_of(tablet)]["device"] == "Sam's tablet"
    assert by_id[sid_of(tablet)]["address"] == "2001:db8:1234::"
    assert all(item[key].endswith("Z") for item in by_id.values() for key in ("created_at", "last_used_at"))

    stored = AuthSession.get_by_id(sid_of(phone))  # only the network and the cleaned start are kept
    assert (stored.address, len(stored.device)) == ("203.0.113.0", 64)

    refreshed = client.post("/v1/auth/refresh", headers=bearer(tablet["refresh_token"]))
    assert refreshed.status_code == 200
    items = {i["id"]: i for i in client.get("/v1/me/sessions", headers=bearer(phone["access_token"])).json["items"]}
    last_used = datetime.fromisoformat(items[sid_of(tablet)]["last_used_at"].replace("Z", "+00:00"))
    assert last_used.replace(tzinfo=None) == AuthSession.get_by_id(sid_of(tablet)).refreshed_at

    client.post("/v1/auth/logout", headers=bearer(first["access_token"]))
    items = client.get("/v1/me/sessions", headers=bearer(phone["access_token"])).json["items"]
    assert sid_of(first) not in {item["id"] for item in items}


def test_ending_one_session_revokes_it_and_keeps_the_others(client):
    register(client, email="tia@example.com")
    lost, kept = login(client, "tia@example.com"), login(client, "tia@example.com")

    response = client.delete(f"/v1/me/sessions/{sid_of(lost)}", headers=bearer(kept["access_token"]))
    assert response.status_code == 204
    assert revoked_at(lost) is not None and revoked_at(kept) is None
    assert AuthSession.get_by_id(sid_of(lost)).revoked_reason == "ended_by_user"
    assert client.get("/v1/me", headers=bearer(lost["access_token"])).status_code == 401
    assert client.post("/v1/auth/refresh", headers=bearer(lost["refresh_token"])).status_code == 401
    assert client.get("/v1/me", headers=bearer(kept["access_token"])).status_code == 200
    again = client.delete(f"/v1/me/sessions/{sid_of(lost)}", headers=bearer(kept["access_token"]))
    assert again.status_code == 404


def test_another_users_session_is_404_and_stays_open(client):
    owner, stranger = register(client), register(client)
    for session_id in (sid_of(owner), str(uuid.uuid4())):
        response = client.delete(f"/v1/me/sessions/{session_id}", headers=stranger["headers"])
        assert response.status_code == 404
        assert response.json["error"]["code"] == "session_not_found"
    assert revoked_at(owner) is None
    assert client.get("/v1/me", headers=owner["headers"]).status_code == 200


def test_logout_all_revokes_every_session_of_the_user_only(client):
    register(client, email="una@example.com")
    one, two = login(client, "una@example.com"), login(client, "una@example.com")
    other = register(client)

    response = client.post("/v1/auth/logout-all", headers=bearer(one["access_token"]))
    assert response.status_code == 204
    user = User.get(User.email_normalized == "una@example.com")
    assert AuthSession.select().where((AuthSession.user == user) & AuthSession.revoked_at.is_null()).count() == 0
    for session in (one, two):
        assert client.get("/v1/me", headers=bearer(session["access_token"])).status_code == 401
        assert client.post("/v1/auth/refresh", headers=bearer(session["refresh_token"])).status_code == 401
    assert revoked_at(other) is None
    assert client.get("/v1/me", headers=other["headers"]).status_code == 200


def test_password_change_revokes_the_other_sessions_and_the_new_password_logs_in(client):
    register(client, email="val@example.com")
    caller, elsewhere = login(client, "val@example.com"), login(client, "val@example.com")

    response = client.post("/v1/me/password", headers=bearer(caller["access_token"]),
                           json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert revoked_at(elsewhere) is not None and revoked_at(caller) is None
    assert AuthSession.get_by_id(sid_of(elsewhere)).revoked_reason == "password_changed"
    assert client.get("/v1/me", headers=bearer(elsewhere["access_token"])).status_code == 401
    assert client.get("/v1/me", headers=bearer(caller["access_token"])).status_code == 200
    assert client.post("/v1/auth/refresh", headers=bearer(caller["refresh_token"])).status_code == 200

    old = client.post("/v1/auth/login", json={"email": "val@example.com", "password": PASSWORD})
    assert old.status_code == 401
    assert login(client, "val@example.com", NEW_PASSWORD)["access_token"]


def test_wrong_current_password_or_a_weak_new_one_names_the_field(client, user):
    wrong = client.post("/v1/me/password", headers=user["headers"],
                        json={"current_password": "not my password", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 403
    assert wrong.json["error"]["code"] == "wrong_password"
    assert set(wrong.json["error"]["details"]) == {"current_password"}
    weak = client.post("/v1/me/password", headers=user["headers"],
                       json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422
    assert set(weak.json["error"]["details"]) == {"new_password"}
    assert login(client, user["user"]["email"])  # the password is unchanged
    assert revoked_at(user) is None


def test_wrong_current_passwords_are_rate_limited_like_logins(make_app):
    client = make_app(RATELIMIT_LOGIN_ACCOUNT="3 per minute").test_client()
    session = register(client)
    for _ in range(3):
        response = client.post("/v1/me/password", headers=session["headers"],
                               json={"current_password": "a wrong guess", "new_password": NEW_PASSWORD})
        assert response.status_code == 403
    blocked = client.post("/v1/me/password", headers=session["headers"],
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert blocked.status_code == 429
    assert login(client, session["user"]["email"])  # unchanged


def test_erasure_with_a_refreshed_token_needs_the_password(client):
    session = register(client, email="wes@example.com")
    refreshed = client.post("/v1/auth/refresh", headers=bearer(session["refresh_token"])).json
    headers = bearer(refreshed["access_token"])

    bare = client.delete("/v1/me", headers=headers)
    assert bare.status_code == 403
    assert bare.json["error"]["code"] == "reauthentication_required"
    assert set(bare.json["error"]["details"]) == {"password"}
    wrong = client.delete("/v1/me", headers=headers, json={"password": "not my password"})
    assert wrong.status_code == 403 and set(wrong.json["error"]["details"]) == {"password"}
    assert User.select().where(User.email_normalized == "wes@example.com").exists()

    confirmed = client.delete("/v1/me", headers=headers, json={"password": PASSWORD})
    assert confirmed.status_code == 204
    assert not User.select().where(User.email_normalized == "wes@example.com").exists()


def test_erasure_with_a_token_from_a_recent_login_needs_no_password(app, client):
    session = register(client, email="xan@example.com")
    with app.app_context():  # a login's token whose five minutes are over
        stale = create_access_token(identity=session["user"]["id"], fresh=timedelta(seconds=-1),
                                    additional_claims={"sid": sid_of(session)})
    assert client.delete("/v1/me", headers=bearer(stale)).status_code == 403
    assert User.select().where(User.email_normalized == "xan@example.com").exists()

    fresh = login(client, "xan@example.com")
    assert client.delete("/v1/me", headers=bearer(fresh["access_token"])).status_code == 204
    assert not User.select().where(User.email_normalized == "xan@example.com").exists()


def test_401_names_the_bearer_scheme_and_a_bad_token(client, user):
    missing = client.get("/v1/me")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    for token in ("garbage", user["refresh_token"][:-2] + "xx"):
        bad = client.get("/v1/me", headers=bearer(token))
        assert bad.status_code == 401
        assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    client.post("/v1/auth/logout", headers=user["headers"])
    revoked = client.get("/v1/me", headers=user["headers"])
    assert revoked.json["error"]["code"] == "token_revoked"
    assert revoked.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    wrong_login = client.post("/v1/auth/login", json={"email": user["user"]["email"], "password": "nope nope"})
    assert wrong_login.status_code == 401 and wrong_login.headers["WWW-Authenticate"] == "Bearer"


def test_a_204_has_no_body_and_no_content_type(client, user):
    for method, path in (("DELETE", "/v1/me/locations"), ("POST", "/v1/auth/logout")):
        response = client.open(path, method=method, headers=user["headers"])
        assert response.status_code == 204
        assert response.get_data() == b""
        assert "Content-Type" not in response.headers
