"""Who a campaign reaches: devices with a push token, narrowed by the
audience filters, all decided by the database in one query. Whether consent
allows it comes from the consent engine's rules (``consent.refusal_sql``)
and what the phone's own permissions allow (``consent.os_permissions``);
this module only adds the filters."""
import math
from datetime import timedelta

from peewee import SQL, Case, fn

import consent
from consent import os_permissions
from models.account import ACCOUNT, INSTALLATION, User
from models.base import one_of, utcnow
from models.device import Device, Location, PushToken

KM_PER_DEGREE = 111.195


def area_condition(area):
    """A stored location within ``radius_km`` of the centre (equirectangular
    distance, exact enough below 1,000 km; longitudes do not wrap at 180)."""
    lat, lon, radius = area["latitude"], area["longitude"], area["radius_km"]
    kx = max(KM_PER_DEGREE * math.cos(math.radians(lat)), 1e-6)
    dlat, dlon = radius / KM_PER_DEGREE, radius / kx
    dy = (Location.latitude - lat) * KM_PER_DEGREE
    dx = (Location.longitude - lon) * kx
    return (Location.latitude.between(lat - dlat, lat + dlat) & Location.longitude.between(lon - dlon, lon + dlon)
            & ((dx * dx + dy * dy) <= radius * radius))


def _subjects_case(campaign, audience):
    """Accounts unless the audience asks for installations or both; a
    notification to one user goes to that user whatever the kind."""
    subjects = audience.get("subjects") or "accounts"
    if campaign.target_user_id is not None or subjects == "all":
        return []
    kind = ACCOUNT if subjects == "accounts" else INSTALLATION
    return [(User.kind != kind, "filter:subjects")]


def _filter_cases(campaign, sql, now):
    audience = campaign.audience or {}
    cases = _subjects_case(campaign, audience)
    if audience.get("platforms"):
        cases.append((Device.platform.not_in(audience["platforms"]), "filter:platforms"))
    if audience.get("app_version_min"):
        cases.append((Device.app_version_num < Device.version_number(audience["app_version_min"]),
                      "filter:app_version_min"))
    cases += consent.refusal_sql(consent.campaign_permissions(campaign.kind, audience), sql)
    for name, column in (("models", Device.model), ("os_names", Device.os_name), ("carriers", Device.carrier)):
        if audience.get(name):
            allowed = sorted({value.casefold() for value in audience[name]})
            cases.append((fn.LOWER(fn.COALESCE(column, "")).not_in(allowed), f"filter:{name}"))
    if audience.get("active_within_days"):
        cases.append((Device.last_seen_at < now - timedelta(days=audience["active_within_days"]),
                      "filter:active_within_days"))
    if audience.get("area"):
        near = Location.select(Location.id).where((Location.device == Device.id) & area_condition(audience["area"]))
        cases.append((~fn.EXISTS(near), "filter:area"))
    cases += os_permissions.unreachable_sql()  # the phone's own notification switch is off
    cases.append((PushToken.notifications_enabled == False, "notifications_disabled"))  # noqa: E712
    return cases


def audience_query(campaign, *columns, now=None):
    """Devices with a push token (the target user's only, for a notification
    to one user) with ``reason``: NULL when the campaign may reach the
    device now, else why not."""
    sql = consent.SqlSubject()
    reason = Case(None, _filter_cases(campaign, sql, now or utcnow()), None)
    query = (
        Device.select(*columns, reason.alias("reason"))
        .join(PushToken, on=(PushToken.device == Device.id), attr="push")
        .switch(Device)
        .join(User, on=(Device.user == User.id))
    )
    query = sql.join(query)
    if campaign.target_user_id is not None:
        query = query.where(Device.user == campaign.target_user_id)
    return query


def candidate_ids(campaign, after, limit):
    query = Device.select(Device.id).join(PushToken, on=(PushToken.device == Device.id))
    if campaign.target_user_id is not None:
        query = query.where(Device.user == campaign.target_user_id)
    if after is not None:
        query = query.where(Device.id > after)
    return [row.id for row in query.order_by(Device.id).limit(limit)]


def slice_audience(campaign, after, upto, now=None):
    """(device id, user id, reason) of the devices with a push token in ``after < id <= upto``."""
    query = audience_query(campaign, Device.id, Device.user, now=now).where(Device.id <= upto)
    if after is not None:
        query = query.where(Device.id > after)
    return query.tuples()


def classify(campaign, device_ids, now=None):
    """``{device id: (reason or None, push token)}`` for these devices, now."""
    query = audience_query(campaign, Device.id, PushToken.token, now=now).where(one_of(Device.id, device_ids))
    return {device_id: (reason, token) for device_id, token, reason in query.tuples()}


def preview(campaign):
    """``{eligible, excluded: {reason: count}}`` over the whole audience, counted by the database."""
    inner = audience_query(campaign, Device.id)
    query = inner.select_from(SQL("reason"), fn.COUNT(SQL("*")).alias("n")).group_by(SQL("reason"))
    counts = {row["reason"]: row["n"] for row in query.dicts()}
    eligible = counts.pop(None, 0)
    return {"eligible": eligible, "excluded": counts}
