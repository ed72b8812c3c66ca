"""The SQL form of each rule in ``consent.rules``, for audiences, statistics
and the location insert: conditions over a query's ``user`` rows, built
from the same ``RULES`` as the Python form (a property test checks that the
two agree)."""
import operator
from datetime import date
from functools import reduce

from peewee import JOIN, fn

from consent.rules import STATISTICS_PERMISSIONS, adulthood_cutoff, rules_for
from models.account import User
from models.consent import ConsentSummary, GuardianConsent, PolicyChange


def guardian_on_record():
    """SQL true when the ``user`` row has a guardian's consent that is not revoked."""
    return fn.EXISTS(GuardianConsent.select(GuardianConsent.id).where(
        (GuardianConsent.user == User.id) & GuardianConsent.revoked_at.is_null()))


def newest_change(permission):
    """The newest policy version that lists ``permission`` (a key or a
    column holding one) as changed; NULL when none does."""
    return PolicyChange.select(fn.MAX(PolicyChange.policy)).where(PolicyChange.permission == permission)


def all_of(conditions):
    """The AND of ``conditions`` (None when there are none)."""
    conditions = [condition for condition in conditions if condition is not None]
    return reduce(operator.and_, conditions) if conditions else None


class SqlSubject:
    """What ``holds_sql`` needs: the user's choices (one LEFT JOIN of
    ``consent_summary`` onto the query's ``user`` rows), whether the user is
    a minor, whether a guardian's consent is on record, and the newest
    change per permission."""

    def __init__(self, today=None):
        self.cutoff = adulthood_cutoff(today or date.today())
        self.used = False
        self.minor = User.birth_date.is_null(False) & (User.birth_date > self.cutoff)
        self.guardian = guardian_on_record()

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
        return fn.COALESCE(newest_change(key), 0)

    def effective(self, key):
        return effective_sql(key, self)

    def join(self, query):
        """``query`` (which selects from or joins ``user``) with the join the rules used."""
        if self.used:
            query = query.join(ConsentSummary, JOIN.LEFT_OUTER, on=(ConsentSummary.user == User.id), src=User)
        return query


def _conditions(key, sql):
    """``(rule, condition)`` for each rule of ``key``, in decision order."""
    permission, rules = rules_for(key)
    for rule in rules:
        holds = rule.holds_sql(permission, sql)
        if holds is not None:
            yield rule, holds


def effective_sql(key, sql):
    """SQL that is true exactly when ``decide(key)`` is in effect."""
    return all_of(holds for _rule, holds in _conditions(key, sql))


def refusal_sql(keys, sql):
    """``[(condition, reason)]`` in decision order: the first condition that
    is true names why the first of ``keys`` not in effect is not, as
    ``"<key>:<reason>"``, computed by the database."""
    return [(~holds, f"{key}:{rule.reason}") for key in keys for rule, holds in _conditions(key, sql)]


def statistics_sql(sql):
    """SQL true for users whose devices statistics may count."""
    return all_of(effective_sql(key, sql) for key in STATISTICS_PERMISSIONS)
