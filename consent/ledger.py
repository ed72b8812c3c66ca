"""The tamper-evident consent ledger: append and verify, nothing else. There
is deliberately no function that updates or deletes an entry; erasure only
blanks the unhashed personal columns (``forget_personal_data``)."""
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

import click
from flask.cli import with_appcontext
from peewee import JOIN

from auth import audit
from core.chain import GENESIS, chain_hash
from core.addresses import truncate_ip
from models.account import User
from models.base import db, utcnow
from models.consent import Consent, LedgerEntry

PERSONAL_COLUMNS = ("device_id", "ip", "user_agent", "pii_salt")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")  # a User-Agent is client text: NUL breaks PostgreSQL


@dataclass(frozen=True)
class ChangeContext:
    """Where a change came from: recorded with every ledger entry."""

    source: str
    device_id: str = None
    ip: str = None
    user_agent: str = None


def _personal_digest(salt, device_id, ip, user_agent):
    material = json.dumps([salt, str(device_id) if device_id else None, ip, user_agent])
    return hashlib.sha256(material.encode()).hexdigest()


def _entry_hash(subject, seq, permission, granted, policy_version, source, reason, created_at, pii_digest,
                prev_hash, adopted_from=None):
    adopted = {} if adopted_from is None else {"adopted_from": adopted_from}  # entries before merges hash as they did
    return chain_hash({
        **adopted,
        "reason": reason,
        "subject": str(subject),
        "seq": seq,
        "permission": permission,
        "granted": bool(granted),
        "policy_version": policy_version,
        "source": source,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "pii_digest": pii_digest,
        "prev_hash": prev_hash,
    })


def append(user, permission, granted, policy_version, context, reason=None, adopted_from=None):
    """Append one entry to the user's chain. The caller holds the user's
    write lock (see ``consent.lock_user``) inside a transaction.
    ``adopted_from``: the hash of the installation's entry a merge adopts."""
    last = (
        LedgerEntry.select(LedgerEntry.seq, LedgerEntry.hash)
        .where(LedgerEntry.subject == user.ledger_subject)
        .order_by(LedgerEntry.seq.desc())
        .first()
    )
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
    created_at = utcnow()
    salt = secrets.token_hex(16)
    ip = truncate_ip(context.ip)
    user_agent = CONTROL_CHARACTERS.sub("", context.user_agent or "")[:256] or None
    digest = _personal_digest(salt, context.device_id, ip, user_agent)
    return LedgerEntry.create(
        subject=user.ledger_subject,
        seq=seq,
        user=user,
        permission=permission,
        granted=granted,
        policy_version=policy_version,
        source=context.source,
        reason=reason,
        device_id=context.device_id,
        ip=ip,
        user_agent=user_agent,
        pii_salt=salt,
        pii_digest=digest,
        adopted_from=adopted_from,
        created_at=created_at,
        prev_hash=prev_hash,
        hash=_entry_hash(user.ledger_subject, seq, permission, granted, policy_version, context.source, reason,
                         created_at, digest, prev_hash, adopted_from),
    )


def forget_personal_data(user):
    """Erasure: detach the user's entries from them and blank the personal
    columns. The hashed fields stay, so every chain still verifies."""
    return (
        LedgerEntry.update(user=None, device_id=None, ip=None, user_agent=None, pii_salt=None)
        .where(LedgerEntry.user == user)
        .execute()
    )


@dataclass
class VerifyReport:
    entries: int = 0
    subjects: int = 0
    failure: str = None
    failed_entry: int = None

    @property
    def ok(self):
        return self.failure is None


