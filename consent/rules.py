"""The consent rules, in pure Python: what a permission needs to be in
effect for one user, and why it is not. No database here; ``consent.sql``
holds each rule's SQL form and ``consent.subjects`` loads what they read."""
from dataclasses import dataclass
from datetime import date

from consent import catalogue

ADULT_AGE = 18  # policy §7
USER_SOURCES = ("app", "web")
# ``installation``: a choice an account adopted from the installation it signed in from.
SOURCES = ("app", "web", "unsubscribe_link", "guardian", "admin", "system", "installation")
# Stopping to be in effect for these reasons is a withdrawal in all but name;
# a stale grant is only waiting for the user to confirm it again.
WITHDRAWING_REASONS = ("withdrawn", "not_for_minors", "guardian_required")
# A grant made while one of these refused it was never valid consent
# (policy §7): it is marked ``refused`` and no later change of fact
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


def is_minor(birth_date, today=None):
    """Under 18 on ``today`` (policy §7). No birth date: not known to be a minor."""
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
    (``holds_sql``, given a ``consent.sql.SqlSubject``), for audiences of
    millions. ``RULES`` is their order."""

    reason = ""

    def applies(self, permission):
        return True

    def holds(self, permission, state, subject, today):
        raise NotImplementedError

    def holds_sql(self, permission, sql):
        raise NotImplementedError


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
    """Policy §7: a minor needs a guardian's written consent."""

    reason = "guardian_required"

    def applies(self, permission):
        return permission.guardian_required

    def holds(self, permission, state, subject, today):
        return subject.guardian_consent or not is_minor(subject.birth_date, today)

    def holds_sql(self, permission, sql):
        return ~sql.minor | sql.guardian


class Reconfirmed(Rule):
    """A grant made while a rule refused it takes effect only once the user
    grants again after the rule stopped refusing it (policy §7)."""

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
        return sql.effective(self.required)


RULES = (Asked(), Granted(), Current(), OpenToMinors(), GuardianOnRecord(), Reconfirmed(),
         *[Requires(key) for key in sorted({r for p in catalogue.PERMISSIONS for r in p.requires})])


def rules_for(key):
    """The rules that apply to ``key``, in decision order."""
    permission = catalogue.get(key)
    return permission, [rule for rule in RULES if rule.applies(permission)]


def decide(key, subject, today=None):
    """Whether ``key`` is in effect for ``subject``, and why not."""
    permission, rules = rules_for(key)
    state = (subject.states or {}).get(key)
    for rule in rules:
        if not rule.holds(permission, state, subject, today):
            return Decision(False, rule.reason)
    return IN_EFFECT


def decide_all(subject, today=None):
    return {key: decide(key, subject, today) for key in catalogue.KEYS}


def stopped(before, after, withdrawn_keys):
    """The permissions a change stopped: withdrawn ones, and those that left
    effect for a withdrawing reason or a lost requirement (``decide_all``
    before and after)."""
    for key in catalogue.KEYS:
        if key in withdrawn_keys:
            yield key
        elif before[key].effective and not after[key].effective and (
            after[key].reason in WITHDRAWING_REASONS or after[key].reason.startswith("requires:")
        ):
            yield key


def refusals(subject, changes, policy, today=None):
    """``{key: reason}`` for the grants of ``changes`` that a rule refuses
    (REFUSING_REASONS) as they are made: they are stored, but marked."""
    made = {key: State(bool(value), policy.id, policy.version, None) for key, value in changes.items()}
    after = Subject(birth_date=subject.birth_date, guardian_consent=subject.guardian_consent,
                    states={**(subject.states or {}), **made})
    refused = {}
    for key, value in changes.items():
        reason = decide(key, after, today).reason
        if value and reason in REFUSING_REASONS:
            refused[key] = reason
    return refused


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


# -- what other uses of data need, so that no caller names the permissions itself --

# Filters on personal characteristics select only users with personalization
# in effect (policy §2.2, §2.4); device filters also need device_info, and the
# area filter needs location. Platform and app version are technical.
PERSONAL_FILTERS = ("models", "os_names", "carriers", "area", "active_within_days")
DEVICE_FILTERS = ("models", "os_names", "carriers")
PUSH_PERMISSION = {"service": "service_push", "marketing": "marketing_push"}
STATISTICS_PERMISSIONS = ("usage_statistics", "device_info")  # policy §2.5, counted devices


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


def may_hold_push_token(decisions):
    """A push token may be kept while either push permission is in effect."""
    return any(decisions[key].effective for key in catalogue.PUSH_PERMISSIONS)
