"""What staff answering a privacy request find and do (policy §5, §7):
find a user, read the user's consent record and ledger with the chain's
verification status, list the minors waiting for a guardian's consent, and
export or erase on the user's request."""
import consent
from auth import audit
from consent import ledger
from core.errors import Conflict, NotFound, ValidationFailed
from models.account import User
from models.base import keyset_page
from models.consent import GuardianConsent, LedgerEntry
from rights import erasure, export

SEARCH_LIMIT = 50


def normalize_phone(phone):
    """Digits and a leading +, as registration stores a phone number."""
    return "".join(ch for ch in phone.strip() if ch.isdigit() or ch == "+")


def find_users(email=None, phone=None, user_id=None):
    """Users matching exactly one of an email (normalized), a phone number
    or an id; a phone number may be shared, so the answer is a list."""
    if email is not None:
        found = User.by_email(email)
        return [found] if found else []
    if phone is not None:
        digits = normalize_phone(phone)
        if not digits:
            return []
        return list(User.select().where(User.phone == digits).order_by(User.created_at).limit(SEARCH_LIMIT))
    found = User.get_or_none(User.id == user_id)
    return [found] if found else []


def get_user(user_id):
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def chain_status(user):
    """Whether the user's ledger chain verifies: ``{ok, entries, failure}``."""
    report = ledger.verify_user(user)
    return {"ok": report.ok, "entries": report.entries, "failure": report.failure}


def guardian_consents(user):
    """Every guardian consent recorded for the user, newest first (revoked ones included)."""
    return list(GuardianConsent.select().where(GuardianConsent.user == user)
                .order_by(GuardianConsent.recorded_at.desc()))


def user_record(user, actor):
    """The user's consent record as staff see it: profile, consents with
    the reason each is not in effect, guardian consents, devices as stored
    and whether the ledger chain verifies. The audit log keeps who looked."""
    return {
        "user": export.profile(user),
        "consents": consent.staff_overview(user, actor),
        "guardian_consents": guardian_consents(user),
        "devices": list(export.devices(user)),
        "chain": chain_status(user),
    }


def ledger_history(user, cursor=None, limit=50):
    """One page of the user's ledger entries, newest first: ``(entries, next cursor)``."""
    return keyset_page(LedgerEntry.select().where(LedgerEntry.user == user.id), LedgerEntry.id, cursor, limit)


def ledger_page(user, actor, cursor=None, limit=50):
    """One page of the user's ledger entries, newest first, with the
    chain's status. The audit log keeps who looked."""
    audit.record(actor, "user.view", f"user:{user.id}", {"part": "ledger"})
    items, next_key = ledger_history(user, cursor, limit)
    return {"items": items, "next_cursor": next_key, "chain": chain_status(user)}


def minors_awaiting_guardian(cursor=None, limit=50, today=None):
    """Minors without a guardian's consent on record, by id, each with the
    permissions granted that wait for it (policy §7)."""
    sql = consent.SqlSubject(today)
    query = User.select().where(sql.minor & ~sql.guardian)
    users, next_key = keyset_page(query, User.id, cursor, limit, descending=False)
    subjects = consent.load_subjects(users)
    items = []
    for user in users:
        decisions = consent.decide_all(subjects[user.id], today)
        items.append({
            "id": user.id, "email": user.email, "birth_date": user.birth_date, "created_at": user.created_at,
            "waiting": [key for key, decision in decisions.items() if decision.reason == "guardian_required"],
        })
    return {"items": items, "next_cursor": next_key}


def export_on_request(user, actor):
    """The user's export document (as ``GET /v1/me/export``), as a stream
    of JSON text; the audit log keeps who asked for it."""
    audit.record(actor, "user.export", f"user:{user.id}")
    return export.export(user)


def confirms(user, typed):
    """Whether ``typed`` names the user: the email (as normalized) or the id."""
    typed = typed.strip()
    return typed == str(user.id) or User.normalize_email(typed) == user.email_normalized


def erase_on_request(user, actor, typed):
    """Erase the user (``rights.erasure``) once ``typed`` names them. Staff
    accounts are not erased here: staff management removes them."""
    if not confirms(user, typed):
        raise ValidationFailed({"confirm": ["Type the user's email or id to confirm the erasure."]})
    if user.is_staff:
        raise Conflict("A staff account is removed through staff management, not erased here.",
                       code="staff_account")
    erasure.erase(user, actor)