def _check(entry, expected_seq, expected_prev):
    if entry.seq != expected_seq:
        return f"sequence {entry.seq} where {expected_seq} was expected (an entry is missing or inserted)"
    if entry.prev_hash != expected_prev:
        return "prev_hash does not match the previous entry's hash"
    recomputed = _entry_hash(entry.subject, entry.seq, entry.permission, entry.granted, entry.policy_version,
                             entry.source, entry.reason, entry.created_at, entry.pii_digest, entry.prev_hash,
                             entry.adopted_from)
    if recomputed != entry.hash:
        return "hash does not match the entry's contents"
    if entry.pii_salt is not None:
        if _personal_digest(entry.pii_salt, entry.device_id, entry.ip, entry.user_agent) != entry.pii_digest:
            return "device, IP or user agent was changed"
    elif any(getattr(entry, column) is not None for column in ("device_id", "ip", "user_agent")):
        return "personal columns are set on an erased entry"
    if entry.user_id is not None and entry.owner_subject != entry.subject:
        return "entry is attached to a user whose ledger subject differs"
    return None


def _entries_with_owner():
    return (
        LedgerEntry.select(LedgerEntry, User.ledger_subject.alias("owner_subject"))
        .join(User, JOIN.LEFT_OUTER, on=(LedgerEntry.user == User.id))
    )


def _walk(entries, report):
    """Check ``entries`` (ordered by subject, then insertion) into ``report``;
    stop at the first entry that does not verify."""
    subject, expected_seq, expected_prev = None, 1, GENESIS
    for entry in entries:
        if entry.subject != subject:
            subject, expected_seq, expected_prev = entry.subject, 1, GENESIS
            report.subjects += 1
        problem = _check(entry, expected_seq, expected_prev)
        if problem:
            report.failure = f"entry {entry.id} (subject {entry.subject}, seq {entry.seq}): {problem}"
            report.failed_entry = entry.id
            return report
        report.entries += 1
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    return report


def verify():
    """Recompute every chain; stop at the first entry that does not verify."""
    # insertion order, so that an edited seq is caught at the edited entry
    query = _entries_with_owner().order_by(LedgerEntry.subject, LedgerEntry.id).objects()
    report = _walk(query.iterator(), VerifyReport())
    if report.ok:
        report.failure = _state_mismatch()
    return report


def verify_user(user):
    """Recompute one user's chain, and check that the user's consent table
    says what the chain's last entries say."""
    query = (_entries_with_owner().where(LedgerEntry.subject == user.ledger_subject)
             .order_by(LedgerEntry.id).objects())
    report = _walk(query.iterator(), VerifyReport())
    if report.ok:
        report.failure = _state_mismatch(Consent.user == user.id)
    return report


def _state_mismatch(where=None):
    """The consent table must say what each chain's last entry says."""
    last = (
        LedgerEntry.select(LedgerEntry.granted)
        .where((LedgerEntry.user == Consent.user) & (LedgerEntry.permission == Consent.permission))
        .order_by(LedgerEntry.seq.desc())
        .limit(1)
    )
    query = Consent.select(Consent.user, Consent.permission, Consent.granted, last.alias("ledger_granted"))
    if where is not None:
        query = query.where(where)
    for row in query.objects().iterator():
        if row.ledger_granted is None or bool(row.ledger_granted) != bool(row.granted):
            return (f"consent state of user {row.user_id} for {row.permission} is {bool(row.granted)} "
                    f"but the ledger's last entry says {row.ledger_granted}")
    return None


@click.command("verify-ledger")
@with_appcontext
def verify_ledger_command():
    """Recompute every consent-ledger chain and the staff audit log's chain;
    exit 1 naming the first entry that does not verify."""
    with db.connection_context():
        report = verify()
        audit_report = audit.verify()
    if report.ok:
        click.echo(f"ledger verified: {report.entries} entries in {report.subjects} chains")
    else:
        click.echo(f"ledger does NOT verify: {report.failure}", err=True)
    if audit_report.ok:
        click.echo(f"audit log verified: {audit_report.count} entries")
    else:
        click.echo(f"audit log does NOT verify: {audit_report.failure}", err=True)
    if not (report.ok and audit_report.ok):
        raise SystemExit(1)
