"""Periodic housekeeping run by the worker."""
import logging

from huey import crontab

import reports
from models import AuthSession
from models.base import vacuum
from worker import queued, task_context

log = logging.getLogger(__name__)


@queued(periodic=crontab(minute="7", hour="*"))
def purge_retention():
    """Enforce LOCATION_RETENTION_DAYS and DEVICE_REPORT_RETENTION_DAYS."""
    with task_context():
        counts = reports.purge_expired()
    log.info("retention purge: %s", counts)
    return counts


@queued(periodic=crontab(minute="17", hour="*"))
def lapse_stale_grants():
    """Withdraw grants left stale past STALE_GRANT_GRACE_DAYS."""
    with task_context():
        lapsed = reports.lapse_stale_grants()
    log.info("stale grants withdrawn: %d", lapsed)
    return lapsed


@queued(periodic=crontab(minute="37", hour="3"))
def purge_expired_sessions():
    """Sessions whose refresh tokens can no longer be used."""
    with task_context():
        return AuthSession.purge_expired()


@queued(retries=3, retry_delay=60)
def vacuum_tables(table_names):
    """After an erasure on PostgreSQL: the deleted rows stay as dead tuples
    until a VACUUM, and autovacuum waits for many more of them."""
    with task_context():
        vacuum(table_names)


def register_tasks(queue):
    """Put the housekeeping tasks on ``queue``."""
    for task in (purge_retention, lapse_stale_grants, purge_expired_sessions, vacuum_tables):
        task.bind(queue)
