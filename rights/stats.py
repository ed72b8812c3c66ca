"""Aggregate statistics that identify nobody (policy section 2.5): only
devices whose user has ``usage_statistics`` and ``device_info`` in effect
are counted, and groups of fewer than ``STATS_MIN_GROUP_SIZE`` distinct
users are folded into ``suppressed``."""
from flask import current_app
from peewee import fn

import consent
from consent import catalogue
from models.account import User
from models.consent import Consent
from models.device import Device

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
    rows = list(query.where(counted).group_by(column).dicts())
    minimum = current_app.config["STATS_MIN_GROUP_SIZE"]
    published = [row for row in rows if row["users"] >= minimum]
    groups = sorted(({"value": row["value"], "count": row["devices"]} for row in published),
                    key=lambda group: (-group["count"], str(group["value"])))
    suppressed = sum(row["devices"] for row in rows if row["users"] < minimum)
    return {"by": by, "groups": groups, "suppressed": suppressed}


def consent_counts():
    """Per permission: users who granted it, withdrew it, were never asked."""
    users = User.select().count()
    rows = (Consent.select(Consent.permission, Consent.granted, fn.COUNT(Consent.id).alias("n"))
            .group_by(Consent.permission, Consent.granted))
    tally = {key: {"granted": 0, "withdrawn": 0} for key in catalogue.KEYS}
    for row in rows:
        tally[row.permission]["granted" if row.granted else "withdrawn"] += row.n
    return {"users": users, "permissions": {
        key: {**counts, "not_asked": users - counts["granted"] - counts["withdrawn"]} for key, counts in tally.items()}}
