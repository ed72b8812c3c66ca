"""Every consent rule of DESIGN.md lives here. Blueprints, the push fan-out
and statistics ask this module; none of them re-implements a rule."""
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from flask import g, has_request_context
from peewee import JOIN, fn

from consent import catalogue, ledger
from consent.effects import effects
from consent.ledger import ChangeContext
from core.errors import ConsentRequired
from models.account import User
from models.base import db, is_postgres, utcnow, write_transaction
from models.consent import Consent, ConsentSummary, GuardianConsent, PolicyChange, PolicyVersion

ADULT_AGE = 18  # policy section 7
USER_SOURCES = ("app", "web")
SOURCES = ("app", "web", "unsubscribe_link", "guardian", "admin", "system")
# Stopping to be in effect for these reasons is a withdrawal in all but name;
# a stale grant is only waiting for the user to confirm it again.
WITHDRAWING_REASONS = ("withdrawn", "not_for_minors", "guardian_required")
# A grant made while one of these refused it was never valid consent
# (policy section 7): it is marked ``refused`` and no later change of fact
# (a corrected birth date, a birthday) puts it in effect; the user grants again.
REFUSING_REASONS = ("not_for_minors", "guardian_required")
# Reasons that granting again (the same choice) clears, so such a PUT is written.
CONFIRM_AGAIN_REASONS = ("stale_policy", "reconfirm")


@dataclass(frozen=True)
class State:
    """The user's recorded choice for one permission."""

    granted: bool
    policy_id: int
    policy_version: str
    updated_at: object
    changed_in: int = None  # newest policy version listing the permission as changed
    refused: bool = False  # granted while a rule refused it (REFUSING_REASONS)


@dataclass(frozen=True)
class Subject:
    """What the rules need to know about one user."""

    birth_date: date = None
    guardian_consent: bool = False
    states: dict = None


@dataclass(frozen=True)
class Decision:
    effective: bool
    reason: str = None


IN_EFFECT = Decision(True)


# -- the rules -----------------------------------------------------------------

def is_minor(birth_date, today=None):
    """Under 18 on ``today`` (policy section 7). No birth date: not known to be a minor."""
    if birth_date is None:
        return False
    today = today or date.today()
    return birth_date > adulthood_cutoff(today)


def adulthood_cutoff(today):
    """Anyone born after this day is a minor on ``today``."""
    try:
        return today.replace(year=today.year - ADULT_AGE)
    except ValueError:  # 29 February
        return today.replace(year=today.year - ADULT_AGE, day=28)


class Rule:
    """One condition of effective consent, in two forms side by side: in
    Python over a loaded Subject (``holds``), and as SQL over a user row
    (``holds_sql``), for audiences of millions. ``RULES`` is their order."""

    reason = ""

    def applies(self, permission):
        return True

    def holds(self, permission, state, subject, today):
        raise NotImplementedError

    def holds_sql(self, permission, sql):
        raise NotImplementedError

    def reasons(self, permission):
        return [self.reason]


class Asked(Rule):
    reason = "not_asked"

    def holds(self, permission, state, subject, today):
        return state is not None

    def holds_sql(self, permission, sql):
        return sql.granted(permission.key).is_null(False)


class Granted(Rule):
    reason = "withdrawn"

    def holds(self, permission, state, subject, today):
        return state.granted

    def holds_sql(self, permission, sql):
        return sql.granted(permission.key) == True  # noqa: E712  (SQL, not Python)


class Current(Rule):
    """Not made under a policy older than the newest one that changed the permission."""

    reason = "stale_policy"

    def holds(self, permission, state, subject, today):
        return state.changed_in is None or state.policy_id >= state.changed_in

    def holds_sql(self, permission, sql):
        return sql.policy(permission.key) >= sql.changed_in(permission.key)


class OpenToMinors(Rule):
    reason = "not_for_minors"

    def applies(self, permission):
        return not permission.minors_allowed

    def holds(self, permission, state, subject, today):
        return not is_minor(subject.birth_date, today)

    def holds_sql(self, permission, sql):
        return ~sql.minor


