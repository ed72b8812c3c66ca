"""Loading what the rules read about users (one query for many), the
per-request cache of it, the consent locks, and the checks callers ask:
``check``, ``require``, ``overview``."""
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar

from peewee import JOIN

from auth import audit
from consent import catalogue, os_permissions
from consent.rules import State, Subject, decide, is_minor, may_hold_push_token
from consent.sql import guardian_on_record, newest_change
from core import metrics
from core.errors import ConsentRequired
from models.account import User
from models.base import db, is_postgres, write_transaction
from models.consent import Consent, PolicyVersion
from models.device import Device

# {user id: Subject} for the request being served; None outside one. The HTTP
# layer opens it per request (``open_cache``); a worker task reads afresh.
_cache = ContextVar("consent_subjects", default=None)


def open_cache():
    """Start caching subjects for one request; returns what ``close_cache`` takes."""
    return _cache.set({})


def close_cache(token):
    _cache.reset(token)


def _cached():
    cache = _cache.get()
    return {} if cache is None else cache


def forget(user):
    """Drop the cached subject of ``user`` (after a change of its consents)."""
    _cached().pop(user.id, None)


def user_locks(where, shared=False):
    """The PostgreSQL row locks that serialise consent changes, on the users
    matching ``where``, taken in id order so that two lockers never wait on
    each other crosswise (see ``lock_user``)."""
    return User.select(User.id).where(where).order_by(User.id).for_update("FOR SHARE" if shared else True)


def lock_user(user, shared=False):
    """Serialise consent changes of one user (PostgreSQL row lock; SQLite's
    write transaction already holds the database lock). A shared lock lets
    writers of consent-gated data run side by side while keeping a change
    of consent out until they commit."""
    if is_postgres():
        user_locks(User.id == user.id, shared).execute()


def _state_rows(user_ids, lock=None):
    """One row per (user, permission chosen), or one bare row for a user who
    chose nothing. ``lock="share"`` first takes the users' shared row locks
    (PostgreSQL), in the same round trip but as a statement of its own: a
    locking statement that waits for a consent change would read the joined
    consent rows as they were before that change (READ COMMITTED keeps the
    statement's snapshot), so the read must be the next statement."""
    query = (
        User.select(
            User.id.alias("user_id"),
            Consent.permission,
            Consent.granted,
            Consent.policy.alias("policy_id"),
            Consent.updated_at,
            Consent.refused,
            PolicyVersion.version.alias("policy_version"),
            newest_change(Consent.permission).alias("changed_in"),
            guardian_on_record().alias("guardians"),
        )
        .join(Consent, JOIN.LEFT_OUTER, on=(Consent.user == User.id))
        .join(PolicyVersion, JOIN.LEFT_OUTER, on=(Consent.policy == PolicyVersion.id))
        .where(User.id.in_(user_ids))
    )
    if lock != "share" or not is_postgres():
        return list(query.dicts())
    lock_sql, lock_params = user_locks(User.id.in_(user_ids), shared=True).sql()
    read_sql, read_params = query.sql()
    cursor = db.execute_sql(f"{lock_sql};\n{read_sql}", [*lock_params, *read_params])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def load_subjects(users, lock=None):
    """``{user id: Subject}`` for many users in one query (the fan-out's path)."""
    users = list(users)
    states = defaultdict(dict)
    guardians = set()
    if users:
        for row in _state_rows([u.id for u in users], lock):
            if row["permission"] is not None:
                states[row["user_id"]][row["permission"]] = State(
                    bool(row["granted"]), row["policy_id"], row["policy_version"], row["updated_at"],
                    row["changed_in"], bool(row["refused"]))
            if row["guardians"]:
                guardians.add(row["user_id"])
    return {
        u.id: Subject(birth_date=u.birth_date, guardian_consent=u.id in guardians, states=states.get(u.id, {}))
        for u in users
    }


def load_subject(user, lock=None):
    return load_subjects([user], lock)[user.id]


def subject_for(user):
    """The user's Subject, loaded once per request (a change invalidates it)."""
    cache = _cached()
    if user.id not in cache:
        cache[user.id] = load_subject(user)
    return cache[user.id]


@contextmanager
def consent_held(user):
    """A transaction during which the user's consents cannot change, so a
    decision taken inside still holds when the data it allowed is committed.
    Gated writes happen inside one; a withdrawal waits for them and then
    removes what they wrote."""
    with write_transaction():
        _cached()[user.id] = load_subject(user, lock="share")
        yield


def check(user, key, today=None):
    """The decision for one user: every per-user check (``is_effective``,
    ``require``, ``require_push``) is this one, and is counted here."""
    decision = decide(key, subject_for(user), today)
    metrics.CONSENT_CHECKS.labels(key).inc()
    if not decision.effective:
        metrics.CONSENT_REFUSALS.labels(key, decision.reason).inc()
    return decision


def device_decision(device, key, today=None):
    """``check`` for the device's user, narrowed by the device's OS permissions."""
    return os_permissions.on_device(key, check(device.user, key, today), device)


def device_mismatches(device):
    """What the phone's own permissions narrow on ``device`` (``os_permissions.mismatches``)."""
    subject = _cached().get(device.user_id) or subject_for(device.user)  # a listing's devices share one user
    return os_permissions.mismatches(device, {key: decide(key, subject) for key in catalogue.KEYS})


def is_effective(user, key):
    return check(user, key).effective


def require(user, key):
    """Raise ``ConsentRequired`` unless ``key`` is in effect."""
    decision = check(user, key)
    if not decision.effective:
        raise ConsentRequired(key, decision.reason)


def require_push(user):
    """Raise ``ConsentRequired`` unless a push permission is in effect."""
    decisions = {key: check(user, key) for key in catalogue.PUSH_PERMISSIONS}
    if not may_hold_push_token(decisions):
        first = catalogue.PUSH_PERMISSIONS[0]
        error = ConsentRequired(first, decisions[first].reason)
        error.details["any_of"] = list(catalogue.PUSH_PERMISSIONS)
        raise error


def staff_overview(user, admin):
    """``overview`` for a staff member looking at a user's record: the
    audit log keeps who looked."""
    audit.record(admin, "user.view", f"user:{user.id}")
    return overview(user)


def overview(user, today=None):
    """The user's choices and whether each is in effect (``GET /me/consents``),
    with what the phone's own permissions narrow on each device."""
    subject = subject_for(user)
    current = PolicyVersion.current()
    consents, decisions = {}, {}
    for key in catalogue.KEYS:
        state = subject.states.get(key)
        decision = decisions[key] = decide(key, subject, today)
        consents[key] = {
            "granted": bool(state and state.granted),
            "effective": decision.effective,
            "reason": decision.reason,
            "policy_version": state.policy_version if state else None,
            "updated_at": state.updated_at if state else None,
        }
    return {
        "policy_version": current.version if current else None,
        "minor": is_minor(user.birth_date, today),
        "guardian_consent": subject.guardian_consent,
        "consents": consents,
        "devices": os_permissions.device_mismatches(Device.for_user(user), decisions),
    }
