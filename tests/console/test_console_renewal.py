"""The console's cookie is renewed while it is used (the implicit refresh
of flask-jwt-extended): a token with less than a third of its lifetime
left is replaced by one for the same session, keeping its CSRF token; a
revoked session is never renewed."""
from datetime import timedelta

from flask_jwt_extended import create_access_token, decode_token

from auth.sessions import renew_access, revocations
from models import AuthSession

COOKIE = "console_session"


def signed_in(app, console, staff):
    console.sign_in(staff("admin"))
    with app.app_context():
        return decode_token(console.client.get_cookie(COOKIE, path="/console").value)


def near_its_end(app, console, payload, minutes=2):
    """Replace the browser's token by one of the same session and CSRF
    token that has only ``minutes`` left (of a 15-minute lifetime)."""
    with app.app_context():
        token = create_access_token(identity=payload["sub"], expires_delta=timedelta(minutes=minutes),
                                    additional_claims={"sid": payload["sid"], "csrf": payload["csrf"]})
    console.client.set_cookie(COOKIE, token, path="/console")
    return token


def renewed_cookie(response):
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=") and not h.startswith(COOKIE + "=;")]


def test_a_fresh_token_is_not_renewed(app, console, staff):
    signed_in(app, console, staff)
    response = console.get("/console/overview")
    assert response.status_code == 200
    assert renewed_cookie(response) == []


def test_a_token_in_its_last_third_is_replaced_by_one_of_the_same_session(app, console, staff):
    payload = signed_in(app, console, staff)
    old = near_its_end(app, console, payload)
    response = console.get("/console/overview")
    assert response.status_code == 200
    assert len(renewed_cookie(response)) == 1
    new = console.client.get_cookie(COOKIE, path="/console").value
    assert new != old
    with app.app_context():
        claims = decode_token(new)
        assert claims["sid"] == payload["sid"] and claims["sub"] == payload["sub"]
        assert claims["csrf"] == payload["csrf"]  # the open page's forms and fetches keep working
        assert claims["exp"] - claims["iat"] == 15 * 60
        assert claims["exp"] > decode_token(old)["exp"]
        assert AuthSession.select().count() == 1
    # the page's CSRF token still passes with the renewed cookie
    assert console.post("/console/sign-out").status_code == 303


def test_a_session_revoked_by_the_request_itself_is_not_renewed(app, console, staff):
    payload = signed_in(app, console, staff)
    near_its_end(app, console, payload)
    response = console.post("/console/sign-out")
    assert response.status_code == 303
    assert renewed_cookie(response) == []
    with app.app_context():
        assert AuthSession.get_by_id(payload["sid"]).revoked_reason == "logout"


def test_a_revoked_session_gets_no_new_token(app, console, staff):
    payload = signed_in(app, console, staff)
    with app.test_request_context():
        assert renew_access(payload) is not None
        revocations().revoke([payload["sid"]], "admin")
        assert renew_access(payload) is None
    near_its_end(app, console, payload)
    response = console.get("/console/overview")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]
    assert renewed_cookie(response) == []
