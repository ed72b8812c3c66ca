"""Locations: stored approximate (a geohash-5 cell centre) or, with
``precise_location`` and a phone that grants precise location, as sent;
refused when the phone grants none; removed or coarsened on withdrawal."""
from contextlib import contextmanager
from datetime import date
from functools import lru_cache

from peewee import SQL, Case, Select, Value

import consent
from collection import geohash as geo
from consent import os_permissions
from core import metrics
from core.errors import Conflict, ConsentRequired
from models.account import User
from models.base import Rendered, insert_rows, is_postgres, one_of, slot, utcnow, write_transaction
from models.device import Device, Location

LOCATION_COLUMNS = ("device", "user", "latitude", "longitude", "geohash", "precision", "accuracy_m", "captured_at",
                    "received_at")


def _location_row(user_id, device_id, item, precise):
    place = geo.as_reported if precise else geo.coarsen
    latitude, longitude, geohash = place(item["latitude"], item["longitude"])
    return {
        "device": device_id,
        "user": user_id,
        "latitude": latitude,
        "longitude": longitude,
        "geohash": geohash,
        "precision": "precise" if precise else "approximate",
        "accuracy_m": item.get("accuracy_m") if precise else None,
        "captured_at": item["captured_at"],
        "received_at": utcnow(),
    }


def store_location_at_once(user_id, device_id, item):
    """The usual report in one statement: stored when the device is the
    user's, ``location`` is in effect, the phone grants location access and
    (device, captured_at) is new, kept precise when ``precise_location`` is in
    effect too and the phone grants precise location, all decided by the
    database with the engine's SQL rules (``consent.effective_sql``,
    ``consent.os_permissions``). On
    PostgreSQL the statement follows a shared lock on the user in the same
    round trip, and as its own statement, for the reason ``consent_held``
    gives. Returns the stored Location, or None when anything did not hold;
    ``store_location`` then answers why."""
    precise_row, coarse_row = (_location_row(user_id, device_id, item, precise) for precise in (True, False))
    values = {"user_id": User.id.db_value(user_id), "device_id": Device.id.db_value(device_id),
              "geohash": precise_row["geohash"], "captured_at": Location.captured_at.db_value(item["captured_at"])}
    for name in ("latitude", "longitude", "accuracy_m"):
        values[f"precise_{name}"], values[f"coarse_{name}"] = precise_row[name], coarse_row[name]
    statement = _location_statement(is_postgres(), date.today())
    if is_postgres():  # received_at is the database's clock once the lock is held
        rows = statement.execute(**values).fetchall()
    else:
        with write_transaction():  # holds SQLite's write lock: from here on, consent cannot change
            rows = statement.execute(**values, received_at=Location.received_at.db_value(utcnow())).fetchall()
    if not rows:
        return None
    metrics.LOCATIONS.labels("stored").inc()
    location_id, precision, received_at = rows[0]
    row = precise_row if precision == "precise" else coarse_row
    return Location(**{**row, "id": location_id, "received_at": Location.received_at.python_value(received_at)})


@lru_cache(maxsize=4)
def _location_statement(postgres, today):
    """``store_location_at_once``'s statement, rendered once a day (the rules
    depend on the date through the age of majority)."""
    sql = consent.SqlSubject(today)
    chosen = sql.join(
        User.select(Device.id.alias("device_id"), User.id.alias("user_id"),
                    (consent.effective_sql("precise_location", sql)
                     & os_permissions.precise_allowed_sql()).alias("precise"))
        .join(Device, on=(Device.user == User.id))
    ).where((User.id == slot("user_id")) & (Device.id == slot("device_id"))
            & consent.effective_sql("location", sql) & os_permissions.location_allowed_sql()).alias("chosen")

    def by_precision(name, precise, coarse):
        return Case(None, [(chosen.c.precise, precise)], coarse).alias(name)

    columns = {
        "device": chosen.c.device_id, "user": chosen.c.user_id,
        **{name: by_precision(name, slot(f"precise_{name}").cast("double precision"),
                              slot(f"coarse_{name}").cast("double precision"))
           for name in ("latitude", "longitude", "accuracy_m")},
        "geohash": slot("geohash"),
        "precision": by_precision("precision", Value("precise"), Value("approximate")),
        # typed on PostgreSQL, where a prepared statement's parameters get no type from the target column
        "captured_at": slot("captured_at").cast("timestamp") if postgres else slot("captured_at"),
        # when the row was written, so after the lock was taken: consent was in effect at that time
        "received_at": SQL("(clock_timestamp() AT TIME ZONE 'UTC')") if postgres else slot("received_at"),
    }
    insert = (Location.insert_from(Select([chosen], list(columns.values())),
                                   [Location._meta.fields[name] for name in columns])
              .on_conflict_ignore().returning(Location.id, Location.precision, Location.received_at))
    if not postgres:
        return Rendered(insert)
    lock = consent.user_locks(User.id == slot("user_id"), shared=True)
    return Rendered(lock, insert, prepare=f"store_location_{today:%Y%m%d}")


