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
    site.page.click("text=Sign out")  # the script asks whether the session lives, then posts
    site.page.wait_for_url("**/console/sign-in*")
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


def test_an_ended_session_is_said_and_the_typed_form_is_kept(app, site, staff):
    """The session ends while a campaign is being written: the preview
    says "Your session ended: sign in again" instead of showing the
    refusal page in its box, and "Save draft" posts nothing and keeps what
    was typed."""
    from auth.sessions import revocations

    site = site(app)
    page = site.page
    site.sign_in(staff("campaigns"))
    page.goto(site.url("/console/campaigns/new"))
    page.fill("input[name=name]", "Typed before the session ended")
    page.fill("input[name=title]", "Spring sale")
    page.fill("textarea[name=body]", "20% off")
    with app.app_context():
        session_ids = [s.id for s in AuthSession.select().where(AuthSession.revoked_at.is_null())]
        assert len(session_ids) == 1
        revocations().revoke(session_ids, "admin")
    site.expect_console_error("status of 401")
    posted = []
    page.on("request", lambda request: request.method == "POST" and posted.append(request.url))

    page.fill("input[name=models]", "Pixel 9")
    notice = page.locator("#session-ended")
    notice.wait_for()
    assert notice.inner_text() == "Your session ended: sign in again"
    assert notice.get_attribute("role") == "alert"
    assert "session has ended" not in page.inner_text("#preview")
    assert set(posted) == {site.url("/console/campaigns/preview")}

    with page.expect_response(site.url("/console/session")) as asked:
        page.click("text=Save draft")
    assert asked.value.status == 401
    page.wait_for_function("() => document.querySelectorAll('#session-ended').length === 1")
    assert page.url == site.url("/console/campaigns/new")
    assert page.input_value("input[name=name]") == "Typed before the session ended"
    assert set(posted) == {site.url("/console/campaigns/preview")}  # the draft was not posted
    assert notice.locator("a").get_attribute("href") == "/console/sign-in?next=%2Fconsole%2Fcampaigns%2Fnew"
    site.screenshot("session-ended")
