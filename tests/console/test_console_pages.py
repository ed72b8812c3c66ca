"""The overview's and the campaign pages' content through the Flask test
client (issue 16): consent counts as the consent engine decides them,
the ledger's daily series, campaigns created, edited, previewed, sent and
cancelled through the same domain functions as the API."""
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

import consent
from consent import catalogue
from models import Campaign, User
from models.audit import AuditEntry
from rights import stats
from tests.consent_helpers import new_user, put_consents, years_ago
from tests.push_helpers import member


@pytest.fixture
def signed_in(console, staff):
    console.sign_in(staff("admin"))
    return console


@pytest.fixture
def population(client, admin):
    """Users in each state the engine knows: in effect, withdrawn, never
    asked, stale after a policy change, a minor without a guardian, a
    minor refused a permission not for minors."""
    granted = new_user(client)
    put_consents(client, granted["headers"], location=True, marketing_push=True, usage_statistics=True)
    withdrawn = new_user(client)
    put_consents(client, withdrawn["headers"], marketing_push=True)
    put_consents(client, withdrawn["headers"], marketing_push=False)
    new_user(client)  # never asked
    stale = new_user(client)
    put_consents(client, stale["headers"], usage_statistics=True)
    response = client.post("/v1/admin/policies", headers=admin["headers"],
                           json={"version": "2", "text": "Statistics now count more.", "changed_permissions": ["usage_statistics"]})
    assert response.status_code == 201, response.json
    minor = new_user(client, birth_date=years_ago(15).isoformat())
    put_consents(client, minor["headers"], location=True, marketing_push=True)
    return {"granted": granted, "stale": stale, "minor": minor}


def engine_counts(key):
    """What the overview must show for ``key``: the Python form of the
    rules, decided user by user."""
    return Counter(decision.reason or stats.IN_EFFECT for decision in
                   (consent.decide(key, consent.load_subject(user)) for user in User.select()))


def test_consent_effects_count_each_user_by_the_engines_decision(app, population):
    with app.app_context():
        effects = stats.consent_effects()
        for key in catalogue.KEYS:
            assert Counter(effects[key]) == engine_counts(key), key
    assert effects["usage_statistics"]["stale_policy"] == 2  # granted before version 2 changed it
    assert effects["location"]["guardian_required"] == 1
    assert effects["marketing_push"]["not_for_minors"] == 1
    assert effects["marketing_push"]["withdrawn"] == 1
    assert effects["marketing_push"][stats.IN_EFFECT] == 1


