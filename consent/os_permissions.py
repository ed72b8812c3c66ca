"""The phone's own permissions narrow what consent allows on one device:
nothing is stored more precisely than the OS granted, a device whose
notifications are off is not reachable, and on iOS data is not shared with
partners unless App Tracking Transparency allows it. The one place that
combines the OS's switches (``Device.os_*``, null when never reported) with
consent, in Python and, for audiences and the location insert, in SQL."""
from consent.rules import Decision
from models.device import Device

OS_LOCATION_OFF = "os_location_off"
OS_NOTIFICATIONS_OFF = "os_notifications_off"
OS_TRACKING_OFF = "os_tracking_off"
PUSH_KEYS = ("service_push", "marketing_push")


# -- location: at most as precise as the OS granted ----------------------------------

def location_refusal(device):
    """The reason the OS refuses locations from ``device`` (``os_location_off``), or None."""
    return OS_LOCATION_OFF if device.os_location == "none" else None


def keeps_precise(device, precise_decision):
    """Whether a point from ``device`` is kept as reported: ``precise_location``
    in effect and the OS not limited to approximate location."""
    return precise_decision.effective and device.os_location in (None, "precise")


def location_allowed_sql():
    """SQL over a query's ``device`` rows: the OS lets the device report locations."""
    return Device.os_location.is_null() | (Device.os_location != "none")


def precise_allowed_sql():
    """SQL over a query's ``device`` rows: the OS gives precise locations (or said nothing)."""
    return Device.os_location.is_null() | (Device.os_location == "precise")


# -- notifications: a device the OS silences is not reachable ------------------------

def reachable(device):
    """``provisional`` (iOS quiet delivery) and ``not_determined`` still receive;
    only ``denied`` does not."""
    return device.os_notifications != "denied"


def unreachable_sql():
    """``[(condition, reason)]`` over a query's ``device`` rows, for the audience's reasons."""
    return [(Device.os_notifications == "denied", OS_NOTIFICATIONS_OFF)]


# -- tracking: partner sharing needs ATT on iOS ------------------------------------

def tracking_status(device):
    """iOS's ATT status; never reported counts as ``not_determined`` (ATT's own
    default, which allows no tracking). None off iOS, where ATT does not exist."""
    if device.platform != "ios":
        return None
    return device.os_tracking or "not_determined"


def on_device(key, decision, device):
    """``decision`` (for ``key``, from the consent engine) as it holds on ``device``."""
    if not decision.effective:
        return decision
    if key == "partner_sharing" and tracking_status(device) not in (None, "authorized"):
        return Decision(False, OS_TRACKING_OFF)
    if key in ("location", "precise_location") and location_refusal(device):
        return Decision(False, OS_LOCATION_OFF)
    if key in PUSH_KEYS and not reachable(device):
        return Decision(False, OS_NOTIFICATIONS_OFF)
    return decision


def _mismatch(permission, os, effect):
    """A permission in effect that the phone's own switch narrows on a device."""
    return {"permission": permission, "consent": "granted", "os": os, "effect": effect}


def mismatches(device, decisions):
    """``[{permission, consent, os, effect}]`` for ``device`` given ``decisions``
    (``{key: Decision}``), so the app can tell the user what the phone's settings change."""
    found = []
    if decisions["location"].effective and location_refusal(device):
        found.append(_mismatch("location", device.os_location, "not stored"))
    if decisions["precise_location"].effective and not keeps_precise(device, decisions["precise_location"]):
        effect = "not stored" if location_refusal(device) else "stored as approximate"
        found.append(_mismatch("precise_location", device.os_location, effect))
    for key in PUSH_KEYS:
        if decisions[key].effective and not reachable(device):
            found.append(_mismatch(key, device.os_notifications, "not sent"))
    if on_device("partner_sharing", decisions["partner_sharing"], device).reason == OS_TRACKING_OFF:
        found.append(_mismatch("partner_sharing", tracking_status(device), "not in effect"))
    return found


def device_mismatches(devices, decisions):
    """``[{device_id, mismatches}]`` for each of ``devices``, in their order."""
    return [{"device_id": device.id, "mismatches": mismatches(device, decisions)} for device in devices]
