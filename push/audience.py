"""Who a campaign reaches: devices with a push token, narrowed by the
audience filters. Whether consent allows it is the consent engine's answer
(``engine.campaign_permissions`` and ``engine.refusal``); this module only
matches filters."""
import math
from datetime import timedelta

import geo
from consent import engine
from models.account import User
from models.base import utcnow
from models.device import Device, Location, PushToken

PAGE = 1000


def candidates(campaign):
    """Devices with a push token (the campaign's target user's only, for a
    notification to one user), with their token and user."""
    query = (
        Device.select(Device, PushToken, User)
        .join(PushToken, on=(PushToken.device == Device.id), attr="push")
        .switch(Device)
        .join(User, on=(Device.user == User.id))
    )
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


def _version(text):
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return ()


def _matches(value, allowed):
    return value is not None and value.casefold() in {a.casefold() for a in allowed}


def devices_in_area(device_ids, area):
    """Ids of the devices with a stored location within the area's radius."""
    if not device_ids or not area:
        return set()
    lat, lon, radius = area["latitude"], area["longitude"], area["radius_km"]
    dlat = radius / 111.0
    dlon = radius / max(111.0 * abs(math.cos(math.radians(lat))), 1e-6)
    query = Location.select(Location.device, Location.latitude, Location.longitude).where(
        Location.device.in_(list(device_ids))
        & Location.latitude.between(lat - dlat, lat + dlat)
        & Location.longitude.between(lon - dlon, lon + dlon)
    )
    return {row.device_id for row in query if geo.distance_km(lat, lon, row.latitude, row.longitude) <= radius}


def classify(campaign, devices, now=None):
    """``[(device, reason)]``: reason is None for a device the campaign may
    reach now, else why not. ``devices`` come from ``candidates``."""
    now = now or utcnow()
    audience = campaign.audience or {}
    subjects = engine.load_subjects({d.user.id: d.user for d in devices}.values())
    keys = engine.campaign_permissions(campaign.kind, audience)
    in_area = devices_in_area([d.id for d in devices], audience.get("area")) if audience.get("area") else set()
    minimum = _version(audience["app_version_min"]) if audience.get("app_version_min") else None
    results = []
    for device in devices:
        results.append((device, _reason(device, audience, keys, subjects[device.user.id], in_area, minimum, now)))
    return results


def _reason(device, audience, keys, subject, in_area, minimum, now):
    if audience.get("platforms") and device.platform not in audience["platforms"]:
        return "filter:platforms"
    if minimum and _version(device.app_version) < minimum:
        return "filter:app_version_min"
    refused = engine.refusal(subject, keys)
    if refused:
        return refused
    for name, column in (("models", "model"), ("os_names", "os_name"), ("carriers", "carrier")):
        if audience.get(name) and not _matches(getattr(device, column), audience[name]):
            return f"filter:{name}"
    days = audience.get("active_within_days")
    if days and device.last_seen_at < now - timedelta(days=days):
        return "filter:active_within_days"
    if audience.get("area") and device.id not in in_area:
        return "filter:area"
    if not device.push.notifications_enabled:
        return "notifications_disabled"
    return None


def preview(campaign):
    """``{eligible, excluded: {reason: count}}`` over the whole audience,
    walked page by page."""
    eligible, excluded, after = 0, {}, None
    while True:
        query = candidates(campaign)
        if after is not None:
            query = query.where(Device.id > after)
        page = list(query.order_by(Device.id).limit(PAGE))
        if not page:
            return {"eligible": eligible, "excluded": excluded}
        for _, reason in classify(campaign, page):
            if reason is None:
                eligible += 1
            else:
                excluded[reason] = excluded.get(reason, 0) + 1
        after = page[-1].id
