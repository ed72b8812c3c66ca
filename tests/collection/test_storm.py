"""A consent-withdrawal storm (issue 7): 50 threads toggle consent and upload
locations for 20 users at once; afterwards no stored location was written
while the ledger says its consent was not in effect, and the ledger verifies."""
import random
import threading
import time

import pytest

from models import LedgerEntry, Location
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, ago, point

THREADS, USERS, SECONDS = 50, 20, 4


def ledger_state_at(entries, moment):
    """The last choice recorded at or before ``moment`` (False if none)."""
    state = False
    for entry in entries:
        if entry.created_at <= moment:
            state = entry.granted
    return state


@pytest.mark.slow
def test_withdrawal_storm_leaves_no_location_written_without_consent(make_app, runner):
    app = make_app(DB_POOL_SIZE=THREADS + 10)
    client = app.test_client()
    people = []
    for _ in range(USERS):
        session = new_user(client)
        put_consents(client, session["headers"], location=True)
        people.append((session, add_device(client, session["headers"])["id"]))

    stop_at = time.monotonic() + SECONDS
    problems, counts = [], {"requests": 0}
    lock = threading.Lock()

    def storm(seed):
        rng = random.Random(seed)
        local = app.test_client()
        while time.monotonic() < stop_at:
            session, device = rng.choice(people)
            action = rng.random()
            if action < 0.3:
                key = rng.choice(["location", "location", "precise_location"])
                response = local.put("/v1/me/consents", json={"consents": {key: rng.random() < 0.5}},
                                     headers=session["headers"])
                ok = (200,)
            elif action < 0.8:
                response = local.post(f"/v1/devices/{device}/locations",
                                      json=point(rng.uniform(-60, 60), rng.uniform(-170, 170),
                                                 captured_at=ago(microseconds=rng.randrange(10**9))),
                                      headers=session["headers"])
                ok = (200, 201, 403)
            else:
                items = [point(rng.uniform(-60, 60), rng.uniform(-170, 170),
                               captured_at=ago(microseconds=rng.randrange(10**9))) for _ in range(3)]
                response = local.post(f"/v1/devices/{device}/locations/batch", json={"locations": items},
                                      headers=session["headers"])
                ok = (200, 403)
            with lock:
                counts["requests"] += 1
                if response.status_code not in ok:
                    problems.append((response.status_code, response.get_data(as_text=True)[:200]))

    threads = [threading.Thread(target=storm, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert counts["requests"] > THREADS

    stored = list(Location.select())
    for location in stored:
        entries = {
            key: list(LedgerEntry.select().where((LedgerEntry.user == location.user_id)
                                                 & (LedgerEntry.permission == key)).order_by(LedgerEntry.seq))
            for key in ("location", "precise_location")
        }
        assert ledger_state_at(entries["location"], location.received_at), "written while location was off"
        later = [e for e in entries["location"] if e.created_at > location.received_at and not e.granted]
        assert later == [], "survived a later withdrawal of location"
        if location.precision == "precise":
            assert ledger_state_at(entries["precise_location"], location.received_at)
            assert not [e for e in entries["precise_location"]
                        if e.created_at > location.received_at and not e.granted], "precise after withdrawal"
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output
    print(f"storm: {counts['requests']} requests, {len(stored)} locations kept")