class GuardianOnRecord(Rule):
    """Policy section 7: a minor needs a guardian's written consent."""

    reason = "guardian_required"

    def applies(self, permission):
        return permission.guardian_required

    def holds(self, permission, state, subject, today):
        return subject.guardian_consent or not is_minor(subject.birth_date, today)

    def holds_sql(self, permission, sql):
        return ~sql.minor | sql.guardian


class Reconfirmed(Rule):
    """A grant made while a rule refused it takes effect only once the user
    grants again after the rule stopped refusing it (policy section 7)."""

    reason = "reconfirm"

    def holds(self, permission, state, subject, today):
        return not state.refused

    def holds_sql(self, permission, sql):
        return sql.refused(permission.key) == False  # noqa: E712  (SQL, not Python)


class Requires(Rule):
    """A permission that builds on another (precise on approximate location)."""

    def __init__(self, required):
        self.required = required
        self.reason = f"requires:{required}"

    def applies(self, permission):
        return self.required in permission.requires

    def holds(self, permission, state, subject, today):
        return decide(self.required, subject, today).effective

    def holds_sql(self, permission, sql):
        return effective_sql(self.required, sql)


RULES = (Asked(), Granted(), Current(), OpenToMinors(), GuardianOnRecord(), Reconfirmed(),
         *[Requires(key) for key in sorted({r for p in catalogue.PERMISSIONS for r in p.requires})])


def decide(key, subject, today=None):
    """Whether ``key`` is in effect for ``subject``, and why not."""
    permission = catalogue.get(key)
    state = (subject.states or {}).get(key)
    for rule in RULES:
        if rule.applies(permission) and not rule.holds(permission, state, subject, today):
            return Decision(False, rule.reason)
    return IN_EFFECT


class SqlSubject:
    """What ``holds_sql`` needs: the user's choices (one LEFT JOIN of
    ``consent_summary`` onto the query's ``user`` rows), whether the user is
    a minor, whether a guardian's consent is on record, and the newest
    change per permission."""

    def __init__(self, today=None):
        self.cutoff = adulthood_cutoff(today or date.today())
        self.used = False
        self.minor = User.birth_date.is_null(False) & (User.birth_date > self.cutoff)
        self.guardian = fn.EXISTS(GuardianConsent.select(GuardianConsent.id).where(
            (GuardianConsent.user == User.id) & GuardianConsent.revoked_at.is_null()))

    def granted(self, key):
        """True or False as chosen; NULL when never asked."""
        self.used = True
        return ConsentSummary.granted(key)

    def policy(self, key):
        self.used = True
        return ConsentSummary.policy(key)

    def refused(self, key):
        self.used = True
        return ConsentSummary.refused(key)

    @staticmethod
    def changed_in(key):
        """The newest policy version that changed ``key`` (0: none did), read
        by the same statement, so no query is needed beforehand."""
        newest = PolicyChange.select(fn.MAX(PolicyChange.policy)).where(PolicyChange.permission == key)
        return fn.COALESCE(newest, 0)

    def join(self, query):
        """``query`` (which selects from or joins ``user``) with the join the rules used."""
        if self.used:
            query = query.join(ConsentSummary, JOIN.LEFT_OUTER, on=(ConsentSummary.user == User.id), src=User)
        return query


def effective_sql(key, sql):
    """SQL that is true exactly when ``decide(key)`` is in effect."""
    permission = catalogue.get(key)
    condition = None
    for rule in RULES:
        if rule.applies(permission):
            holds = rule.holds_sql(permission, sql)
            if holds is not None:
                condition = holds if condition is None else (condition & holds)
    return condition


def refusal_sql(keys, sql):
    """``[(condition, reason)]`` in decision order: the first condition that
    is true names why the first of ``keys`` not in effect is not, as
    ``"<key>:<reason>"`` (``refusal``'s answer, computed by the database)."""
    cases = []
    for key in keys:
        permission = catalogue.get(key)
        for rule in RULES:
            if rule.applies(permission):
                holds = rule.holds_sql(permission, sql)
                if holds is not None:
                    cases.append((~holds, f"{key}:{rule.reason}"))
    return cases


