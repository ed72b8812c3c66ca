"""Retention: purge removes exactly the expired rows (issue 4, acceptance 5)."""
from datetime import timedelta

from models import Device, DeviceReport, Location, User
from models.base import utcnow
from tests.consent_helpers import new_user


def make_rows(client):
    session = new_user(client)
    user = User.get_by_id(session["user"]["id"])
    device = Device.create(user=user, installation_id="purge-device-1", platform="ios", app_version="1.0")
    now = utcnow()
    ages = {"loc_old": 90 * 24 * 60 + 1, "loc_edge": 90 * 24 * 60 - 1, "loc_new": 5}
    for name, minutes in ages.items():
        Location.create(device=device, user=user, latitude=1.0, longitude=2.0, geohash="s0000",
                        precision="approximate", captured_at=now - timedelta(minutes=minutes))
    for days in (181, 179):
        DeviceReport.create(device=device, user=user, app_version="1.0", created_at=now - timedelta(days=days))
    return now


def test_purge_removes_exactly_the_expired_rows(client, runner):
    now = make_rows(client)
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "locations: 1" in result.output and "device_reports: 1" in result.output
    remaining = sorted(now - loc.captured_at for loc in Location.select())
    assert [int(age.total_seconds() // 60) for age in remaining] == [5, 90 * 24 * 60 - 1]
    assert [(now - r.created_at).days for r in DeviceReport.select()] == [179]
    again = runner.invoke(args=["purge"])
    assert "locations: 0" in again.output


def test_purge_follows_the_configured_retention(make_app):
    app = make_app(LOCATION_RETENTION_DAYS=1)
    make_rows(app.test_client())
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "locations: 2" in result.output
    assert Location.select().count() == 1


def test_periodic_task_purges(app, client):
    from collection.retention import purge_retention

    make_rows(client)
    counts = purge_retention.call_local()
    assert counts == {"locations": 1, "device_reports": 1, "installations": 0}
