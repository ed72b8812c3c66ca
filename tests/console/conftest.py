"""Fixtures of the console's tests: staff accounts, a signed-in test
client, and for the browser tests (marker ``browser``) Debian's Chromium
driven by Playwright against the app served on a real port."""
import os
import re
import uuid

import pytest

from auth.passwords import hash_password
from models import User
from models.base import utcnow
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "screenshots")


def screenshots_dir():
    """Where screenshots go: ``CONSOLE_SCREENSHOTS_DIR`` (``.ci/run`` sets one per pass) or tests/screenshots/."""
    return os.environ.get("CONSOLE_SCREENSHOTS_DIR") or SCREENSHOTS


def make_staff(role, email=None):
    """An account with ``role`` (``user`` for a customer), made as
    create-admin makes one; returns its email (password ``PASSWORD``)."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    User.create(email=email, email_normalized=User.normalize_email(email), password_hash=hash_password(PASSWORD),
                role=role, self_registered=role == "user", created_at=utcnow())
    return email


@pytest.fixture
def staff(app):
    """``staff(role)``: a new account with that role; returns its email."""
    def factory(role="admin"):
        with app.app_context():
            return make_staff(role)

    return factory


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


class ConsoleClient:
    """A Flask test client signed in to the console, with the page's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.csrf = None
        self.email = None

    def sign_in(self, email, password=PASSWORD):
        response = self.client.post("/console/sign-in", data={"email": email, "password": password})
        assert response.status_code == 303, response.data
        self.email = email
        self.csrf = self.client.get_cookie("console_csrf", path="/console").value
        return response

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, url, data=None, csrf=True, **kwargs):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.csrf
        return self.client.post(url, data=data, **kwargs)


@pytest.fixture
def console(client):
    return ConsoleClient(client)


# -- the browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium under Playwright. Missing, the browser tests fail
    in CI (``CI=true``: ``.ci/run`` installs it) and skip elsewhere. One per
    module, not per session: Playwright's sync API keeps an event loop
    running in the main thread while it lives, and later tests that call
    ``asyncio.run`` (firebase-admin's) must not find it."""
    if not os.path.exists(CHROMIUM):
        reason = f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# Every CSP violation of a page, reported to the test through a binding
# (a page's own console cannot be trusted to say it).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation([event.violatedDirective, event.blockedURI || "inline", event.sourceFile || "",
                             event.lineNumber || 0].join(" "));
});
"""


class Site:
    """The app served for the browser, and a page of a fresh browser
    context. ``offsite`` lists every request the page tried to send to
    another host (each is aborted); ``console_errors`` the errors the page
    logged and ``csp_violations`` what the page's CSP blocked: the
    ``site`` fixture fails a test that leaves either non-empty (beyond
    what it declared with ``expect_console_error``)."""

    def __init__(self, base_url, context):
        self.base_url = base_url
        self.allowed = [base_url]
        self.context = context
        self.offsite = []
        self.console_errors = []
        self.csp_violations = []
        self.expected_errors = []
        context.expose_function("reportCspViolation", lambda violation: self.csp_violations.append(violation))
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        self.page = context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        self.page.route("**/*", self._only_this_host)

    def expect_console_error(self, text):
        """Let the page log errors containing ``text`` (a test that provokes one)."""
        self.expected_errors.append(text)

    def unexpected_console_errors(self):
        return [error for error in self.console_errors if not any(text in error for text in self.expected_errors)]

    def allow(self, base_url):
        """Let the page load from ``base_url`` too (a second site of a test)."""
        self.allowed.append(base_url)

    def _only_this_host(self, route):
        url = route.request.url
        if any(url == base or url.startswith(base + "/") for base in self.allowed):
            route.continue_()
        else:
            self.offsite.append(url)
            route.abort("internetdisconnected")

    def url(self, path):
        return self.base_url + path

    def sign_in(self, email, password=PASSWORD):
        page = self.page
        page.goto(self.url("/console/sign-in"))
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

    def screenshot(self, name):
        folder = screenshots_dir()
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.png")
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def site(chromium, serve):
    """``site(app)``: ``app`` served on a free port and a fresh browser
    page pointed at it (at ``host``, 127.0.0.1 unless named); closed after
    the test."""
    opened = []

    def open_site(app, host="127.0.0.1", bypass_csp=False):
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB", bypass_csp=bypass_csp)
        opened.append(Site(serve(app).replace("127.0.0.1", host), context))
        return opened[-1]

    yield open_site
    problems = []
    for opened_site in opened:
        opened_site.context.close()
        problems += [f"console error: {error}" for error in opened_site.unexpected_console_errors()]
        problems += [f"CSP violation: {violation}" for violation in opened_site.csp_violations]
    if problems:
        pytest.fail("the browser reported:\n" + "\n".join(problems))
