"""The overview in headless Chromium (issue 16): consent per permission,
the ledger chart, a campaign sending now with its progress bar, and the
queue's health."""
import pytest
from playwright.sync_api import expect

from tests.consent_helpers import new_user, put_consents, years_ago
from tests.push_helpers import create_campaign, member, send

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app(make_app):
    """Tasks queue up and no consumer runs: a campaign sent stays sending."""
    return make_app(HUEY_IMMEDIATE=False)


def test_the_overview_shows_consents_the_ledger_and_campaigns_sending_now(app, client, admin, site, staff):
    for _ in range(3):
        member(client, {"marketing_push": True, "location": True, "usage_statistics": True})
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    put_consents(client, minor["headers"], location=True, marketing_push=True)
    campaign = create_campaign(client, admin, name="Weekend offers")
    send(client, admin, campaign)

    site = site(app)
    site.sign_in(staff("privacy"))
    page = site.page
    expect(page.locator('tr[data-permission="location"] td[data-reason="guardian_required"]')).to_have_text("1")
    expect(page.locator('tr[data-permission="marketing_push"] td[data-reason="not_for_minors"]')).to_have_text("1")
    expect(page.locator('tr[data-permission="marketing_push"] td[data-reason="in_effect"]')).to_have_text("3")
    assert page.locator("#ledger-chart svg").count() == 1
    expect(page.locator(f'#sending [data-campaign="{campaign["id"]}"] progress')).to_have_count(1)
    expect(page.locator("#health")).to_contain_text("tasks waiting")
    site.screenshot("overview")
    assert site.offsite == []