OTHER_POINT = "A different point is already stored for this device at this time."


def _same_point(stored, item):
    """Whether ``item`` is the point ``stored`` (latitude, longitude,
    precision) holds, placed as it was stored: a retry, whatever consent
    changed since."""
    latitude, longitude, precision = stored
    place = geo.as_reported if precision == "precise" else geo.coarsen
    return place(item["latitude"], item["longitude"])[:2] == (latitude, longitude)


def _precision_allowed(user, device):
    """403 unless ``location`` is in effect and the phone grants location
    access; whether to keep points precise (consent and the phone agreeing)."""
    consent.require(user, "location")
    refusal = os_permissions.location_refusal(device)
    if refusal is not None:
        raise ConsentRequired("location", refusal)
    return os_permissions.keeps_precise(device, consent.check(user, "precise_location"))


def store_location(user, device, item):
    """Returns (location, created). A retry of the same point at the same
    (device, captured_at) answers the stored row instead of storing a second
    one; a different point at that time is 409 ``duplicate_location``."""
    with _counted_refusal(1), consent.consent_held(user):
        precise = _precision_allowed(user, device)
        row = _location_row(user.id, device.id, item, precise)
        inserted = list(Location.insert(**row).on_conflict_ignore().returning(Location.id).execute())
        if not inserted:
            metrics.LOCATIONS.labels("duplicate").inc()
            stored = Location.get((Location.device == device) & (Location.captured_at == item["captured_at"]))
            if not _same_point((stored.latitude, stored.longitude, stored.precision), item):
                raise Conflict(OTHER_POINT, code="duplicate_location", details={"captured_at": [OTHER_POINT]})
            return stored, False
    metrics.LOCATIONS.labels("stored").inc()
    return Location(id=inserted[0].id, **row), True


@contextmanager
def _counted_refusal(items):
    """Counts ``items`` locations refused when consent refuses them."""
    try:
        yield
    except ConsentRequired:
        metrics.LOCATIONS.labels("refused").inc(items)
        raise


def store_locations(user, device, items):
    """A batch of already-validated items (``None`` where an item was
    invalid); consent is checked once. Returns a status per item, the
    precision, and {index: errors} for duplicates that are not the stored
    point (a different point at a stored time)."""
    statuses = ["rejected" if item is None else None for item in items]
    differing = {}
    with _counted_refusal(len(items)), consent.consent_held(user):
        precise = _precision_allowed(user, device)
        times = {item["captured_at"] for item in items if item is not None}
        taken = {
            captured_at: (latitude, longitude, precision)
            for chunk in _chunks(sorted(times), 250)
            for (captured_at, latitude, longitude, precision) in Location.select(
                Location.captured_at, Location.latitude, Location.longitude, Location.precision).where(
                (Location.device == device) & one_of(Location.captured_at, chunk)).tuples()
        }
        rows = []
        for index, item in enumerate(items):
            if item is None:
                continue
            if item["captured_at"] in taken:
                statuses[index] = "duplicate"
                if not _same_point(taken[item["captured_at"]], item):
                    differing[index] = {"captured_at": [OTHER_POINT]}
                continue
            row = _location_row(user.id, device.id, item, precise)
            taken[item["captured_at"]] = (row["latitude"], row["longitude"], row["precision"])
            rows.append(row)
            statuses[index] = "stored"
        insert_rows(Location, rows, LOCATION_COLUMNS, ignore_conflicts=True)
    for status in ("stored", "duplicate", "rejected"):
        metrics.LOCATIONS.labels(status).inc(statuses.count(status))
    return statuses, "precise" if precise else "approximate", differing


def _chunks(values, size):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def delete_locations(user, decisions):
    Location.delete_for_user(user)


def coarsen_locations(user, decisions):
    for geohash in Location.precise_cells(user):
        latitude, longitude = geo.cell_centre(geohash)
        (
            Location.update(latitude=latitude, longitude=longitude, precision="approximate", accuracy_m=None)
            .where((Location.user == user) & (Location.geohash == geohash) & (Location.precision == "precise"))
            .execute()
        )
