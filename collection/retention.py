"""Retention: locations and device reports older than their limits are
deleted, and grants left stale past the grace period lapse; run hourly
by the worker and by ``flask --app app purge``. Other packages add what
they purge (``register_purge``: installations without activity are erased
by ``rights.erasure``), wired by ``create_app``."""
import logging
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from huey import crontab

import consent
from core.worker import queued, task_context
from models.base import db, utcnow, write_transaction
from models.device import DeviceReport, Location

log = logging.getLogger(__name__)

# name -> purge(now) returning how many rows it removed; run after the above.
_purges = {}


def register_purge(name, purge):
    """Run ``purge(now)`` with every retention purge, its count under ``name``."""
    _purges[name] = purge


def purge_expired(now=None, batch=5000):
    """Delete locations older than ``LOCATION_RETENTION_DAYS`` and device
    reports older than ``DEVICE_REPORT_RETENTION_DAYS``; returns counts."""
    now = now or utcnow()
    config = current_app.config
    counts = {
        "locations": _delete_older(Location, Location.captured_at,
                                   now - timedelta(days=config["LOCATION_RETENTION_DAYS"]), batch),
        "device_reports": _delete_older(DeviceReport, DeviceReport.created_at,
                                        now - timedelta(days=config["DEVICE_REPORT_RETENTION_DAYS"]), batch),
    }
    for name, purge in _purges.items():
        counts[name] = purge(now)
    return counts


def lapse_stale_grants_now(now=None):
    """Withdraw grants left stale for more than ``STALE_GRANT_GRACE_DAYS``;
    their withdrawal effects remove the data they covered."""
    grace = timedelta(days=current_app.config["STALE_GRANT_GRACE_DAYS"])
    return consent.lapse_stale_grants(grace, now)


def _delete_older(model, column, cutoff, batch):
    """In batches, so that a large purge never holds long locks."""
    total = 0
    while True:
        with write_transaction():
            ids = [row.id for row in model.select(model.id).where(column < cutoff).limit(batch)]
            if not ids:
                return total
            total += model.delete().where(model.id.in_(ids)).execute()


@queued(periodic=crontab(minute="7", hour="*"))
def purge_retention():
    """Enforce LOCATION_RETENTION_DAYS and DEVICE_REPORT_RETENTION_DAYS."""
    with task_context():
        counts = purge_expired()
    log.info("retention purge: %s", counts)
    return counts


@queued(periodic=crontab(minute="17", hour="*"))
def lapse_stale_grants():
    """Withdraw grants left stale past STALE_GRANT_GRACE_DAYS."""
    with task_context():
        lapsed = lapse_stale_grants_now()
    log.info("stale grants withdrawn: %d", lapsed)
    return lapsed


def register_tasks(queue):
    """Put the retention tasks on ``queue``."""
    for task in (purge_retention, lapse_stale_grants):
        task.bind(queue)


@click.command("purge")
@with_appcontext
def purge_command():
    """Delete locations and device reports past their retention; withdraw
    grants left stale past STALE_GRANT_GRACE_DAYS."""
    with db.connection_context():
        counts = purge_expired()
        lapsed = lapse_stale_grants_now()
    for name, count in counts.items():
        click.echo(f"{name}: {count} deleted")
    click.echo(f"stale grants: {lapsed} withdrawn")
