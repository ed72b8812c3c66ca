"""With the network unreachable, every console page and /docs load every
asset from the app itself (issue 16): the browser's requests to any other
host are aborted and recorded, and none may be attempted. The browser
ignores the console's CSP here (``bypass_csp``): enforced, it would block
an off-host reference before any request, and the test would see none."""
import pytest

from tests.push_helpers import create_campaign
from tests.routes import console_routes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = sorted({rule for method, rule, path, endpoint, view in console_routes()
                if method == "GET" and hasattr(view, "staff_roles") and not endpoint.endswith(("_progress", "_sending", "export_user", "session_alive"))})  # a download, a fragment, the script's session check: not pages


def fill(rule, world):
    """``rule`` with its parameters replaced by the ids of ``world``'s rows."""
    for name, value in world.items():
        rule = rule.replace(name, value)
    assert "<" not in rule, f"no sample for a parameter of {rule}: add one to the test's world"
    return rule


def test_every_console_page_and_the_docs_load_every_asset_from_the_app(app, client, admin, site, staff):
    draft = create_campaign(client, admin, name="Draft")
    person = client.post("/v1/auth/register", json={"email": "offline-person@example.com",
                                                    "password": "correct horse battery"}).json["user"]
    world = {"<uuid:campaign_id>": draft["id"], "<uuid:user_id>": person["id"]}
    site = site(app, bypass_csp=True)
    answers = {}
    site.page.on("response", lambda response: answers.setdefault(response.url, response.status))
    failed = []
    # a favicon still loading when the next page opens is cancelled (net::ERR_ABORTED)
    site.page.on("requestfailed", lambda request: request.failure != "net::ERR_ABORTED" and failed.append(request.url))

    site.page.goto(site.url("/console/sign-in"))
    site.sign_in(staff("admin"))
    assert len(PAGES) >= 2
    for path in [fill(rule, world) for rule in PAGES] + ["/docs"]:
        site.page.goto(site.url(path))
        site.page.wait_for_load_state("networkidle")
        assert site.page.url.startswith(site.url(path)), f"{path} redirected to {site.page.url}"
        site.screenshot("page" + path.replace("/", "-").replace(draft["id"], "id").replace(person["id"], "id"))

    assert site.offsite == []
    assert [url for url in failed if url not in site.offsite] == []
    assets = {url: status for url, status in answers.items() if "/static/" in url or "/docs/assets/" in url}
    assert any("/console/static/console.css" in url for url in assets)
    assert any("/docs/assets/" in url for url in assets)
    assert {url: status for url, status in assets.items() if status not in (200, 304)} == {}
