"""The ledger is tamper-evident and verifiable after erasure (issue 3, acceptance 5)."""
from datetime import timedelta

import pytest

from consent import ledger
from models.base import db
from models import Consent, LedgerEntry, User
from tests.consent_helpers import new_user, put_consents


@pytest.fixture
def history(client):
    """Two users with a few entries each; returns the middle entry of the first."""
    alice, bob = new_user(client), new_user(client)
    for value in (True, False, True):
        put_consents(client, alice["headers"], location=value, service_push=value)
    put_consents(client, bob["headers"], marketing_push=True)
    entries = list(LedgerEntry.select().where(LedgerEntry.user == alice["user"]["id"]).order_by(LedgerEntry.seq))
    return entries[len(entries) // 2]


def test_untouched_ledger_verifies(runner, history):
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0
    assert "ledger verified: 7 entries in 2 chains" in result.output


TAMPERING = {
    "granted": lambda e: {"granted": not e.granted},
    "permission": lambda e: {"permission": "marketing_push"},
    "policy_version": lambda e: {"policy_version": "0"},
    "source": lambda e: {"source": "admin"},
    "reason": lambda e: {"reason": "withdrawn"},
    "created_at": lambda e: {"created_at": e.created_at - timedelta(days=3)},
    "ip": lambda e: {"ip": "192.0.2.0"},
    "user_agent": lambda e: {"user_agent": "forged"},
    "device_id": lambda e: {"device_id": "0b6b1b7e-3f4a-4f7e-9a59-6f3c5d1f2a10"},
    "prev_hash": lambda e: {"prev_hash": "f" * 64},
    "hash": lambda e: {"hash": "e" * 64},
    "seq": lambda e: {"seq": e.seq + 100},
    "pii_digest": lambda e: {"pii_digest": "d" * 64},
}


@pytest.mark.parametrize("column", sorted(TAMPERING))
def test_editing_any_column_fails_verification_naming_the_entry(runner, history, column):
    LedgerEntry.update(**TAMPERING[column](history)).where(LedgerEntry.id == history.id).execute()
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1
    assert f"entry {history.id} " in result.output


def test_moving_an_entry_to_another_user_fails(runner, history):
    other = User.select().where(User.id != history.user_id).first()
    LedgerEntry.update(user=other.id).where(LedgerEntry.id == history.id).execute()
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1 and f"entry {history.id} " in result.output


def test_deleting_an_entry_fails_at_the_next_one(runner, history):
    following = LedgerEntry.get((LedgerEntry.subject == history.subject) & (LedgerEntry.seq == history.seq + 1))
    db.execute_sql(f"DELETE FROM ledger_entry WHERE id = {history.id}")
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1 and f"entry {following.id} " in result.output


def test_consent_state_that_disagrees_with_the_ledger_fails(runner, history):
    Consent.update(granted=False).where(
        (Consent.user == history.user_id) & (Consent.permission == "location")).execute()
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1 and "location" in result.output


def test_erased_personal_data_still_verifies(runner, history):
    user = User.get_by_id(history.user_id)
    assert ledger.forget_personal_data(user) == 6
    erased = LedgerEntry.get_by_id(history.id)
    assert (erased.user_id, erased.ip, erased.user_agent, erased.device_id, erased.pii_salt) == (None,) * 5
    Consent.delete().where(Consent.user == user).execute()
    User.delete().where(User.id == user.id).execute()
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 0, result.output


def test_personal_data_put_back_on_an_erased_entry_fails(runner, history):
    ledger.forget_personal_data(User.get_by_id(history.user_id))
    LedgerEntry.update(ip="203.0.113.0").where(LedgerEntry.id == history.id).execute()
    Consent.delete().execute()
    result = runner.invoke(args=["verify-ledger"])
    assert result.exit_code == 1 and f"entry {history.id} " in result.output
