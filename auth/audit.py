"""The staff audit log: who did what to which target, when, in which
request. Entries are appended in the caller's transaction and hash-chained
(``core.chain``) like the consent ledger; there is deliberately no function
that updates or deletes one. Details never carry a shopper's personal data
(email, phone, push token, installation id, coordinates): a target names a
user by id only."""
import json
from dataclasses import dataclass

from core.chain import GENESIS, chain_hash
from core.http import current_request_id
from models.audit import AuditEntry
from models.base import db, lock_value, utcnow, write_transaction

ACTIONS = (
    "sign_in", "sign_out",
    "policy.publish",
    "campaign.create", "campaign.update", "campaign.send", "campaign.cancel", "campaign.resume",
    "notification.send",
    "guardian.record", "guardian.revoke",
    "user.view", "user.export", "user.erase",
    "staff.create", "staff.role_change", "staff.remove",
)
# Keys a details dict must not have: the values they name are a shopper's
# personal data, which the audit log keeps out (it names users by id).
PERSONAL_KEYS = frozenset({"email", "phone", "token", "push_token", "installation_id", "latitude", "longitude",
                           "coordinates", "guardian_name", "ip", "user_agent"})


def _details_text(details):
    if details is None:
        return None
    if not isinstance(details, dict):
        raise TypeError("audit details are a dict")
    personal = PERSONAL_KEYS.intersection(details)
    if personal:
        raise ValueError(f"audit details must not carry personal data: {sorted(personal)}")
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def _entry_hash(seq, actor_id, actor_email, actor_role, action, target, details, request_id, created_at, prev_hash):
    return chain_hash({
        "seq": seq,
        "actor_id": str(actor_id) if actor_id else None,
        "actor_email": actor_email,
        "actor_role": actor_role,
        "action": action,
        "target": target,
        "details": details,
        "request_id": request_id,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "prev_hash": prev_hash,
    })


def record(actor, action, target=None, details=None):
    """Append one entry: ``actor`` (a staff User; None for the system) did
    ``action`` (one of ``ACTIONS``) to ``target`` ("user:<id>",
    "campaign:<id>", "policy:<version>", "staff:<id>"). It joins the
    caller's transaction, so the entry is kept exactly when the action is.
    The request id is the current request's, when there is one. Appends
    run one at a time (a PostgreSQL advisory lock until the transaction
    ends; SQLite has one writer)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    text = _details_text(details)
    with db.atomic() if db.in_transaction() else write_transaction():
        lock_value("audit_entry", "append")
        last = AuditEntry.last()
        seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
        actor_id = getattr(actor, "id", None)
        actor_email = getattr(actor, "email", None)
        actor_role = getattr(actor, "role", None)
        request_id = current_request_id()
        created_at = utcnow()
        return AuditEntry.create(
            seq=seq, actor_id=actor_id, actor_email=actor_email, actor_role=actor_role, action=action,
            target=target, details=text, request_id=request_id, created_at=created_at, prev_hash=prev_hash,
            hash=_entry_hash(seq, actor_id, actor_email, actor_role, action, target, text, request_id, created_at,
                             prev_hash),
        )


def _filtered(actor=None, action=None, target=None):
    actor_id = getattr(actor, "id", actor)
    return AuditEntry.matching(actor_id=actor_id, action=action, target=target)


def entries(actor=None, action=None, target=None, before_seq=None, limit=50):
    """Entries newest first, optionally only ``actor``'s (a User or an id),
    one ``action``'s or one ``target``'s, older than ``before_seq``."""
    query = _filtered(actor, action, target)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    return list(query.order_by(AuditEntry.seq.desc()).limit(limit))


def page(actor=None, action=None, target=None, before_seq=None, limit=50):
    """``entries`` and the ``before_seq`` of the next page (None on the last)."""
    rows = entries(actor, action, target, before_seq, limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].seq
    return rows, None


def details_of(entry):
    """An entry's details as a dict (empty when it has none)."""
    return json.loads(entry.details) if entry.details else {}


@dataclass
class AuditReport:
    count: int = 0
    broken_seq: int = None
    failure: str = None

    @property
    def ok(self):
        return self.failure is None


def _problem(entry, expected_seq, expected_prev):
    if entry.seq != expected_seq:
        return f"sequence {entry.seq} where {expected_seq} was expected (an entry is missing or inserted)"
    if entry.prev_hash != expected_prev:
        return "prev_hash does not match the previous entry's hash"
    recomputed = _entry_hash(entry.seq, entry.actor_id, entry.actor_email, entry.actor_role, entry.action,
                             entry.target, entry.details, entry.request_id, entry.created_at, entry.prev_hash)
    if recomputed != entry.hash:
        return "hash does not match the entry's contents"
    return None


def verify():
    """Recompute the chain from the first entry; stop at the first one that does not verify."""
    report = AuditReport()
    expected_seq, expected_prev = 1, GENESIS
    for entry in AuditEntry.select().order_by(AuditEntry.seq).iterator():
        problem = _problem(entry, expected_seq, expected_prev)
        if problem:
            report.broken_seq, report.failure = entry.seq, f"audit entry {entry.seq}: {problem}"
            return report
        report.count += 1
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    return report
