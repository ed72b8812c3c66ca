"""The user's rights (policy section 5): see everything held about them in a
portable form, correct it, and erase it."""
import json
import logging
from datetime import date, datetime

import tasks

from consent import engine, ledger
from consent.ledger import ChangeContext
from errors import Conflict
from models.account import AuthSession, User
from models.base import checkpoint_wal, is_postgres, utcnow, write_transaction
from models.consent import Consent, ConsentSummary, GuardianConsent, LedgerEntry
from models.device import GATED_DEVICE_FIELDS, Device, DeviceReport, Location, PushToken
from models.push import Campaign, CampaignSlice, Delivery, forget_device_boundaries
from security import revoke_all_sessions

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PAGE = 2000
# Every table erasure deletes from or updates.
ERASED_MODELS = (LedgerEntry, Delivery, Campaign, CampaignSlice, PushToken, Location, DeviceReport, Device,
                 GuardianConsent, ConsentSummary, Consent, AuthSession, User)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _dumps(value):
    return json.dumps(value, default=_plain, ensure_ascii=False, separators=(",", ":"))


def _paged(query, key):
    """Rows of ``query`` in pages by ``key``: a long history never sits in memory."""
    after = None
    while True:
        page = query.where(key > after) if after is not None else query
        rows = list(page.order_by(key).limit(PAGE).dicts())
        if not rows:
            return
        yield from rows
        after = rows[-1][key.name]


def _profile(user):
    return {"id": user.id, "email": user.email, "phone": user.phone, "birth_date": user.birth_date,
            "role": user.role, "created_at": user.created_at}


def _sections(user):
    """(name, single value or row iterator) in export order."""
    reported = ("app_version", *GATED_DEVICE_FIELDS)
    yield "profile", _profile(user)
    yield "consents", engine.overview(user)
    yield "ledger", _paged(
        LedgerEntry.select(LedgerEntry.id, LedgerEntry.permission, LedgerEntry.granted, LedgerEntry.policy_version,
                           LedgerEntry.source, LedgerEntry.reason, LedgerEntry.device_id, LedgerEntry.ip,
                           LedgerEntry.user_agent, LedgerEntry.created_at, LedgerEntry.hash)
        .where(LedgerEntry.user == user), LedgerEntry.id)
    yield "guardian_consents", GuardianConsent.select(
        GuardianConsent.guardian_name, GuardianConsent.relationship, GuardianConsent.evidence_ref,
        GuardianConsent.recorded_at, GuardianConsent.revoked_at).where(GuardianConsent.user == user).dicts()
    yield "devices", Device.select(
        Device.id, Device.installation_id, Device.platform, *[getattr(Device, name) for name in reported],
        Device.created_at, Device.last_seen_at).where(Device.user == user).dicts()
    yield "push_tokens", (
        PushToken.select(PushToken.device, PushToken.token, PushToken.provider, PushToken.notifications_enabled,
                         PushToken.updated_at)
        .join(Device).where(Device.user == user).dicts())
    yield "device_reports", _paged(
        DeviceReport.select(DeviceReport.id, DeviceReport.device, *[getattr(DeviceReport, name) for name in reported],
                            DeviceReport.created_at)
        .where(DeviceReport.user == user), DeviceReport.id)
    yield "locations", _paged(
        Location.select(Location.id, Location.device, Location.latitude, Location.longitude, Location.precision,
                        Location.geohash, Location.accuracy_m, Location.captured_at)
        .where(Location.user == user), Location.id)
    yield "deliveries", _paged(
        Delivery.select(Delivery.id, Campaign.name.alias("campaign"), Campaign.kind, Campaign.title,
                        Delivery.device, Delivery.status, Delivery.updated_at.alias("time"))
        .join(Campaign).where(Delivery.user == user), Delivery.id)
    yield "unsubscribes", LedgerEntry.select(LedgerEntry.created_at, LedgerEntry.policy_version).where(
        (LedgerEntry.user == user) & (LedgerEntry.source == "unsubscribe_link")).order_by(LedgerEntry.id).dicts()


def export(user):
    """The export document as a stream of JSON text chunks."""
    yield '{"format_version":%d,"exported_at":%s' % (FORMAT_VERSION, _dumps(utcnow()))
    for name, value in _sections(user):
        if isinstance(value, dict):
            yield ",%s:%s" % (_dumps(name), _dumps(value))
            continue
        yield ",%s:[" % _dumps(name)
        buffer, first = [], True
        for row in value:
            buffer.append(("" if first else ",") + _dumps(row))
            first = False
            if len(buffer) >= 500:
                yield "".join(buffer)
                buffer = []
        yield "".join(buffer) + "]"
    yield "}"


def correct(user, changes, context):
    """Correct email, phone or birth date. A birth-date change re-evaluates
    minor status at once: what stops being in effect is withdrawn with a
    ``system`` ledger entry giving the reason, and a grant made while a rule
    refused it stays out of effect (``reconfirm``), with a ``system`` entry
    saying so."""
    with write_transaction():
        engine.lock_user(user)
        before = engine.decide_all(engine.load_subjects([user])[user.id])
        if "email" in changes:
            normalized = User.normalize_email(changes["email"])
            taken = User.select().where((User.email_normalized == normalized) & (User.id != user.id)).exists()
            if taken:
                raise Conflict("This email is already registered.", code="email_taken",
                               details={"email": ["Already registered."]})
            user.email, user.email_normalized = changes["email"].strip(), normalized
        if "phone" in changes:
            user.phone = changes["phone"]
        if "birth_date" in changes:
            user.birth_date = changes["birth_date"]
        user.save()
        stopped = engine.reevaluate(user, context, before) if "birth_date" in changes else []
    return stopped


def erase(user):
    """Delete the user's personal data from every table in one transaction,
    revoke every token, and pseudonymise the user's ledger entries (the
    chains still verify); then scrub what the deletion left on disk."""
    with write_transaction():
        engine.lock_user(user)
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
    scrub_deleted_rows()


def scrub_deleted_rows():
    """Committed deletions still leave the old rows on disk: in SQLite's WAL
    while another connection keeps it open, in PostgreSQL's dead tuples
    until a VACUUM (README, "The user's rights")."""
    if is_postgres():
        tasks.vacuum_tables([model._meta.table_name for model in ERASED_MODELS])
    elif not checkpoint_wal():
        log.warning("WAL checkpoint after an erasure gave up: a reader held an older snapshot; "
                    "the erased rows stay in the WAL until the next full checkpoint")


def system_context():
    return ChangeContext(source="system")