def test_the_overview_shows_the_counts_per_permission_and_reason(signed_in, population):
    page = signed_in.get("/console/overview").get_data(as_text=True)
    assert '<tr data-permission="marketing_push">' in page
    row = page.split('<tr data-permission="marketing_push">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-reason="not_for_minors">1</td>' in row
    assert '<td class="num" data-reason="withdrawn">1</td>' in row
    assert '<td class="num" data-reason="in_effect">1</td>' in row
    stale_row = page.split('<tr data-permission="usage_statistics">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-reason="stale_policy">2</td>' in stale_row
    assert "<svg" in page.split('id="ledger-chart"', 1)[1]
    assert "placeholder" in page  # queue health until core.readiness is wired in


def test_the_ledger_series_counts_grants_and_withdrawals_per_day(app, population):
    with app.app_context():
        series = stats.ledger_daily(90)
    assert len(series) == 90
    day, grants, withdrawals = series[-1]
    # granted 3 + withdrawn 1 (1 grant, 1 withdrawal) + stale 1 + minor 2 grants
    assert (grants, withdrawals) == (7, 1)
    assert sum(g + w for _, g, w in series[:-1]) == 0


def _form(**overrides):
    form = {"name": "Spring", "kind": "marketing", "title": "Sale", "body": "20% off", "data": "",
            "models": "", "os_names": "", "carriers": "", "app_version_min": "", "latitude": "", "longitude": "",
            "radius_km": "", "active_within_days": "", "send_at": ""}
    form.update(overrides)
    return form


def test_a_draft_is_created_edited_and_audited_through_the_domain(signed_in, app):
    response = signed_in.post("/console/campaigns/new", _form(models="Pixel 9, Mate 60", platforms="android"))
    assert response.status_code == 303
    campaign = Campaign.get(Campaign.name == "Spring")
    assert campaign.status == "draft" and campaign.audience["models"] == ["Pixel 9", "Mate 60"]
    assert campaign.audience["platforms"] == ["android"]
    edit = signed_in.get(f"/console/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert 'value="Pixel 9, Mate 60"' in edit
    response = signed_in.post(f"/console/campaigns/{campaign.id}/edit",
                              _form(name="Spring 2", latitude="31.2", longitude="121.5", radius_km="10"))
    assert response.status_code == 303
    campaign = Campaign.get_by_id(campaign.id)
    chosen = {name: value for name, value in campaign.audience.items() if value is not None}
    assert campaign.name == "Spring 2" and chosen == {"area": {"latitude": 31.2, "longitude": 121.5, "radius_km": 10.0}}
    actions = [entry.action for entry in AuditEntry.select().order_by(AuditEntry.seq)]
    assert "campaign.create" in actions and "campaign.update" in actions


def test_a_form_the_campaign_schema_refuses_is_shown_again_with_the_fields_named(signed_in):
    response = signed_in.post("/console/campaigns/new", _form(latitude="north", longitude="121", radius_km="5000",
                                                              app_version_min="three"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'data-error="audience.area.latitude"' in page and "Must be a number." in page
    assert 'data-error="audience.area.radius_km"' in page
    assert 'data-error="audience.app_version_min"' in page
    assert Campaign.select().count() == 0


def test_the_preview_counts_as_the_api_preview_does(signed_in, client, admin):
    reached = member(client, {"marketing_push": True, "personalization": True, "device_info": True}, model="Pixel 9")
    member(client, {"marketing_push": True, "personalization": True, "device_info": True}, model="iPhone 15")
    member(client, {}, model="Pixel 9")
    response = signed_in.post("/console/campaigns/preview", _form(models="Pixel 9"),
                              headers={"X-CSRF-TOKEN": signed_in.csrf})
    page = response.get_data(as_text=True)
    assert '<strong id="eligible-count">1</strong>' in page
    created = client.post("/v1/admin/campaigns", headers=admin["headers"], json={
        "name": "n", "kind": "marketing", "title": "t", "body": "b", "audience": {"models": ["Pixel 9"]}}).json
    api = client.get(f"/v1/admin/campaigns/{created['id']}/audience", headers=admin["headers"]).json
    assert api["eligible"] == 1
    for reason, count in api["excluded"].items():
        assert f'<tr data-reason="{reason}"><td>{reason}</td><td class="num">{count}</td></tr>' in page
    assert reached["user_id"]


def test_the_preview_without_the_csrf_token_is_refused(signed_in):
    response = signed_in.post("/console/campaigns/preview", _form(), csrf=False)
    assert response.status_code == 403


def test_send_and_cancel_go_through_the_domain_and_are_audited(signed_in, client):
    member(client, {"marketing_push": True})
    signed_in.post("/console/campaigns/new", _form())
    campaign = Campaign.get(Campaign.name == "Spring")
    response = signed_in.post(f"/console/campaigns/{campaign.id}/send")
    assert response.status_code == 303
    assert Campaign.get_by_id(campaign.id).status == "completed"  # HUEY_IMMEDIATE: sent inline
    page = signed_in.get(f"/console/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'value="100"' in page and '<tr data-outcome="sent">' in page
    again = signed_in.post(f"/console/campaigns/{campaign.id}/cancel")
    assert again.status_code == 409 and b"already completed" in again.data
    in_a_month = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    assert signed_in.post("/console/campaigns/new", _form(name="Later", send_at=in_a_month)).status_code == 303
    later = Campaign.get(Campaign.name == "Later")
    signed_in.post(f"/console/campaigns/{later.id}/send")
    assert Campaign.get_by_id(later.id).status == "scheduled"
    signed_in.post(f"/console/campaigns/{later.id}/cancel")
    assert Campaign.get_by_id(later.id).status == "cancelled"
    actions = [entry.action for entry in AuditEntry.select().order_by(AuditEntry.seq)]
    assert actions.count("campaign.send") == 2 and actions.count("campaign.cancel") == 1


def test_the_list_filters_by_status_and_kind_and_includes_one_user_notifications(signed_in, client, admin):
    person = member(client, {})
    client.post("/v1/notifications", headers=admin["headers"], json={"user_id": person["user_id"], "title": "t", "body": "b"})
    signed_in.post("/console/campaigns/new", _form(name="Draft one"))
    page = signed_in.get("/console/campaigns").get_data(as_text=True)
    assert "Draft one" in page and "one user" in page
    drafts = signed_in.get("/console/campaigns?status=draft").get_data(as_text=True)
    assert "Draft one" in drafts and '<tr data-status="completed">' not in drafts
    service = signed_in.get("/console/campaigns?kind=service").get_data(as_text=True)
    assert "Draft one" not in service


def test_the_list_pages_by_25(signed_in, app, staff):
    with app.app_context():
        author = User.get(User.role == "admin")
        from push import campaigns

        for i in range(30):
            campaigns.create({"name": f"c{i:02d}", "kind": "service", "title": "t", "body": "b"}, author)
    first = signed_in.get("/console/campaigns").get_data(as_text=True)
    second = signed_in.get("/console/campaigns?page=2").get_data(as_text=True)
    assert first.count('<tr data-status="draft">') == 25 and second.count('<tr data-status="draft">') == 5
    assert "page=2" in first and "Older" not in second


def test_a_paused_campaign_is_resumed_from_its_page(signed_in, client):
    member(client, {"marketing_push": True})
    signed_in.post("/console/campaigns/new", _form())
    campaign = Campaign.get(Campaign.name == "Spring")
    # what the sender does when the provider's credentials are refused
    Campaign.update(status=Campaign.PAUSED, paused_reason="third_party_auth").where(Campaign.id == campaign.id).execute()
    page = signed_in.get(f"/console/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Paused: third_party_auth" in page and "/resume" in page
    assert signed_in.post(f"/console/campaigns/{campaign.id}/resume").status_code == 303
    assert Campaign.get_by_id(campaign.id).status == "completed"
    assert "campaign.resume" in [entry.action for entry in AuditEntry.select()]
