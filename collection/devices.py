"""Devices and their reports (snapshots of details), stored only as far
as ``device_info`` allows; the phone's own permissions are kept whatever
it says (``consent.os_permissions`` needs them to honour the user's choices)."""
from dataclasses import dataclass, field

from flask import current_app

import consent
from core.errors import Conflict
from models.base import lock_value, utcnow, write_transaction
from models.device import GATED_DEVICE_FIELDS, OS_PERMISSION_COLUMNS, Device, DeviceReport

ALWAYS_KEPT = ("installation_id", "platform", "app_version")


@dataclass
class Gated:
    """The fields a report may keep, and those it dropped with the reason."""

    values: dict = field(default_factory=dict)
    stored: list = field(default_factory=list)
    dropped: dict = field(default_factory=dict)


def gate_device_fields(user, data):
    decision = consent.check(user, "device_info")
    gated = Gated()
    for name in ALWAYS_KEPT:
        if data.get(name) is not None:
            gated.values[name] = data[name]
            gated.stored.append(name)
    if "app_version" in gated.values:
        gated.values["app_version_num"] = Device.version_number(gated.values["app_version"])
    reported = {name: value for name, value in (data.get("os_permissions") or {}).items() if value is not None}
    for name, value in reported.items():  # only those reported change: the others stay as last said
        gated.values[OS_PERMISSION_COLUMNS[name]] = value
    if reported:
        gated.stored.append("os_permissions")
    for name in GATED_DEVICE_FIELDS:
        if data.get(name) is None:
            continue
        if decision.effective:
            gated.values[name] = data[name]
            gated.stored.append(name)
        else:
            gated.dropped[name] = f"device_info:{decision.reason}"
    return gated


def register_device(user, data):
    """Upsert by (user, installation_id); returns (device, created, gated)."""
    with consent.consent_held(user):
        gated = gate_device_fields(user, data)
        lock_value("devices", user.id)  # the lookup, the count and the insert as one step per user
        device = Device.get_or_none((Device.user == user) & (Device.installation_id == data["installation_id"]))
        created = device is None
        if created:
            limit = current_app.config["MAX_DEVICES_PER_USER"]
            if Device.select().where(Device.user == user).count() >= limit:
                raise Conflict(f"An account can have at most {limit} devices; delete one first.",
                               code="too_many_devices")
            device = Device.create(user=user, created_at=utcnow(), last_seen_at=utcnow(), **gated.values)
        else:
            _update_device(device, gated.values)
    return device, created, gated


def _update_device(device, values):
    values = {k: v for k, v in values.items() if k != "installation_id"}
    values["last_seen_at"] = utcnow()
    Device.update(values).where(Device.id == device.id).execute()
    for name, value in values.items():
        setattr(device, name, value)


def record_report(user, device, data):
    """A device-details snapshot: kept as history and made the device's
    current details. While ``device_info`` is in effect a detail the
    snapshot lacks is cleared (a phone without a SIM has no carrier), so
    campaign filters read what the phone last said, not an older report."""
    with consent.consent_held(user):
        gated = gate_device_fields(user, data)
        history = {k: v for k, v in gated.values.items()
                   if k != "app_version_num" and k not in OS_PERMISSION_COLUMNS.values()}
        report = DeviceReport.create(device=device, user=user, created_at=utcnow(), **history)
        current = dict(gated.values)
        if consent.is_effective(user, "device_info"):
            current = {**{name: None for name in GATED_DEVICE_FIELDS}, **current}
        _update_device(device, current)
    return report, gated


def delete_device(device):
    with write_transaction():
        device.delete_instance()  # its token, reports and locations go by cascade


def forget_device_details(user, decisions):
    Device.blank_gated_fields(user)
    DeviceReport.delete().where(DeviceReport.user == user).execute()
