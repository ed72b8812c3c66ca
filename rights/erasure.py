"""The right to erasure (policy §5): every table that holds the user's
personal data, in one transaction, then what the deletion left on disk."""
import logging
from datetime import timedelta

from flask import current_app
from peewee import fn

import consent
from auth import audit
from auth.sessions import revoke_all_sessions
from consent import ledger
from core.worker import queued, task_context
from models.account import INSTALLATION, AuthSession, User
from models.base import checkpoint_wal, vacuum, is_postgres, utcnow, write_transaction
from models.consent import Consent, ConsentSummary, GuardianConsent, LedgerEntry
from models.device import Device, DeviceReport, Location, PushToken
from models.push import Campaign, CampaignSlice, Delivery, forget_device_boundaries

log = logging.getLogger(__name__)

# Every table erasure deletes from or updates.
ERASED_MODELS = (LedgerEntry, Delivery, Campaign, CampaignSlice, PushToken, Location, DeviceReport, Device,
                 GuardianConsent, ConsentSummary, Consent, AuthSession, User)


def erase(user, staff=None, scrub=True):
    """Delete the user's personal data from every table in one transaction,
    revoke every token, and pseudonymise the user's ledger entries (the
    chains still verify); then scrub what the deletion left on disk. The
    user may be an account or an installation. When ``staff`` erases on
    the user's request, the audit entry is written in the same transaction."""
    with write_transaction():
        consent.lock_user(user)
        if staff is not None:
            audit.record(staff, "user.erase", f"user:{user.id}")
        revoke_all_sessions(user, "erased")
        ledger.forget_personal_data(user)
        Delivery.delete().where(Delivery.user == user).execute()
        Campaign.delete().where(Campaign.target_user == user).execute()
        devices = Device.select(Device.id).where(Device.user == user)
        for device in list(devices):
            forget_device_boundaries(device.id, Device.user != user)
        PushToken.delete().where(PushToken.device.in_(devices)).execute()
        Location.delete().where(Location.user == user).execute()
        DeviceReport.delete().where(DeviceReport.user == user).execute()
        Device.delete().where(Device.user == user).execute()
        GuardianConsent.delete().where(GuardianConsent.user == user).execute()
        ConsentSummary.delete().where(ConsentSummary.user == user).execute()
        Consent.delete().where(Consent.user == user).execute()
        AuthSession.delete().where(AuthSession.user == user).execute()
        User.delete().where(User.id == user.id).execute()
    if scrub:
        scrub_deleted_rows()


def purge_inactive_installations(now=None, batch=500):
    """Erase every installation without a request for
    ``INSTALLATION_RETENTION_DAYS``, with all it holds, one transaction
    each; returns how many were erased."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["INSTALLATION_RETENTION_DAYS"])
    erased = 0
    while True:
        idle = list(User.select().where(
            (User.kind == INSTALLATION) & (fn.COALESCE(User.last_seen_at, User.created_at) < cutoff)
        ).order_by(User.id).limit(batch))
        for installation in idle:
            erase(installation, scrub=False)
        erased += len(idle)
        if len(idle) < batch:
            break
    if erased:
        scrub_deleted_rows()
    return erased


def scrub_deleted_rows():
    """Committed deletions still leave the old rows on disk: in SQLite's WAL
    while another connection keeps it open, in PostgreSQL's dead tuples
    until a VACUUM (README, "The user's rights")."""
    if is_postgres():
        vacuum_tables([model._meta.table_name for model in ERASED_MODELS])
    elif not checkpoint_wal():
        log.warning("WAL checkpoint after an erasure gave up: a reader held an older snapshot; "
                    "the erased rows stay in the WAL until the next full checkpoint")


@queued(retries=3, retry_delay=60)
def vacuum_tables(table_names):
    """After an erasure on PostgreSQL: the deleted rows stay as dead tuples
    until a VACUUM, and autovacuum waits for many more of them."""
    with task_context():
        vacuum(table_names)


def register_tasks(queue):
    """Put the erasure's clean-up task on ``queue``."""
    vacuum_tables.bind(queue)


def register_purges(register_purge):
    """What the retention purge erases: idle installations."""
    register_purge("installations", purge_inactive_installations)
