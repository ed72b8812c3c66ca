"""A campaign built, previewed, sent and read back in the console, in
headless Chromium (issue 16): the audience builder with a model and an
area filter shows the preview's count and reasons as the filters change;
sent, the campaign's progress bar reaches 100 % while a real
``huey_consumer`` delivers through the FCM SDK to the fake FCM server; its
results name the same reasons as the preview."""
import pytest
from playwright.sync_api import expect

from models import Campaign, Delivery
from tests.device_helpers import point
from tests.push_helpers import fcm_config, member, start_consumer, stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHANGHAI = {"latitude": 31.230416, "longitude": 121.473701}
BEIJING = {"latitude": 39.9042, "longitude": 116.4074}
TARGETED = {"marketing_push": True, "personalization": True, "device_info": True, "location": True}


@pytest.fixture
def app(make_app, fcm_server, tmp_path):
    """The app with its fan-out on the queue: a consumer process sends."""
    return make_app(HUEY_IMMEDIATE=False, PUSH_SLICE_SIZE=2, **fcm_config(fcm_server, tmp_path))


@pytest.fixture
def consumer(app, tmp_path):
    process = start_consumer(app, tmp_path / "consumer.log")
    yield process
    stop(process)


def located_member(client, consents, model, where):
    person = member(client, consents, model=model)
    response = client.post(f"/v1/devices/{person['device']['id']}/locations", json=point(**where),
                           headers=person["session"]["headers"])
    assert response.status_code == 201, response.json
    return person


@pytest.fixture
def audience(client):
    """Three devices the campaign reaches, one of another model, one far
    away, one whose user never allowed marketing pushes."""
    reached = [located_member(client, TARGETED, "Pixel 9", SHANGHAI) for _ in range(3)]
    other_model = located_member(client, TARGETED, "iPhone 15", SHANGHAI)
    far = located_member(client, TARGETED, "Pixel 9", BEIJING)
    no_marketing = located_member(client, {k: v for k, v in TARGETED.items() if k != "marketing_push"},
                                  "Pixel 9", SHANGHAI)
    return {"reached": reached, "other_model": other_model, "far": far, "no_marketing": no_marketing}


EXPECTED_REASONS = {"filter:models": 1, "filter:area": 1, "marketing_push:not_asked": 1}


def reasons_shown(page, scope):
    rows = page.locator(f"{scope} table.reasons tr")
    return {rows.nth(i).get_attribute("data-reason"): int(rows.nth(i).locator("td.num").inner_text())
            for i in range(rows.count())}


def test_build_preview_send_and_read_a_campaign(app, site, staff, audience, consumer, fcm_server, tmp_path):
    site = site(app)
    page = site.page
    site.sign_in(staff("campaigns"))
    page.click("nav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("input[name=name]", "Pixel owners in Shanghai")
    page.select_option("select[name=kind]", "marketing")
    page.fill("input[name=title]", "Spring sale")
    page.fill("textarea[name=body]", "20% off for your Pixel")

    page.fill("input[name=models]", "Pixel 9")
    page.wait_for_selector("#eligible-count")
    assert page.inner_text("#eligible-count") == "4"  # the Beijing device is still in
    page.fill("input[name=latitude]", str(SHANGHAI["latitude"]))
    page.fill("input[name=longitude]", str(SHANGHAI["longitude"]))
    page.fill("input[name=radius_km]", "25")
    expect(page.locator("#eligible-count")).to_have_text("3")
    assert reasons_shown(page, "#preview") == EXPECTED_REASONS
    assert page.locator("#preview .chart svg").count() == 1
    site.screenshot("campaign-builder")

    page.click("text=Save draft")
    page.wait_for_selector("#send")
    campaign = Campaign.get(Campaign.name == "Pixel owners in Shanghai")
    assert campaign.status == "draft"
    assert campaign.audience["models"] == ["Pixel 9"] and campaign.audience["area"]["radius_km"] == 25
    assert reasons_shown(page, "#preview") == EXPECTED_REASONS

    page.click("#send")
    page.wait_for_selector("#live .percent")
    expect(page.locator("#live .percent")).to_have_text("100 %", timeout=90_000)
    assert page.get_attribute("#live progress", "value") == "100"
    page.wait_for_selector("#results")
    outcomes = page.locator("#results table.outcomes tr")
    shown = {outcomes.nth(i).get_attribute("data-outcome"): int(outcomes.nth(i).locator("td.num").inner_text())
             for i in range(outcomes.count())}
    assert shown == {"sent": 3, "excluded": 3}
    assert reasons_shown(page, "#results") == EXPECTED_REASONS
    site.screenshot("campaign-results")

    assert Campaign.get_by_id(campaign.id).status == "completed"
    sent_to = {str(d.user_id) for d in Delivery.select().where(
        (Delivery.campaign == campaign.id) & (Delivery.status == Delivery.SENT))}
    assert sent_to == {person["user_id"] for person in audience["reached"]}
    assert sorted(fcm_server.delivered) == sorted(person["token"] for person in audience["reached"])
    assert site.offsite == []
