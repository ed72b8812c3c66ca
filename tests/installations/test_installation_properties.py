"""Property: whatever the order of consent changes of an account and of the
installation on the same phone, of changes of the phone's own location
permission, of reports (locations, device details, a push token) and of
sign-ins that merge the installation into the account, the database never
holds what the holder's consent and the OS did not allow at that moment.
Checked by reading the database after every step.

Each action is one step type: a strategy in ``STEPS`` and a function in
``ACTIONS`` taking the world and the step; a new kind of step adds one of each."""
import itertools
import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collection import geohash as geo
from consent import catalogue, ledger
from models import Device, DeviceReport, Location, PushToken, User
from tests.conftest import PASSWORD, bearer
from tests.consent_helpers import assert_summary_follows_consent, new_user
from tests.device_helpers import FULL_DETAILS, add_device, ago, point
from tests.installation_helpers import merging, new_installation

KEYS = ("location", "precise_location", "device_info", "service_push", "marketing_push")
SUBJECTS = st.sampled_from(["account", "installation"])

STEPS = st.lists(st.one_of(
    st.tuples(st.just("consent"), SUBJECTS, st.dictionaries(st.sampled_from(KEYS), st.booleans(), min_size=1)),
    st.tuples(st.just("location"), SUBJECTS, st.floats(min_value=-89.9, max_value=89.9),
              st.floats(min_value=-179.9, max_value=179.9)),
    st.tuples(st.just("report"), SUBJECTS, st.sampled_from(sorted(FULL_DETAILS))),
    st.tuples(st.just("push_token"), SUBJECTS),
    st.tuples(st.just("os_location"), SUBJECTS, st.sampled_from(["none", "approximate", "precise"])),
    st.tuples(st.just("merge")),
), min_size=1, max_size=12)


class World:
    """The account, the installation on the same phone, and a model of each
    one's choices: {key: (granted, step it was chosen at)}."""

    def __init__(self, client):
        self.client = client
        self.phone = "phone-" + uuid.uuid4().hex[:12]
        self.token = "tok-" + uuid.uuid4().hex + "p" * 40
        self.clock = itertools.count(1)
        self.account = new_user(self.client)
        self.devices = {"account": add_device(self.client, self.account["headers"], installation_id=self.phone)["id"]}
        self.choices = {"account": {}, "installation": {}}
        self.fresh_installation()

    def fresh_installation(self):
        self.installation = new_installation(self.client)
        self.choices["installation"] = {}
        self.devices["installation"] = add_device(self.client, self.installation["headers"],
                                                  installation_id=self.phone)["id"]

    def headers(self, subject):
        return self.account["headers"] if subject == "account" else self.installation["headers"]

    def user_id(self, subject):
        return self.account["user"]["id"] if subject == "account" else self.installation["id"]

    def effective(self, subject, key):
        """What the model says is in effect (an adult, no stale policy)."""
        chosen = self.choices[subject]
        return all(chosen.get(k, (False,))[0] for k in (key, *catalogue.get(key).requires))


def do_consent(world, step):
    _, subject, changes = step
    path = "/v1/me/consents" if subject == "account" else "/v1/installation/consents"
    response = world.client.put(path, json={"consents": changes}, headers=world.headers(subject))
    assert response.status_code == 200, response.json
    at = next(world.clock)
    for key, value in changes.items():
        if world.choices[subject].get(key, (None,))[0] != value:
            world.choices[subject][key] = (value, at)


def do_location(world, step):
    _, subject, lat, lon = step
    device_id = world.devices[subject]
    os_grants = Device.get_by_id(device_id).os_location  # the phone's permission as stored now
    response = world.client.post(f"/v1/devices/{device_id}/locations", headers=world.headers(subject),
                                 json=point(lat, lon, captured_at=ago(seconds=next(world.clock))))
    allowed = world.effective(subject, "location") and os_grants != "none"
    assert response.status_code == (201 if allowed else 403), response.json
    if allowed and (os_grants == "approximate" or not world.effective(subject, "precise_location")):
        stored = Location.get_by_id(response.json["location"]["id"])
        assert stored.precision == "approximate", "stored more precisely than the OS or consent allowed"
        assert (stored.latitude, stored.longitude) == geo.cell_centre(stored.geohash)


