"""k-anonymous statistics (issue 6, acceptance 4)."""
from models import Consent, ConsentSummary, Device, User
from models.base import utcnow
from tests.consent_helpers import new_user


def population(client, model, count, consents, devices_each=1):
    """``count`` users, each with ``devices_each`` devices of ``model`` and ``consents`` granted (written directly)."""
    from models import PolicyVersion

    policy = PolicyVersion.current()
    for n in range(count):
        session = new_user(client)
        uid = session["user"]["id"]
        for d in range(devices_each):
            Device.create(user=uid, installation_id=f"stats-{model}-{n}-{d}-{uid[:8]}", platform="android",
                          app_version="5.0", model=model, os_name="Android")
        for key in consents:
            Consent.create(user=uid, permission=key, granted=True, policy=policy, updated_at=utcnow())
        ConsentSummary.refresh([uid])


def test_small_groups_are_suppressed_and_non_consenting_devices_never_counted(client, admin):
    both = ("usage_statistics", "device_info")
    population(client, "Pixel 9", 11, both)
    population(client, "Rare Phone", 1, both)
    population(client, "Pixel 9", 5, ("device_info",))         # no usage_statistics
    population(client, "Pixel 9", 4, ("usage_statistics",))    # no device_info
    response = client.get("/v1/admin/stats/devices?by=model", headers=admin["headers"])
    assert response.status_code == 200
    assert response.json == {"by": "model", "groups": [{"value": "Pixel 9", "count": 11}], "suppressed": 1}
    by_platform = client.get("/v1/admin/stats/devices?by=platform", headers=admin["headers"]).json
    assert by_platform["groups"] == [{"value": "android", "count": 12}]


def test_a_group_needs_enough_distinct_users_not_devices(client, admin):
    both = ("usage_statistics", "device_info")
    population(client, "Rare Phone", 1, both, devices_each=10)
    population(client, "Pixel 9", 9, both)
    population(client, "Pixel 9", 1, both, devices_each=3)
    body = client.get("/v1/admin/stats/devices?by=model", headers=admin["headers"]).json
    assert body == {"by": "model", "groups": [{"value": "Pixel 9", "count": 12}], "suppressed": 10}


def test_group_threshold_is_configurable(make_app):
    app = make_app(STATS_MIN_GROUP_SIZE=1)
    client = app.test_client()
    from tests.conftest import PASSWORD, AuthActions

    app.test_cli_runner().invoke(args=["create-admin", "s@example.com", "--password", PASSWORD])
    admin = AuthActions(client).login("s@example.com")
    population(client, "Rare Phone", 1, ("usage_statistics", "device_info"))
    body = client.get("/v1/admin/stats/devices?by=model", headers=admin["headers"]).json
    assert body["groups"] == [{"value": "Rare Phone", "count": 1}] and body["suppressed"] == 0


def test_a_minor_without_guardian_consent_is_not_counted(client, admin):
    from tests.consent_helpers import years_ago

    population(client, "Pixel 9", 10, ("usage_statistics", "device_info"))
    one_owner = Device.select(Device.user).order_by(Device.id).limit(1)
    assert User.update(birth_date=years_ago(12)).where(User.id == one_owner).execute() == 1
    body = client.get("/v1/admin/stats/devices?by=model", headers=admin["headers"]).json
    assert body["groups"] == [] and body["suppressed"] == 9


def test_unknown_dimension_is_422(client, admin):
    response = client.get("/v1/admin/stats/devices?by=email", headers=admin["headers"])
    assert response.status_code == 422 and "by" in response.json["error"]["details"]


def test_consent_statistics(client, admin):
    from tests.consent_helpers import put_consents

    a, b = new_user(client), new_user(client)
    put_consents(client, a["headers"], location=True, marketing_push=True)
    put_consents(client, b["headers"], location=True)
    put_consents(client, b["headers"], location=False)
    body = client.get("/v1/admin/stats/consents", headers=admin["headers"]).json
    assert body["users"] == 3  # the admin too
    assert body["permissions"]["location"] == {"granted": 1, "withdrawn": 1, "not_asked": 1}
    assert body["permissions"]["marketing_push"] == {"granted": 1, "withdrawn": 0, "not_asked": 2}
