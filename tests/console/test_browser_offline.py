"""With the network unreachable, every console page and /docs load every
asset from the app itself (issue 16): the browser's requests to any other
host are aborted and recorded, and none may be attempted."""
import pytest

from tests.routes import console_routes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = sorted({path for method, rule, path, endpoint, view in console_routes()
                if method == "GET" and "<" not in rule and hasattr(view, "staff_roles")})


def test_every_console_page_and_the_docs_load_every_asset_from_the_app(app, site, staff):
    site = site(app)
    answers = {}
    site.page.on("response", lambda response: answers.setdefault(response.url, response.status))
    failed = []
    # a favicon still loading when the next page opens is cancelled (net::ERR_ABORTED)
    site.page.on("requestfailed", lambda request: request.failure != "net::ERR_ABORTED" and failed.append(request.url))

    site.page.goto(site.url("/console/sign-in"))
    site.sign_in(staff("admin"))
    assert len(PAGES) >= 2
    for path in PAGES + ["/docs"]:
        site.page.goto(site.url(path))
        site.page.wait_for_load_state("networkidle")
        assert site.page.url.startswith(site.url(path)), f"{path} redirected to {site.page.url}"
        site.screenshot("offline" + path.replace("/", "-"))

    assert site.offsite == []
    assert [url for url in failed if url not in site.offsite] == []
    assets = {url: status for url, status in answers.items() if "/static/" in url or "/docs/assets/" in url}
    assert any("/console/static/console.css" in url for url in assets)
    assert any("/docs/assets/" in url for url in assets)
    assert {url: status for url, status in assets.items() if status not in (200, 304)} == {}
