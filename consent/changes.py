"""Changes of consent: the user's own (``set_consents``, ``withdraw_grant``),
re-evaluation after a fact about the user changed, guardians' consent, and
policy versions. Each change appends ledger entries and runs the withdrawal
effects of what it stopped, in its transaction."""
from collections import defaultdict

from peewee import fn

from auth import audit
from consent import catalogue, ledger, receipts
from consent.effects import effects
from consent.ledger import ChangeContext
from consent.rules import (
    CONFIRM_AGAIN_REASONS,
    CURRENT_GRANT,
    SOURCES,
    decide_all,
    grant_status,
    is_minor,
    refusals,
    stopped,
)
from consent.subjects import forget, load_subject, load_subjects, lock_user, overview, user_locks
from models.account import User
from models.base import is_postgres, utcnow, write_transaction
from models.consent import Consent, ConsentSummary, GuardianConsent, PolicyChange, PolicyVersion


def _check_source(context):
    if context.source not in SOURCES:
        raise ValueError(context.source)


def _stop(user, before, withdrawn_keys, today=None):
    """Decide again after a write and run the effects of what stopped; returns the keys."""
    after = decide_all(load_subject(user), today)
    keys = list(stopped(before, after, withdrawn_keys))
    effects.run(user, keys, after)
    return after, keys


def _apply(user, changes, context, today=None, adopted=None):
    """Write ``changes`` ({key: bool}) inside the caller's transaction;
    returns the ledger entries written. ``adopted``: {key: hash of the
    installation's entry} for a merge (``consent.installations``)."""
    lock_user(user)
    policy = PolicyVersion.current()
    before_subject = load_subject(user)
    before = decide_all(before_subject, today)
    withdrawn, written = set(), []
    refused_by = refusals(before_subject, changes, policy, today)
    for key in catalogue.KEYS:
        if key not in changes:
            continue
        value = bool(changes[key])
        state = before_subject.states.get(key)
        if state is not None and state.granted == value and before[key].reason not in CONFIRM_AGAIN_REASONS:
            continue  # already so: nothing to record
        now, refused = utcnow(), refused_by.get(key)
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
        written.append(ledger.append(user, key, value, policy.version, context, reason=refused,
                                     adopted_from=(adopted or {}).get(key)))
        if state is not None and state.granted and not value:
            withdrawn.add(key)
    if written:
        ConsentSummary.refresh([user.id])
    _stop(user, before, withdrawn, today)
    return written


def set_consents(user, changes, context):
    """Change several permissions at once, all or nothing. Each change of
    state appends one ledger entry, and has a consent receipt of its own
    (``receipts``: their ids, in the overview's answer); setting a state
    the user already has (and that is not stale) writes nothing."""
    unknown = sorted(set(changes) - set(catalogue.KEYS))
    if unknown:
        raise KeyError(unknown)
    _check_source(context)
    with write_transaction():
        written = _apply(user, changes, context)
    forget(user)
    return {**overview(user), "receipts": receipts.issued_for(written)}


def withdraw_grant(user, key, granted_at, context):
    """Withdraw ``key`` only while the grant made at ``granted_at`` is the
    user's choice: something that speaks for one grant (an unsubscribe link
    sent under it) must never withdraw a later one. Returns ``grant_status``
    as it was before."""
    _check_source(context)
    with write_transaction():
        lock_user(user)
        status = grant_status(load_subject(user), key, granted_at)
        if status == CURRENT_GRANT:
            _apply(user, {key: False}, context)
    forget(user)
    return status


def reevaluate(user, context, before):
    """After a fact about the user changed (birth date, guardian consent),
    withdraw every grant that stopped being in effect: its state becomes
    withdrawn, a ledger entry records the reason, and its withdrawal effects
    run. A grant a rule refused when it was made and that no rule refuses
    any more stays out of effect; a ledger entry records that it now waits
    for the user's ``reconfirm``. Runs inside the caller's transaction,
    under ``lock_user``."""
    subject = load_subject(user)
    after = decide_all(subject)
    stopping = [
        key for key in stopped(before, after, set())
        if subject.states.get(key) is not None and subject.states[key].granted
    ]
    policy = PolicyVersion.current()
    now = utcnow()
    for key in catalogue.KEYS:
        if after[key].reason == "reconfirm" and before[key].reason != "reconfirm":
            # The user's choice stands (the entry repeats it), but not in effect.
            ledger.append(user, key, True, policy.version, context, reason="reconfirm")
    for key in stopping:
        Consent.update(granted=False, policy=policy, updated_at=now).where(
            (Consent.user == user) & (Consent.permission == key)
        ).execute()
        ledger.append(user, key, False, policy.version, context, reason=after[key].reason)
    if stopping:
        ConsentSummary.refresh([user.id])
        effects.run(user, stopping, decide_all(load_subject(user)))
    forget(user)
    return stopping


# -- guardians -----------------------------------------------------------------

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
        audit.record(admin, "guardian.record", f"user:{user.id}", {"guardian_consent_id": str(record.id)})
        if is_minor(user.birth_date):
            _complete_with_guardian(user)
    forget(user)
    return record


def _complete_with_guardian(user):
    """A minor's grants that waited only for a guardian's consent are made
    valid by it (policy §7): it is the consent they lacked. Grants of
    permissions closed to minors stay marked."""
    open_to_minors = [p.key for p in catalogue.PERMISSIONS if p.minors_allowed]
    completed = (
        Consent.update(refused=False)
        .where((Consent.user == user) & (Consent.refused == True) & Consent.permission.in_(open_to_minors))  # noqa: E712
        .execute()
    )
    if completed:
        ConsentSummary.refresh([user.id])


def revoke_guardian_consent(user, context, admin):
    """Withdraw the guardian's consent; what depended on it stops, with
    effect. The audit log names ``admin`` when there was one to revoke."""
    with write_transaction():
        lock_user(user)
        before = decide_all(load_subject(user))
        revoked = (
            GuardianConsent.update(revoked_at=utcnow())
            .where((GuardianConsent.user == user) & GuardianConsent.revoked_at.is_null())
            .execute()
        )
        if revoked:
            ledger.append(user, catalogue.GUARDIAN_CONSENT, False, PolicyVersion.current().version, context)
            reevaluate(user, context, before)
            audit.record(admin, "guardian.revoke", f"user:{user.id}")
    forget(user)
    return revoked


# -- policies ------------------------------------------------------------------

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
        audit.record(admin, "policy.publish", f"policy:{version}",
                     {"changed_permissions": sorted(set(changed_permissions))})
        _forget_sensitive_stale_data(sorted(key for key in set(changed_permissions) if catalogue.get(key).sensitive))
    return policy


def _forget_sensitive_stale_data(keys):
    """Sensitive data (policy §1.2(2)) is not kept on a grant the user has not
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
            before = decide_all(load_subject(user))
            keys = [key for key in catalogue.KEYS if key in lapsing[user.id] and before[key].reason == "stale_policy"]
            if not keys:
                continue
            policy, now = PolicyVersion.current(), utcnow()
            for key in keys:
                Consent.update(granted=False, refused=False, policy=policy, updated_at=now).where(
                    (Consent.user == user) & (Consent.permission == key)).execute()
                ledger.append(user, key, False, policy.version, context, reason="stale_policy")
            ConsentSummary.refresh([user.id])
            _stop(user, before, set(keys))
            lapsed += len(keys)
    return lapsed
