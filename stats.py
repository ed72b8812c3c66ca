"""Aggregate statistics that identify nobody (policy section 2.5): only
devices whose user has ``usage_statistics`` and ``device_info`` in effect
are counted, and groups smaller than ``STATS_MIN_GROUP_SIZE`` are folded
into ``suppressed``."""
from collections import Counter

from flask import current_app
from peewee import fn

from consent import catalogue, engine
from models.account import User
from models.consent import Consent
from models.device import Device

DIMENSIONS = ("model", "os_name", "os_version", "carrier", "platform", "app_version")
REQUIRED = ("usage_statistics", "device_info")
PAGE = 2000


def device_counts(by):
    column = getattr(Device, by)
    counts, after = Counter(), None
    while True:
        query = Device.select(Device.id, column, User.id, User.birth_date).join(User)
        if after is not None:
            query = query.where(Device.id > after)
        page = list(query.order_by(Device.id).limit(PAGE))
        if not page:
            break
        subjects = engine.load_subjects({d.user.id: d.user for d in page}.values())
        for device in page:
            if engine.refusal(subjects[device.user.id], REQUIRED) is None:
                counts[getattr(device, by)] += 1
        after = page[-1].id
    minimum = current_app.config["STATS_MIN_GROUP_SIZE"]
    groups = [{"value": value, "count": n} for value, n in counts.most_common() if n >= minimum]
    suppressed = sum(n for n in counts.values() if n < minimum)
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
