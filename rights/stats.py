"""Aggregate statistics that identify nobody (policy section 2.5): only
devices whose user has ``usage_statistics`` and ``device_info`` in effect
are counted, and groups of fewer than ``STATS_MIN_GROUP_SIZE`` distinct
users are folded into ``suppressed``."""
from datetime import date, datetime, timedelta

from flask import current_app
from peewee import SQL, Case, fn

import consent
from consent import catalogue
from models.account import ACCOUNT, User
from models.base import utcnow
from models.consent import Consent, LedgerEntry
from models.device import Device

IN_EFFECT = "in_effect"

DIMENSIONS = ("model", "os_name", "os_version", "carrier", "platform", "app_version")


def device_counts(by):
    """Devices per value of ``by``. A group is published only when its
    devices belong to at least ``STATS_MIN_GROUP_SIZE`` distinct users: one
    person's ten phones of a rare model are one person, not a crowd."""
    column = getattr(Device, by)
    sql = consent.SqlSubject()
    counted = consent.statistics_sql(sql)
    query = sql.join(Device.select(column.alias("value"), fn.COUNT(Device.id).alias("devices"),
                                   fn.COUNT(Device.user.distinct()).alias("users"))
                     .join(User, on=(Device.user == User.id)))
    # accounts' devices: an installation is the same person before sign-in, not another one
    rows = list(query.where(counted & (User.kind == ACCOUNT)).group_by(column).dicts())
    minimum = current_app.config["STATS_MIN_GROUP_SIZE"]
    published = [row for row in rows if row["users"] >= minimum]
    groups = sorted(({"value": row["value"], "count": row["devices"]} for row in published),
                    key=lambda group: (-group["count"], str(group["value"])))
    suppressed = sum(row["devices"] for row in rows if row["users"] < minimum)
    return {"by": by, "groups": groups, "suppressed": suppressed}


def consent_counts():
    """Per permission: accounts that granted it, withdrew it, were never asked."""
    users = User.accounts().count()
    rows = (Consent.select(Consent.permission, Consent.granted, fn.COUNT(Consent.id).alias("n"))
            .join(User, on=(Consent.user == User.id)).where(User.kind == ACCOUNT)
            .group_by(Consent.permission, Consent.granted))
    tally = {key: {"granted": 0, "withdrawn": 0} for key in catalogue.KEYS}
    for row in rows:
        tally[row.permission]["granted" if row.granted else "withdrawn"] += row.n
    return {"users": users, "permissions": {
        key: {**counts, "not_asked": users - counts["granted"] - counts["withdrawn"]} for key, counts in tally.items()}}


def consent_effects(today=None):
    """Per permission, accounts counted by the consent engine's decision:
    ``{key: {reason: users}}`` where the reason is ``in_effect`` or the
    first rule that keeps it out of effect (``not_asked``, ``withdrawn``,
    ``stale_policy``, ``not_for_minors``, ``guardian_required``,
    ``reconfirm``, ``requires:<key>``), decided by the engine's SQL form."""
    effects = {}
    for key in catalogue.KEYS:
        sql = consent.SqlSubject(today)
        cases = [(condition, reason.split(":", 1)[1]) for condition, reason in consent.refusal_sql([key], sql)]
        inner = sql.join(User.accounts(Case(None, cases, IN_EFFECT).alias("decision")))
        query = inner.select_from(SQL("decision"), fn.COUNT(SQL("*")).alias("n")).group_by(SQL("decision"))
        effects[key] = {row["decision"]: row["n"] for row in query.dicts()}
    return effects


def ledger_daily(days=90, today=None):
    """Grants and withdrawals recorded in the consent ledger per day, the
    last ``days`` days up to ``today`` (UTC): ``[(day, grants, withdrawals)]``,
    every day listed."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    day = fn.DATE(LedgerEntry.created_at)
    rows = (LedgerEntry.select(day.alias("day"), LedgerEntry.granted, fn.COUNT(LedgerEntry.id).alias("n"))
            .where(LedgerEntry.created_at >= datetime.combine(first, datetime.min.time()))
            .group_by(day, LedgerEntry.granted).tuples())
    counts = {}
    for value, granted, n in rows:
        # a date, a datetime or a string, as the backend and the driver give it
        value = value.date() if isinstance(value, datetime) else value
        value = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        counts[(value, bool(granted))] = n
    return [(first + timedelta(days=i), counts.get((first + timedelta(days=i), True), 0),
             counts.get((first + timedelta(days=i), False), 0)) for i in range(days)]