def do_os_location(world, step):
    _, subject, value = step
    response = world.client.post(f"/v1/devices/{world.devices[subject]}/reports", headers=world.headers(subject),
                                 json={"app_version": "1.2", "os_permissions": {"location": value}})
    assert response.status_code == 201, response.json
    assert Device.get_by_id(world.devices[subject]).os_location == value


def do_report(world, step):
    _, subject, name = step
    response = world.client.post(f"/v1/devices/{world.devices[subject]}/reports", headers=world.headers(subject),
                                 json={"app_version": "1.2", name: FULL_DETAILS[name]})
    assert response.status_code == 201
    assert (name in response.json["stored"]) == world.effective(subject, "device_info")


def do_push_token(world, step):
    _, subject = step
    response = world.client.put(f"/v1/devices/{world.devices[subject]}/push-token", json={"token": world.token},
                                headers=world.headers(subject))
    allowed = world.effective(subject, "service_push") or world.effective(subject, "marketing_push")
    assert response.status_code == (200 if allowed else 403), response.json


def do_merge(world, step):
    response = world.client.post("/v1/auth/login", headers=merging(world.installation),
                                 json={"email": world.account["user"]["email"], "password": PASSWORD})
    assert response.status_code == 200, response.json
    world.account["headers"] = bearer(response.json["access_token"])
    mine, theirs = world.choices["account"], world.choices["installation"]
    for key, (value, at) in theirs.items():
        if key not in mine or (mine[key][1] < at and mine[key][0] != value):
            mine[key] = (value, next(world.clock))  # newest explicit choice wins
    assert User.get_or_none(User.id == world.installation["id"]) is None
    world.fresh_installation()


ACTIONS = {"consent": do_consent, "location": do_location, "report": do_report, "push_token": do_push_token,
           "os_location": do_os_location, "merge": do_merge}


def check_holder(world, subject):
    user_id = world.user_id(subject)
    rows = list(Location.select().where(Location.user == user_id))
    if not world.effective(subject, "location"):
        assert rows == [], f"a location of the {subject} while location is not in effect"
    if not world.effective(subject, "precise_location"):
        for row in rows:
            assert row.precision == "approximate" and row.accuracy_m is None
            assert (row.latitude, row.longitude) == geo.cell_centre(row.geohash), "precise coordinates kept"
    if not world.effective(subject, "device_info"):
        for holder in list(Device.select().where(Device.user == user_id)) + list(
                DeviceReport.select().where(DeviceReport.user == user_id)):
            assert all(getattr(holder, name) is None for name in FULL_DETAILS), f"details of the {subject} kept"
    if not (world.effective(subject, "service_push") or world.effective(subject, "marketing_push")):
        held = PushToken.select().join(Device).where(Device.user == user_id)
        assert not held.exists(), f"a push token of the {subject} without a push permission"


GRANT_ALL = {key: True for key in KEYS}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
# the sequences a merge can get wrong, always run besides the random ones: the
# account's newer withdrawal over the installation's data, and the reverse
@example(steps=[("consent", "installation", GRANT_ALL), ("location", "installation", 31.2304, 121.4737),
                ("report", "installation", "model"), ("push_token", "installation"),
                ("consent", "account", {key: False for key in KEYS}), ("merge",)])
@example(steps=[("consent", "installation", GRANT_ALL), ("os_location", "installation", "approximate"),
                ("location", "installation", 31.2304, 121.4737), ("os_location", "installation", "none"),
                ("location", "installation", 31.2305, 121.4738), ("merge",), ("os_location", "account", "approximate"),
                ("consent", "account", GRANT_ALL), ("location", "account", 31.2306, 121.4739)])
@example(steps=[("consent", "account", {"location": True, "precise_location": True, "service_push": True}),
                ("location", "account", 31.2304, 121.4737), ("push_token", "account"),
                ("consent", "installation", {"precise_location": False, "service_push": False}), ("merge",),
                ("location", "account", 31.2305, 121.4738)])
def test_no_sequence_of_changes_reports_and_merges_keeps_what_consent_did_not_allow(client, steps):
    world = World(client)
    for step in steps:
        ACTIONS[step[0]](world, step)
        for subject in ("account", "installation"):
            check_holder(world, subject)
        assert_summary_follows_consent()
    assert ledger.verify().ok