def decide_all(subject, today=None):
    return {key: decide(key, subject, today) for key in catalogue.KEYS}


# -- loading what the rules need ----------------------------------------------------

def _state_rows(user_ids, lock=None):
    """One row per (user, permission chosen), or one bare row for a user who
    chose nothing. ``lock="share"`` first takes the users' shared row locks
    (PostgreSQL), in the same round trip but as a statement of its own: a
    locking statement that waits for a consent change would read the joined
    consent rows as they were before that change (READ COMMITTED keeps the
    statement's snapshot), so the read must be the next statement."""
    changed_in = (
        PolicyChange.select(fn.MAX(PolicyChange.policy))
        .where(PolicyChange.permission == Consent.permission)
    )
    guardian = fn.EXISTS(GuardianConsent.select(GuardianConsent.id).where(
        (GuardianConsent.user == User.id) & GuardianConsent.revoked_at.is_null()))
    query = (
        User.select(
            User.id.alias("user_id"),
            Consent.permission,
            Consent.granted,
            Consent.policy.alias("policy_id"),
            Consent.updated_at,
            Consent.refused,
            PolicyVersion.version.alias("policy_version"),
            changed_in.alias("changed_in"),
            guardian.alias("guardians"),
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


def _cache():
    if not has_request_context():
        return {}
    if "consent_subjects" not in g:
        g.consent_subjects = {}
    return g.consent_subjects


def subject_for(user):
    """The user's Subject, loaded once per request (a change invalidates it)."""
    cache = _cache()
    if user.id not in cache:
        cache[user.id] = load_subjects([user])[user.id]
    return cache[user.id]


def _forget(user):
    _cache().pop(user.id, None)


def check(user, key, today=None):
    return decide(key, subject_for(user), today)


def is_effective(user, key):
    return check(user, key).effective


def require(user, key):
    """Raise 403 ``consent_required`` unless ``key`` is in effect."""
    decision = check(user, key)
    if not decision.effective:
        raise ConsentRequired(key, decision.reason)


def overview(user, today=None):
    """The user's choices and whether each is in effect (``GET /me/consents``)."""
    subject = subject_for(user)
    current = PolicyVersion.current()
    consents = {}
    for key in catalogue.KEYS:
        state = subject.states.get(key)
        decision = decide(key, subject, today)
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
    }


# -- campaign audiences -----------------------------------------------------------

# Filters on personal characteristics select only users with personalization
# in effect (policy 2.2, 2.4); device filters also need device_info, and the
# area filter needs location. Platform and app version are technical.
PERSONAL_FILTERS = ("models", "os_names", "carriers", "area", "active_within_days")
DEVICE_FILTERS = ("models", "os_names", "carriers")
PUSH_PERMISSION = {"service": "service_push", "marketing": "marketing_push"}


def campaign_permissions(kind, audience):
    """The permissions a user must have in effect to receive a campaign of
    ``kind`` with these audience filters, in the order they are checked."""
    used = {name for name, value in (audience or {}).items() if value not in (None, [], {}, "")}
    keys = [PUSH_PERMISSION[kind]]
    if used & set(PERSONAL_FILTERS):
        keys.append("personalization")
    if used & set(DEVICE_FILTERS):
        keys.append("device_info")
    if "area" in used:
        keys.append("location")
    return tuple(keys)


# What other uses of data need, so that no caller names the permissions itself.
STATISTICS_PERMISSIONS = ("usage_statistics", "device_info")  # policy 2.5, counted devices


def may_hold_push_token(decisions):
    """A push token may be kept while either push permission is in effect."""
    return any(decisions[key].effective for key in catalogue.PUSH_PERMISSIONS)


def require_push(user):
    """403 ``consent_required`` unless a push permission is in effect."""
    decisions = {key: check(user, key) for key in catalogue.PUSH_PERMISSIONS}
    if not may_hold_push_token(decisions):
        first = catalogue.PUSH_PERMISSIONS[0]
        error = ConsentRequired(first, decisions[first].reason)
        error.details["any_of"] = list(catalogue.PUSH_PERMISSIONS)
        raise error


def statistics_sql(sql):
    """SQL true for users whose devices statistics may count."""
    condition = None
    for key in STATISTICS_PERMISSIONS:
        effective = effective_sql(key, sql)
        condition = effective if condition is None else condition & effective
    return condition


def refusal(subject, keys, today=None):
    """None when every permission of ``keys`` is in effect, else
    ``"<key>:<reason>"`` for the first that is not."""
    for key in keys:
        decision = decide(key, subject, today)
        if not decision.effective:
            return f"{key}:{decision.reason}"
    return None


# -- withdrawal effects ----------------------------------------------------------

def _stopped(before, after, withdrawn_keys):
    for key in catalogue.KEYS:
        if key in withdrawn_keys:
            yield key
        elif before[key].effective and not after[key].effective and (
            after[key].reason in WITHDRAWING_REASONS or after[key].reason.startswith("requires:")
        ):
            yield key


def _run_effects(user, before, after, withdrawn_keys):
    stopped = list(_stopped(before, after, withdrawn_keys))
    effects.run(user, stopped, after)
    return stopped


# -- changes -----------------------------------------------------------------

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


@contextmanager
def consent_held(user):
    """A transaction during which the user's consents cannot change, so a
    decision taken inside still holds when the data it allowed is committed.
    Gated writes happen inside one; a withdrawal waits for them and then
    removes what they wrote."""
    with write_transaction():
        _cache()[user.id] = load_subjects([user], lock="share")[user.id]
        yield


def _apply(user, changes, context, today=None):
    """Write ``changes`` ({key: bool}) inside the caller's transaction."""
    lock_user(user)
    policy = PolicyVersion.current()
    before_subject = load_subjects([user])[user.id]
    before = decide_all(before_subject, today)
    withdrawn, written = set(), False
    refusals = _refusals(before_subject, changes, policy, today)
    for key in catalogue.KEYS:
        if key not in changes:
            continue
        value = bool(changes[key])
        state = before_subject.states.get(key)
        if state is not None and state.granted == value and before[key].reason not in CONFIRM_AGAIN_REASONS:
            continue  # already so: nothing to record
        now, refused = utcnow(), refusals.get(key)
        (
            Consent.insert(user=user, permission=key, granted=value, policy=policy, updated_at=now,
                           refused=refused is not None)
            .on_conflict(
                conflict_target=[Consent.user, Consent.permission],
                update={Consent.granted: value, Consent.policy: policy, Consent.updated_at: now,
                        Consent.refused: refused is not None},
            )
            .execute()
        )
        ledger.append(user, key, value, policy.version, context, reason=refused)
        written = True
        if state is not None and state.granted and not value:
            withdrawn.add(key)
    if written:
        ConsentSummary.refresh([user.id])
    after = decide_all(load_subjects([user])[user.id], today)
    _run_effects(user, before, after, withdrawn)
    return after


def _refusals(subject, changes, policy, today=None):
    """``{key: reason}`` for the grants of ``changes`` that a rule refuses
    (REFUSING_REASONS) as they are made: they are stored, but marked."""
    made = {key: State(bool(value), policy.id, policy.version, None) for key, value in changes.items()}
    after = Subject(birth_date=subject.birth_date, guardian_consent=subject.guardian_consent,
                    states={**(subject.states or {}), **made})
    refusals = {}
    for key, value in changes.items():
        reason = decide(key, after, today).reason
        if value and reason in REFUSING_REASONS:
            refusals[key] = reason
    return refusals


def set_consents(user, changes, context):
    """Change several permissions at once, all or nothing. Each change of
    state appends one ledger entry; setting a state the user already has
    (and that is not stale) writes nothing."""
    unknown = sorted(set(changes) - set(catalogue.KEYS))
    if unknown:
        raise KeyError(unknown)
    if context.source not in SOURCES:
        raise ValueError(context.source)
    with write_transaction():
        _apply(user, changes, context)
    _forget(user)
    return overview(user)


CURRENT_GRANT, NOT_GRANTED, SUPERSEDED = "current", "not_granted", "superseded"


def grant_status(subject, key, granted_at):
    """Whether the grant of ``key`` made at ``granted_at`` is still the
    subject's choice (``current``), the permission is not granted now
    (``not_granted``), or a later grant replaced it (``superseded``). Every
    write of a choice gives it a new ``updated_at``, so the time names one grant."""
    state = (subject.states or {}).get(key)
    if state is None or not state.granted:
        return NOT_GRANTED
    return CURRENT_GRANT if state.updated_at == granted_at else SUPERSEDED


def withdraw_grant(user, key, granted_at, context):
    """Withdraw ``key`` only while the grant made at ``granted_at`` is the
    user's choice: something that speaks for one grant (an unsubscribe link
    sent under it) must never withdraw a later one. Returns ``grant_status``
    as it was before."""
    if context.source not in SOURCES:
        raise ValueError(context.source)
    with write_transaction():
        lock_user(user)
        status = grant_status(load_subjects([user])[user.id], key, granted_at)
        if status == CURRENT_GRANT:
            _apply(user, {key: False}, context)
    _forget(user)
    return status


def reevaluate(user, context, before):
    """After a fact about the user changed (birth date, guardian consent),
    withdraw every grant that stopped being in effect: its state becomes
    withdrawn, a ledger entry records the reason, and its withdrawal effects
    run. A grant a rule refused when it was made and that no rule refuses
    any more stays out of effect; a ledger entry records that it now waits
    for the user's ``reconfirm``. Runs inside the caller's transaction,
    under ``lock_user``."""
    subject = load_subjects([user])[user.id]
    after = decide_all(subject)
    stopped = [
        key for key in _stopped(before, after, set())
        if subject.states.get(key) is not None and subject.states[key].granted
    ]
    policy = PolicyVersion.current()
    now = utcnow()
    for key in catalogue.KEYS:
        if after[key].reason == "reconfirm" and before[key].reason != "reconfirm":
            # The user's choice stands (the entry repeats it), but not in effect.
            ledger.append(user, key, True, policy.version, context, reason="reconfirm")
    for key in stopped:
        Consent.update(granted=False, policy=policy, updated_at=now).where(
            (Consent.user == user) & (Consent.permission == key)
        ).execute()
        ledger.append(user, key, False, policy.version, context, reason=after[key].reason)
    if stopped:
        ConsentSummary.refresh([user.id])
        after = decide_all(load_subjects([user])[user.id])
        effects.run(user, stopped, after)
    _forget(user)
    return stopped


# -- guardians and policies -------------------------------------------------------

def record_guardian_consent(user, guardian_name, relationship, evidence_ref, admin, context):
    with write_transaction():
        lock_user(user)
        record = GuardianConsent.create(
            user=user,
            guardian_name=guardian_name,
            relationship=relationship,
            evidence_ref=evidence_ref,
            recorded_by=admin,
            recorded_at=utcnow(),
        )
        ledger.append(user, catalogue.GUARDIAN_CONSENT, True, PolicyVersion.current().version, context)
        if is_minor(user.birth_date):
            _complete_with_guardian(user)
    _forget(user)
    return record


def _complete_with_guardian(user):
    """A minor's grants that waited only for a guardian's consent are made
    valid by it (policy section 7): it is the consent they lacked. Grants of
    permissions closed to minors stay marked."""
    open_to_minors = [p.key for p in catalogue.PERMISSIONS if p.minors_allowed]
    completed = (
        Consent.update(refused=False)
        .where((Consent.user == user) & (Consent.refused == True) & Consent.permission.in_(open_to_minors))  # noqa: E712
        .execute()
    )
    if completed:
        ConsentSummary.refresh([user.id])


def revoke_guardian_consent(user, context):
    """Withdraw the guardian's consent; what depended on it stops, with effect."""
    with write_transaction():
        lock_user(user)
        before = decide_all(load_subjects([user])[user.id])
        revoked = (
            GuardianConsent.update(revoked_at=utcnow())
            .where((GuardianConsent.user == user) & GuardianConsent.revoked_at.is_null())
            .execute()
        )
        if revoked:
            ledger.append(user, catalogue.GUARDIAN_CONSENT, False, PolicyVersion.current().version, context)
            reevaluate(user, context, before)
    _forget(user)
    return revoked


def publish_policy(version, text, changed_permissions, admin):
    """Publish a policy version. Grants of the permissions it lists as
    changed become stale until each user confirms them again; what the
    stale grants of sensitive permissions covered goes at once (their
    withdrawal effects run, in the same transaction), the rest waits unused
    for ``lapse_stale_grants``."""
    unknown = sorted(set(changed_permissions) - set(catalogue.KEYS))
    if unknown:
        raise KeyError(unknown)
    with write_transaction():
        policy = PolicyVersion.create(version=version, text=text, published_by=admin, published_at=utcnow())
        for key in sorted(set(changed_permissions)):
            PolicyChange.create(policy=policy, permission=key)
        _forget_sensitive_stale_data(sorted(key for key in set(changed_permissions) if catalogue.get(key).sensitive))
    return policy


def _forget_sensitive_stale_data(keys):
    """Sensitive data (policy 1.2(2)) is not kept on a grant the user has not
    confirmed under the policy in force: it is removed as on withdrawal."""
    if not keys:
        return
    holders = Consent.select(Consent.user).where(Consent.permission.in_(keys) & (Consent.granted == True))  # noqa: E712
    if is_postgres():
        user_locks(User.id.in_(holders)).execute()
    users = list(User.select(User.id, User.birth_date).where(User.id.in_(holders)).order_by(User.id))
    for start in range(0, len(users), 1000):
        chunk = users[start:start + 1000]
        subjects = load_subjects(chunk)
        for user in chunk:
            decisions = decide_all(subjects[user.id])
            effects.run(user, [key for key in keys if decisions[key].reason == "stale_policy"], decisions)


def _stale_since(key, cutoff):
    """Grants of ``key`` that a policy published at or before ``cutoff`` made stale."""
    changed = (
        PolicyChange.select(PolicyChange.id).join(PolicyVersion)
        .where((PolicyChange.permission == key) & (PolicyChange.policy > Consent.policy)
               & (PolicyVersion.published_at <= cutoff))
    )
    return (Consent.permission == key) & (Consent.granted == True) & fn.EXISTS(changed)  # noqa: E712


def lapse_stale_grants(grace, now=None):
    """Withdraw every grant that has been stale for longer than ``grace`` (a
    timedelta) without the user confirming it: a ``system`` ledger entry
    with reason ``stale_policy``, and its withdrawal effects run, one user
    per transaction. Returns how many grants lapsed."""
    cutoff = (now or utcnow()) - grace
    lapsing = defaultdict(set)
    for key in catalogue.KEYS:
        for row in Consent.select(Consent.user).where(_stale_since(key, cutoff)):
            lapsing[row.user_id].add(key)
    context = ChangeContext(source="system")
    lapsed = 0
    for user in list(User.select().where(User.id.in_(list(lapsing))).order_by(User.id)):
        with write_transaction():
            lock_user(user)
            subject = load_subjects([user])[user.id]
            before = decide_all(subject)
            keys = [key for key in catalogue.KEYS if key in lapsing[user.id] and before[key].reason == "stale_policy"]
            if not keys:
                continue
            policy, now = PolicyVersion.current(), utcnow()
            for key in keys:
                Consent.update(granted=False, refused=False, policy=policy, updated_at=now).where(
                    (Consent.user == user) & (Consent.permission == key)).execute()
                ledger.append(user, key, False, policy.version, context, reason="stale_policy")
            ConsentSummary.refresh([user.id])
            _run_effects(user, before, decide_all(load_subjects([user])[user.id]), set(keys))
            lapsed += len(keys)
    return lapsed
