"""Who gets into the console, and how (issue 16): staff only, by a cookie
that is HttpOnly, SameSite=Strict, limited to /console and Secure in
production; CSRF tokens on every state-changing request; each page's
roles. Routes come from the URL map, so a new page is covered at once."""
import json

import pytest

from auth import audit
from models import AuthSession, User
from models.account import STAFF_ROLES
from tests.conftest import PASSWORD, receipt_signing_key
from tests.routes import console_routes

PUBLIC = {"console.sign_in", "console.sign_in_submit", "console.static", "console.index"}
ROUTES = console_routes()
PAGES = [(m, rule, path, endpoint, view) for m, rule, path, endpoint, view in ROUTES if endpoint not in PUBLIC]
IDS = [f"{m} {rule}" for m, rule, *_ in PAGES]


def test_every_console_view_names_its_roles():
    assert len(PAGES) >= 3
    assert [endpoint for _, _, _, endpoint, view in PAGES if not hasattr(view, "staff_roles")] == []


@pytest.mark.parametrize("method,rule,path,endpoint,view", PAGES, ids=IDS)
def test_a_console_route_without_a_session_redirects_pages_and_refuses_the_rest(client, method, rule, path, endpoint, view):
    response = client.open(path, method=method)
    if method == "GET":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/console/sign-in?next=")
    else:
        assert response.status_code == 401
        assert b"sign in again" in response.data


def _refused_roles(view):
    allowed = set(view.staff_roles)
    return [role for role in STAFF_ROLES if allowed and role != "admin" and role not in allowed]


ROLE_CASES = [(m, rule, path, role) for m, rule, path, _, view in PAGES if m == "GET" for role in _refused_roles(view)]


@pytest.mark.parametrize("method,rule,path,role", ROLE_CASES, ids=[f"{m} {r} as {role}" for m, r, _, role in ROLE_CASES])
def test_a_page_refuses_staff_without_its_role_with_403(console, staff, method, rule, path, role):
    console.sign_in(staff(role))
    response = console.get(path)
    assert response.status_code == 403
    assert b"for staff with the role" in response.data


def test_admin_opens_every_page_without_a_path_parameter(console, staff):
    console.sign_in(staff("admin"))
    for method, rule, path, endpoint, view in PAGES:
        if method == "GET" and "<" not in rule:
            assert console.get(path).status_code == (204 if endpoint == "console.session_alive" else 200), rule


def test_the_navigation_shows_only_the_pages_of_the_role(console, staff):
    console.sign_in(staff("privacy"))
    page = console.get("/console/overview").get_data(as_text=True)
    assert 'href="/console/overview"' in page
    assert 'href="/console/campaigns"' not in page


def test_sign_in_sets_an_httponly_strict_cookie_for_the_console_only(console, staff):
    response = console.sign_in(staff("campaigns"))
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    session = cookies["console_session"]
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/console" in session
    assert "Secure" not in session
    assert "SameSite=Strict" in cookies["console_csrf"] and "Path=/console" in cookies["console_csrf"]


