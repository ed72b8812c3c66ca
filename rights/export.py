"""The right to see everything held about the user, in a portable form (policy §5)."""
import json
from datetime import date, datetime, timezone

import consent
from consent import receipts
from models.account import AuthSession
from models.base import utcnow
from models.consent import GuardianConsent, LedgerEntry
from models.device import GATED_DEVICE_FIELDS, OS_PERMISSION_COLUMNS, Device, DeviceReport, Location, PushToken
from models.push import Campaign, Delivery

FORMAT_VERSION = 1
PAGE = 2000
REPORTED = ("app_version", *GATED_DEVICE_FIELDS)


def _plain(value):
    if isinstance(value, datetime):  # naive values are UTC; either way written with Z, as the API writes them
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
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


def profile(user):
    if user.is_installation:
        return {"id": user.id, "kind": user.kind, "installation_id": user.installation_id,
                "created_at": user.created_at, "last_seen_at": user.last_seen_at}
    return {"id": user.id, "email": user.email, "phone": user.phone, "birth_date": user.birth_date,
            "role": user.role, "created_at": user.created_at}


def devices(user):
    """The user's devices as stored, as the export shows them."""
    return Device.select(
        Device.id, Device.installation_id, Device.platform, *[getattr(Device, name) for name in REPORTED],
        *[getattr(Device, column) for column in OS_PERMISSION_COLUMNS.values()],
        Device.created_at, Device.last_seen_at).where(Device.user == user).order_by(Device.created_at).dicts()


def _sections(user):
    """(name, single value or row iterator) in export order."""
    yield "profile", profile(user)
    yield "consents", consent.overview(user)
    yield "ledger", _paged(
        LedgerEntry.select(LedgerEntry.id, LedgerEntry.permission, LedgerEntry.granted, LedgerEntry.policy_version,
                           LedgerEntry.source, LedgerEntry.reason, LedgerEntry.device_id, LedgerEntry.ip,
                           LedgerEntry.user_agent, LedgerEntry.created_at, LedgerEntry.hash, LedgerEntry.adopted_from)
        .where(LedgerEntry.user == user), LedgerEntry.id)
    yield "consent_receipts", receipts.of_subject(user.ledger_subject)
    yield "guardian_consents", GuardianConsent.select(
        GuardianConsent.guardian_name, GuardianConsent.relationship, GuardianConsent.evidence_ref,
        GuardianConsent.recorded_at, GuardianConsent.revoked_at).where(GuardianConsent.user == user).dicts()
    yield "devices", devices(user)
    yield "push_tokens", (
        PushToken.select(PushToken.device, PushToken.token, PushToken.provider, PushToken.notifications_enabled,
                         PushToken.updated_at)
        .join(Device).where(Device.user == user).dicts())
    yield "device_reports", _paged(
        DeviceReport.select(DeviceReport.id, DeviceReport.device, *[getattr(DeviceReport, name) for name in REPORTED],
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
    yield "sessions", AuthSession.select(
        AuthSession.id, AuthSession.device, AuthSession.address, AuthSession.created_at, AuthSession.refreshed_at,
        AuthSession.expires_at, AuthSession.revoked_at).where(AuthSession.user == user).order_by(
        AuthSession.created_at).dicts()
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
