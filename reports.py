"""What the app reports (devices, snapshots, push tokens, locations), stored
only as far as the consent engine allows, and what withdrawal removes."""
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
import geo
from consent import engine
from errors import Conflict
from models.base import utcnow, write_transaction
from models.device import GATED_DEVICE_FIELDS, Device, DeviceReport, Location, PushToken

ALWAYS_KEPT = ("installation_id", "platform", "app_version")


@dataclass
class Gated:
    """The fields a report may keep, and those it dropped with the reason."""

    values: dict = field(default_factory=dict)
    stored: list = field(default_factory=list)
    dropped: dict = field(default_factory=dict)


def gate_device_fields(user, data):
    decision = engine.check(user, "device_info")
    gated = Gated()
    for name in ALWAYS_KEPT:
        if data.get(name) is not None:
            gated.values[name] = data[name]
            gated.stored.append(name)
    if "app_version" in gated.values:
        gated.values["app_version_num"] = Device.version_number(gated.values["app_version"])
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
    with engine.consent_held(user):
        gated = gate_device_fields(user, data)
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
    """A device-details snapshot: kept as history and applied to the device."""
    with engine.consent_held(user):
        gated = gate_device_fields(user, data)
        history = {k: v for k, v in gated.values.items() if k != "app_version_num"}
        report = DeviceReport.create(device=device, user=user, created_at=utcnow(), **history)
        _update_device(device, gated.values)
    return report, gated


def delete_device(device):
    with write_transaction():
        device.delete_instance()  # its token, reports and locations go by cascade


# -- push tokens ----------------------------------------------------------------

def set_push_token(user, device, token, provider, notifications_enabled):
    """Store the device's token. The same token on another device row (another
    account signed in on the same phone) moves here, so pushes for the first
    account stop reaching this phone."""
    with engine.consent_held(user):
        engine.require_push(user)
        PushToken.delete().where((PushToken.token == token) & (PushToken.device != device.id)).execute()
        now = utcnow()
        (
            PushToken.insert(device=device, token=token, provider=provider,
                             notifications_enabled=notifications_enabled, created_at=now, updated_at=now)
            .on_conflict(
                conflict_target=[PushToken.device],
                update={PushToken.token: token, PushToken.provider: provider,
                        PushToken.notifications_enabled: notifications_enabled, PushToken.updated_at: now},
            )
            .execute()
        )
    return PushToken.get(PushToken.device == device)


def remove_push_token(device):
    return PushToken.delete().where(PushToken.device == device).execute()


# -- locations -----------------------------------------------------------------

def _location_row(user, device, item, precise):
    place = geo.as_reported if precise else geo.coarsen
    latitude, longitude, geohash = place(item["latitude"], item["longitude"])
    return {
        "device": device.id,
        "user": user.id,
        "latitude": latitude,
        "longitude": longitude,
        "geohash": geohash,
        "precision": "precise" if precise else "approximate",
        "accuracy_m": item.get("accuracy_m") if precise else None,
        "captured_at": item["captured_at"],
        "received_at": utcnow(),
    }


def _precision_allowed(user):
    """403 unless ``location`` is in effect; whether to keep it precise."""
    engine.require(user, "location")
    return engine.is_effective(user, "precise_location")


def store_location(user, device, item):
    """Returns (location, created). A retry of the same (device, captured_at)
    answers the stored row instead of storing a second one."""
    with engine.consent_held(user):
        precise = _precision_allowed(user)
        row = _location_row(user, device, item, precise)
        inserted = list(Location.insert(**row).on_conflict_ignore().returning(Location.id).execute())
        if not inserted:
            return Location.get((Location.device == device) & (Location.captured_at == item["captured_at"])), False
    return Location(id=inserted[0].id, **row), True


def store_locations(user, device, items):
    """A batch of already-validated items (``None`` where an item was
    invalid); consent is checked once. Returns a status per item."""
    statuses = ["rejected" if item is None else None for item in items]
    with engine.consent_held(user):
        precise = _precision_allowed(user)
        times = {item["captured_at"] for item in items if item is not None}
        taken = {
            row.captured_at
            for chunk in _chunks(sorted(times), 250)
            for row in Location.select(Location.captured_at).where(
                (Location.device == device) & Location.captured_at.in_(chunk))
        }
        rows = []
        for index, item in enumerate(items):
            if item is None:
                continue
            if item["captured_at"] in taken:
                statuses[index] = "duplicate"
                continue
            taken.add(item["captured_at"])
            rows.append(_location_row(user, device, item, precise))
            statuses[index] = "stored"
        for chunk in _chunks(rows, 100):
            Location.insert_many(chunk).on_conflict_ignore().execute()
    return statuses, "precise" if precise else "approximate"


def _chunks(values, size):
    for start in range(0, len(values), size):
        yield values[start:start + size]


# -- withdrawal effects (DESIGN.md, "Withdrawal effects") ----------------------------

@engine.on_withdrawal("location")
def delete_locations(user, decisions):
    Location.delete_for_user(user)


@engine.on_withdrawal("precise_location")
def coarsen_locations(user, decisions):
    for geohash in Location.precise_cells(user):
        latitude, longitude = geo.cell_centre(geohash)
        (
            Location.update(latitude=latitude, longitude=longitude, precision="approximate", accuracy_m=None)
            .where((Location.user == user) & (Location.geohash == geohash) & (Location.precision == "precise"))
            .execute()
        )


@engine.on_withdrawal("device_info")
def forget_device_details(user, decisions):
    Device.blank_gated_fields(user)
    DeviceReport.delete().where(DeviceReport.user == user).execute()


@engine.on_withdrawal("service_push")
@engine.on_withdrawal("marketing_push")
def delete_push_tokens_without_push_consent(user, decisions):
    if not engine.may_hold_push_token(decisions):
        PushToken.delete_for_user(user)


# -- retention -------------------------------------------------------------------

def purge_expired(now=None, batch=5000):
    """Delete locations older than ``LOCATION_RETENTION_DAYS`` and device
    reports older than ``DEVICE_REPORT_RETENTION_DAYS``; returns counts."""
    now = now or utcnow()
    config = current_app.config
    return {
        "locations": _delete_older(Location, Location.captured_at,
                                   now - timedelta(days=config["LOCATION_RETENTION_DAYS"]), batch),
        "device_reports": _delete_older(DeviceReport, DeviceReport.created_at,
                                        now - timedelta(days=config["DEVICE_REPORT_RETENTION_DAYS"]), batch),
    }


def _delete_older(model, column, cutoff, batch):
    """In batches, so that a large purge never holds long locks."""
    total = 0
    while True:
        with write_transaction():
            ids = [row.id for row in model.select(model.id).where(column < cutoff).limit(batch)]
            if not ids:
                return total
            total += model.delete().where(model.id.in_(ids)).execute()