def test_in_production_the_console_cookies_are_secure(make_app, staff):
    app = make_app(APP_ENV="production", RECEIPT_SIGNING_KEY=receipt_signing_key())
    client = app.test_client()
    with app.app_context():
        from tests.console.conftest import make_staff

        email = make_staff("admin")
    response = client.post("/console/sign-in", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303
    for cookie in response.headers.getlist("Set-Cookie"):
        assert "; Secure" in cookie, cookie


def test_a_customer_account_is_refused_with_the_wrong_password_message(console, staff, client):
    wrong = client.post("/console/sign-in", data={"email": staff("campaigns"), "password": "not the password"})
    customer = client.post("/console/sign-in", data={"email": staff("user"), "password": PASSWORD})
    assert wrong.status_code == customer.status_code == 401
    assert b"Wrong email or password." in customer.data and b"Wrong email or password." in wrong.data
    assert client.get_cookie("console_session", path="/console") is None


def test_the_console_cookie_does_not_authenticate_the_api(console, staff):
    console.sign_in(staff("admin"))
    token = console.client.get_cookie("console_session", path="/console").value
    console.client.set_cookie("console_session", token, path="/v1")
    response = console.client.get("/v1/admin/campaigns")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authorization_required"


def test_sign_out_without_the_csrf_token_is_refused_and_the_session_lives(console, staff):
    console.sign_in(staff("admin"))
    response = console.post("/console/sign-out", csrf=False)
    assert response.status_code == 403
    assert console.get("/console/overview").status_code == 200
    assert audit.entries(action="sign_out") == []


def test_sign_out_revokes_the_session(console, staff, app):
    email = staff("admin")
    console.sign_in(email)
    token = console.client.get_cookie("console_session", path="/console").value
    response = console.post("/console/sign-out")
    assert response.status_code == 303
    console.client.set_cookie("console_session", token, path="/console")
    assert console.get("/console/overview").status_code == 302
    with app.app_context():
        [session] = AuthSession.select().where(AuthSession.revoked_at.is_null(False))
        [signed_out] = audit.entries(action="sign_out")
        staff_id = str(User.get(User.email == email).id)
        assert (signed_out.actor_email, signed_out.actor_role, signed_out.target) == (email, "admin", f"staff:{staff_id}")
        assert json.loads(signed_out.details) == {"session_id": str(session.id)}


def test_console_and_api_failures_count_against_the_same_login_limit(make_app):
    app = make_app(RATELIMIT_LOGIN_ACCOUNT="2 per hour")
    client = app.test_client()
    with app.app_context():
        from tests.console.conftest import make_staff

        email = make_staff("admin")
    for _ in range(2):
        assert client.post("/console/sign-in", data={"email": email, "password": "wrong password"}).status_code == 401
    response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 429
    assert client.post("/console/sign-in", data={"email": email, "password": PASSWORD}).status_code == 429


def test_sign_in_redirects_only_within_the_console(client, staff):
    email = staff("admin")
    for target, expected in (("/console/campaigns", "/console/campaigns"), ("https://evil.example/", "/console/overview"),
                             ("//evil.example/console/", "/console/overview")):
        response = client.post("/console/sign-in", data={"email": email, "password": PASSWORD, "next": target})
        assert response.headers["Location"] == expected


def test_a_sign_in_posted_from_another_site_is_refused(client, staff):
    response = client.post("/console/sign-in", data={"email": staff("admin"), "password": PASSWORD},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get_cookie("console_session", path="/console") is None


def test_console_pages_load_nothing_from_elsewhere(console, staff):
    console.sign_in(staff("admin"))
    response = console.get("/console/overview")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["Cache-Control"] == "no-store"


def test_a_fragment_fetched_without_a_session_is_refused_not_redirected(client):
    response = client.get("/console/overview/sending", headers={"Sec-Fetch-Mode": "cors"})
    assert response.status_code == 401


CAMPAIGN_FORM = {"name": "Changed by the wrong role", "kind": "marketing", "title": "Sale", "body": "20% off"}
WRONG_ROLE_POSTS = [
    ("privacy", "/console/campaigns/new", CAMPAIGN_FORM),
    ("privacy", "/console/campaigns/{campaign}/edit", CAMPAIGN_FORM),
    ("privacy", "/console/campaigns/preview", CAMPAIGN_FORM),
    ("privacy", "/console/campaigns/{campaign}/send", {}),
    ("privacy", "/console/campaigns/{campaign}/cancel", {}),
    ("privacy", "/console/campaigns/{campaign}/resume", {}),
    ("campaigns", "/console/staff/{member}/role", {"role": "admin"}),
    ("privacy", "/console/staff/{member}/role", {"role": "admin"}),
    ("campaigns", "/console/staff/{member}/remove", {}),
    ("privacy", "/console/staff/{member}/remove", {}),
    ("campaigns", "/console/staff/verify-audit", {}),
]


def database_state():
    """Every row a refused post could have changed: campaigns, accounts, audit entries, queued deliveries."""
    from models import AuditEntry, Campaign, Delivery

    return {model.__name__: sorted(tuple(str(v) for v in row) for row in model.select().tuples())
            for model in (Campaign, User, AuditEntry, Delivery)}


@pytest.mark.parametrize("role,path,form", WRONG_ROLE_POSTS, ids=[f"{r} {p}" for r, p, _ in WRONG_ROLE_POSTS])
def test_a_post_with_a_valid_csrf_token_by_the_wrong_role_is_refused_and_changes_nothing(
        app, client, admin, console, staff, role, path, form):
    from tests.push_helpers import create_campaign

    campaign = create_campaign(client, admin, name="Draft")["id"]
    with app.app_context():
        member = str(User.get(User.email == staff("campaigns")).id)
    console.sign_in(staff(role))
    before = database_state()
    response = console.post(path.format(campaign=campaign, member=member), data=form)
    assert response.status_code == 403, response.data
    assert b"for staff with the role" in response.data  # refused for the role, not for the token
    assert database_state() == before


def production_app(make_app, **overrides):
    return make_app(APP_ENV="production", RECEIPT_SIGNING_KEY=receipt_signing_key(), **overrides)


def test_in_production_the_sign_in_page_warns_when_reached_over_plain_http(make_app):
    client = production_app(make_app).test_client()
    plain = client.get("/console/sign-in").get_data(as_text=True)
    assert 'id="insecure-warning"' in plain and "HTTPS" in plain
    secure = client.get("/console/sign-in", base_url="https://console.example").get_data(as_text=True)
    assert 'id="insecure-warning"' not in secure


def test_outside_production_the_sign_in_page_does_not_warn(console):
    assert 'id="insecure-warning"' not in console.get("/console/sign-in").get_data(as_text=True)


def test_behind_a_trusted_proxy_the_forwarded_scheme_counts(make_app):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    untrusting = production_app(make_app).test_client()
    assert 'id="insecure-warning"' in untrusting.get("/console/sign-in", headers=forwarded).get_data(as_text=True)
    trusting = production_app(make_app, PROXY_FIX_HOPS=1).test_client()
    assert 'id="insecure-warning"' not in trusting.get("/console/sign-in", headers=forwarded).get_data(as_text=True)
