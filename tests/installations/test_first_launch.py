"""The first launch end to end: an installation gives consent on the first
screen, reports a device and a location, holds a push token, receives a
marketing push as an anonymous installation, then registers; its data and
choices are the account's, read from the database, and both ledgers verify."""
import pytest

from consent import ledger
from models import Consent, Device, Location, PushToken, User
from models.consent import LedgerEntry
from models.push import Delivery
from tests.conftest import PASSWORD
from tests.device_helpers import add_device, point
from tests.installation_helpers import merging, new_installation, put_installation_consents
from tests.push_helpers import create_campaign, send


@pytest.fixture
def app(push_app):
    return push_app


def test_first_launch_to_registration(push_app, fcm_server, admin, runner):
    client = push_app.test_client()
    installation = new_installation(client)
    # nothing but the installation row exists before consent
    row = User.get_by_id(installation["id"])
    assert (row.kind, row.email, row.password_hash) == ("installation", None, None)
    assert not Device.select().where(Device.user == row.id).exists()

    answered = put_installation_consents(client, installation, device_info=True, location=True,
                                         precise_location=False, service_push=True, marketing_push=True)
    assert answered["consents"]["marketing_push"]["effective"] is True and len(answered["receipts"]) == 5
    receipt = client.get(f"/v1/installation/consent-receipts/{answered['receipts'][0]}",
                         headers=installation["headers"])
    assert receipt.status_code == 200 and receipt.json["jws"]

    device = add_device(client, installation["headers"], installation_id=installation["installation_id"])
    stored = client.post(f"/v1/devices/{device['id']}/locations", headers=installation["headers"],
                         json=point(latitude=31.230416, longitude=121.473701, accuracy_m=5))
    assert stored.status_code == 201, stored.json
    token = "inst-push-" + "q" * 80
    assert client.put(f"/v1/devices/{device['id']}/push-token", json={"token": token},
                      headers=installation["headers"]).status_code == 200
    # the granted precision: approximate only, so the stored point is its geohash-5 cell's centre
    [location] = Location.select().where(Location.user == installation["id"])
    assert location.precision == "approximate" and location.accuracy_m is None
    assert (location.latitude, location.longitude) != (31.230416, 121.473701)
    assert Device.get_by_id(device["id"]).model == "Pixel 9"  # device_info granted

    # an accounts-only campaign (the default) does not reach the installation; the installations one does
    accounts_only = create_campaign(client, admin, name="accounts")
    preview = client.get(f"/v1/admin/campaigns/{accounts_only['id']}/audience", headers=admin["headers"]).json
    assert preview["eligible"] == 0 and preview["excluded"].get("filter:subjects") == 1
    anonymous = create_campaign(client, admin, name="anonymous", audience={"subjects": "installations"})
    send(client, admin, anonymous)
    assert fcm_server.delivered[token] == 1
    assert Delivery.get(Delivery.campaign == anonymous["id"]).status == "sent"

    # registration from the installation
    response = client.post("/v1/auth/register", headers=merging(installation),
                           json={"email": "first-launch@example.com", "password": PASSWORD})
    assert response.status_code == 201, response.json
    account_id = response.json["user"]["id"]
    account = {"Authorization": f"Bearer {response.json['access_token']}"}

    # the data is the account's, read from the database; the installation is gone
    assert User.get_or_none(User.id == installation["id"]) is None
    assert Device.get_by_id(device["id"]).user_id == User.get_by_id(account_id).id
    assert [str(row.user_id) for row in Location.select()] == [account_id]
    assert PushToken.get(PushToken.token == token).device_id == Device.get_by_id(device["id"]).id
    assert str(Delivery.get(Delivery.campaign == anonymous["id"]).user_id) == account_id
    choices = {row.permission: row.granted for row in Consent.select().where(Consent.user == account_id)}
    assert choices == {"device_info": True, "location": True, "precise_location": False, "service_push": True,
                       "marketing_push": True}
    assert not Consent.select().where(Consent.user == installation["id"]).exists()

    # both ledgers verify; the merge is in the account's history with source installation
    assert ledger.verify().ok
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output
    history = client.get("/v1/me/consents/history", headers=account).json["items"]
    adopted = {entry["permission"]: entry for entry in history if entry["source"] == "installation"}
    assert set(adopted) == set(choices)
    installation_entries = {entry.hash: entry for entry in LedgerEntry.select().where(LedgerEntry.user.is_null())}
    for key, entry in adopted.items():
        assert installation_entries[entry["adopted_from"]].permission == key
    some = adopted["marketing_push"]
    receipt = client.get(f"/v1/me/consent-receipts/{some['hash']}", headers=account).json["receipt"]
    assert receipt["ledgerEntry"]["adoptedFrom"] == some["adopted_from"]
    assert receipt["ledgerEntry"]["source"] == "installation"
    merged = [entry for entry in installation_entries.values() if entry.permission == "merged"]
    assert len(merged) == 1 and merged[0].ip is None  # the chain records the merge, detached
    # the installation's token is closed
    assert client.get("/v1/installation/consents", headers=installation["headers"]).status_code == 401
    # and the account's devices are now served to the account
    assert [d["id"] for d in client.get("/v1/devices", headers=account).json["devices"]] == [device["id"]]
