"""The staff audit log (issue 16, "Audit log"): append-only, hash-chained
like the consent ledger and verified by ``verify-ledger``."""
import json
import threading

import peewee
import pytest

from auth import audit
from models import AuditEntry, User, db, is_postgres


def lift_append_only_guard():
    """What someone with the database's owner rights can do before editing rows."""
    if is_postgres():
        db.execute_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    else:
        db.execute_sql("DROP TRIGGER audit_entry_no_update")
        db.execute_sql("DROP TRIGGER audit_entry_no_delete")


@pytest.fixture
def staff(app):
    """An administrator made without the audited paths, so the log starts empty."""
    return User.create(email="Ops@example.com", email_normalized="ops@example.com", password_hash="x", role="admin")


@pytest.fixture
def log(app, staff):
    """Five entries by one administrator."""
    for n in range(5):
        audit.record(staff, "campaign.create", f"campaign:{n}", {"n": n})
    return staff


def test_entries_chain_from_genesis_and_name_the_actor_at_the_time(log):
    rows = list(AuditEntry.select().order_by(AuditEntry.seq))
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(rows, rows[1:]))
    assert {(str(row.actor_id), row.actor_email, row.actor_role) for row in rows} == {
        (str(log.id), log.email, "admin")}
    assert json.loads(rows[2].details) == {"n": 2}


def test_untouched_log_verifies(runner, log):
    report = audit.verify()
    assert report.ok and report.count == 5 and report.broken_seq is None
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output
    assert "audit log verified: 5 entries" in result.output


def test_the_system_is_an_actor_without_a_person(app):
    entry = audit.record(None, "policy.publish", "policy:2")
    assert (entry.actor_id, entry.actor_email, entry.actor_role) == (None, None, None)
    assert audit.verify().ok


def test_an_entry_made_after_a_request_carries_no_request_id(client, staff):
    assert client.get("/healthz", headers={"X-Request-ID": "req-earlier-0001"}).status_code == 200
    assert audit.record(staff, "user.view", "user:1").request_id is None


def test_an_unknown_action_or_personal_details_are_refused(app, staff):
    with pytest.raises(ValueError):
        audit.record(staff, "user.peek", "user:1")
    with pytest.raises(ValueError):
        audit.record(staff, "user.view", "user:1", {"email": "someone@example.com"})
    assert AuditEntry.select().count() == 0


def test_the_database_refuses_to_update_or_delete_an_entry(log):
    for statement in ("UPDATE audit_entry SET action = 'sign_in' WHERE seq = 2", "DELETE FROM audit_entry"):
        with pytest.raises(peewee.DatabaseError), db.atomic():
            db.execute_sql(statement)
    assert AuditEntry.select().count() == 5
    assert audit.verify().ok


TAMPERING = {
    "actor_email": "UPDATE audit_entry SET actor_email = 'someone-else@example.com' WHERE seq = 3",
    "actor_role": "UPDATE audit_entry SET actor_role = 'privacy' WHERE seq = 3",
    "action": "UPDATE audit_entry SET action = 'campaign.cancel' WHERE seq = 3",
    "target": "UPDATE audit_entry SET target = 'campaign:9' WHERE seq = 3",
    "details": "UPDATE audit_entry SET details = '{\"n\":7}' WHERE seq = 3",
    "request_id": "UPDATE audit_entry SET request_id = 'forged-request' WHERE seq = 3",
    "hash": "UPDATE audit_entry SET hash = 'e' WHERE seq = 3",
    "prev_hash": "UPDATE audit_entry SET prev_hash = 'f' WHERE seq = 3",
    "deleted": "DELETE FROM audit_entry WHERE seq = 2",
}


@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_tampering_fails_verification_naming_the_first_broken_entry(runner, log, change):
    lift_append_only_guard()
    db.execute_sql(TAMPERING[change])
    report = audit.verify()
    # entry 3 itself, or for the deleted entry 2 the one after it
    assert not report.ok and report.broken_seq == 3 and report.count == (1 if change == "deleted" else 2)
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1
    assert "audit log does NOT verify: audit entry 3:" in result.output


def test_entries_filter_newest_first_and_page(app, staff):
    other = User.create(email="p@example.com", email_normalized="p@example.com", password_hash="x", role="privacy")
    audit.record(staff, "campaign.create", "campaign:a")
    audit.record(other, "user.view", "user:u1")
    audit.record(staff, "campaign.send", "campaign:a")
    audit.record(other, "user.view", "user:u2")
    assert [e.seq for e in audit.entries()] == [4, 3, 2, 1]
    assert [e.seq for e in audit.entries(actor=other)] == [4, 2]
    assert [e.seq for e in audit.entries(actor=staff.id, action="campaign.send")] == [3]
    assert [e.seq for e in audit.entries(target="campaign:a")] == [3, 1]
    assert [e.seq for e in audit.entries(before_seq=3, limit=1)] == [2]
    rows, following = audit.page(limit=3)
    assert [e.seq for e in rows] == [4, 3, 2] and following == 2
    rows, following = audit.page(before_seq=following, limit=3)
    assert [e.seq for e in rows] == [1] and following is None


@pytest.mark.postgres
def test_concurrent_appends_on_two_connections_keep_one_chain(app, staff):
    """Threads each on a connection of their own (peewee's pool gives one per
    thread), appending inside their own transactions at once."""
    start = threading.Barrier(8)
    errors = []

    def append_many(n):
        try:
            start.wait()
            for i in range(10):
                with db.atomic():
                    audit.record(staff, "user.view", f"user:{n}-{i}")
        except Exception as error:  # reported below, a thread cannot fail the test
            errors.append(error)
        finally:
            db.close()

    threads = [threading.Thread(target=append_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [row.seq for row in AuditEntry.select(AuditEntry.seq).order_by(AuditEntry.seq)] == list(range(1, 81))
    report = audit.verify()
    assert report.ok and report.count == 80
