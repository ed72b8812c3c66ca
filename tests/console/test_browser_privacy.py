"""The privacy side of the console in a real browser (issue 16): find a
user by email and read the ledger, record a guardian's consent and see the
minor's consents change, publish a policy, and a campaigns user refused a
user's record. Each page is written as a screenshot."""
import pytest

from models import PolicyVersion, User
from tests.consent_helpers import new_user, put_consents, years_ago
from tests.rights.test_stats import population

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def reason(page, key):
    return page.locator(f'#consents tr[data-permission="{key}"] td.reason').inner_text()


def test_find_a_user_by_email_and_read_the_ledger(app, client, site, staff):
    person = new_user(client)
    put_consents(client, person["headers"], personalization=True, usage_statistics=True)
    put_consents(client, person["headers"], personalization=False)
    site = site(app)
    site.sign_in(staff("privacy"))
    page = site.page
    page.click("nav >> text=Users")
    page.select_option("select[name=by]", "email")
    page.fill("input[name=q]", person["user"]["email"].upper())
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state()
    site.screenshot("users-search")
    page.click(f"#found >> text={person['user']['email']}")
    page.wait_for_load_state()
    assert page.locator("#chain-status").inner_text() == "verified"
    rows = page.locator("#ledger tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("td").nth(2).inner_text() == "personalization"  # newest first
    assert rows.nth(0).locator("td").nth(3).inner_text() == "withdrawn"
    assert reason(page, "personalization") == "withdrawn"
    site.screenshot("user-record")
    assert site.offsite == []


def test_record_a_guardian_consent_and_see_the_minors_consents_change(app, client, site, staff):
    minor = new_user(client, birth_date=years_ago(14).isoformat())
    put_consents(client, minor["headers"], location=True, usage_statistics=True)
    site = site(app)
    site.sign_in(staff("privacy"))
    page = site.page
    page.goto(site.url("/console/users"))
    assert minor["user"]["email"] in page.locator("#minors").inner_text()
    page.click(f"#minors >> text={minor['user']['email']}")
    page.wait_for_load_state()
    assert reason(page, "location") == "guardian_required"
    page.fill("#guardian-form input[name=guardian_name]", "Parent P")
    page.fill("#guardian-form input[name=relationship]", "mother")
    page.fill("#guardian-form input[name=evidence_ref]", "form-2026-0042")
    page.click("#guardian-form button[type=submit]")
    page.wait_for_load_state()
    assert reason(page, "location") == ""
    assert reason(page, "usage_statistics") == ""
    assert "form-2026-0042" in page.locator("#guardians").inner_text()
    site.screenshot("user-guardian-recorded")
    page.goto(site.url("/console/users"))
    assert minor["user"]["email"] not in page.locator("main").inner_text()


def test_publish_a_policy(app, site, staff):
    site = site(app)
    site.sign_in(staff("privacy"))
    page = site.page
    page.click("nav >> text=Policies")
    page.fill("input[name=version]", "2026-12")
    page.fill("textarea[name=text]", "What changed, in plain words.")
    page.check("input[name=changed_permissions][value=location]")
    page.click("#publish-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator('#policies tr[data-version="2026-12"] td.changed').inner_text() == "location"
    site.screenshot("policies")
    with app.app_context():
        assert PolicyVersion.get(PolicyVersion.version == "2026-12").changed_permissions() == ["location"]


def test_a_campaigns_user_gets_403_on_a_users_record(app, client, site, staff):
    person = new_user(client)
    site = site(app)
    site.sign_in(staff("campaigns"))
    site.expect_console_error("status of 403")
    response = site.page.goto(site.url(f"/console/users/{person['user']['id']}"))
    assert response.status == 403
    assert "for staff with the role admin or privacy" in site.page.locator("[role=alert]").inner_text()
    assert site.page.locator("nav >> text=Users").count() == 0
    site.screenshot("user-record-refused")


def test_statistics_and_staff_pages(app, client, site, staff):
    population(client, "Crowd Phone", 10, ("usage_statistics", "device_info"))
    site = site(app)
    admin_email = staff("admin")
    campaigner = staff("campaigns")
    site.sign_in(admin_email)
    page = site.page
    page.click("nav >> text=Statistics")
    page.wait_for_load_state()
    assert page.locator("#devices-model svg").count() == 1
    site.screenshot("statistics")
    page.click("nav >> text=Staff & audit")
    page.wait_for_load_state()
    row = page.locator(f'#staff tr[data-email="{campaigner}"]')
    row.locator("select[name=role]").select_option("privacy")
    row.locator("button:has-text('Change')").click()
    page.wait_for_load_state()
    assert page.locator(f'#staff tr[data-email="{campaigner}"] td.role').inner_text() == "privacy"
    page.select_option("#audit-filters select[name=action]", "staff.role_change")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#audit td.action").all_inner_texts() == ["staff.role_change"]
    site.screenshot("staff-audit")
    with app.app_context():
        assert User.by_email(campaigner).role == "privacy"
    assert site.offsite == []
