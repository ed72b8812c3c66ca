"""Signing in and out in a real browser (issue 16): a non-staff account
cannot sign in, sign-out ends the session, and a cross-site form posted
to the console changes nothing."""
import pytest

from models import AuthSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_staff_signs_in_and_out(app, site, staff):
    site = site(app)
    site.sign_in(staff("campaigns"))
    assert site.page.url.endswith("/console/overview")
    assert site.page.locator("nav >> text=Campaigns").count() == 1
    site.screenshot("sign-in-overview")
    site.page.click("text=Sign out")
    site.page.wait_for_load_state()
    assert "/console/sign-in" in site.page.url
    site.page.goto(site.url("/console/overview"))
    assert "/console/sign-in" in site.page.url
    with app.app_context():
        assert AuthSession.select().where(AuthSession.revoked_reason == "logout").count() == 1


def test_a_customer_account_cannot_sign_in(app, site, staff):
    site = site(app)
    site.expect_console_error("status of 401")  # the refused sign-in's answer
    site.sign_in(staff("user"))
    assert "/console/sign-in" in site.page.url
    assert site.page.locator("[role=alert]").inner_text() == "Wrong email or password."
    site.screenshot("sign-in-refused")
    assert [c for c in site.context.cookies() if c["name"] == "console_session"] == []


def test_a_forged_cross_site_post_is_refused(app, site, staff, serve):
    """A page of another site posts the sign-out form to the console of a
    signed-in operator (the console at "localhost", the attacker at
    "127.0.0.1"): the browser sends no session cookie (SameSite=Strict),
    the form has no CSRF token, the answer is a refusal and the session
    lives on."""
    from flask import Flask

    site = site(app, host="localhost")
    site.sign_in(staff("admin"))
    target = site.url("/console/sign-out")
    attacker = Flask("attacker")

    @attacker.get("/")
    def forged():
        return f'<form method="post" action="{target}"><input name="x" value="1"><button>Win</button></form>'

    evil = serve(attacker)
    site.allow(evil)
    site.expect_console_error("status of 401")
    answers = []
    site.page.on("response", lambda response: answers.append((response.url, response.status)))
    site.page.goto(evil + "/")
    site.page.click("text=Win")
    site.page.wait_for_load_state()
    assert [status for url, status in answers if url == target] == [401]
    with app.app_context():
        assert AuthSession.select().where(AuthSession.revoked_at.is_null()).count() == 1
    site.page.goto(site.url("/console/overview"))
    assert site.page.url.endswith("/console/overview")


def test_a_same_site_request_without_the_csrf_header_is_refused(app, site, staff):
    """The session cookie goes along, the CSRF token does not: 403."""
    site = site(app)
    site.sign_in(staff("admin"))
    site.expect_console_error("status of 403")
    status = site.page.evaluate("fetch('/console/sign-out', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)")
    assert status == 403
    with app.app_context():
        assert AuthSession.select().where(AuthSession.revoked_at.is_null()).count() == 1
