"""Campaigns as operators see them: create, preview, send, cancel, resume,
status; service notifications to one user; one-click unsubscribe."""
import base64
import binascii
import os
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from consent import engine
from consent.ledger import ChangeContext
from errors import ApiError, Conflict, ServiceUnavailable
from models.account import User
from models.device import Device
from models.base import utcnow, write_transaction
from models.push import Campaign, CampaignExclusion, CampaignSlice, Delivery
from push import audience, sender, tasks

UNSUBSCRIBE_SALT = "marketing-unsubscribe"


def create(data, admin):
    return Campaign.create(
        name=data["name"], kind=data["kind"], title=data["title"], body=data["body"],
        data=data.get("data") or {}, audience=data.get("audience") or {}, send_at=data.get("send_at"),
        created_by=admin, created_at=utcnow(),
    )


def send(campaign):
    """Start now, or schedule for ``send_at``."""
    if campaign.status != Campaign.DRAFT:
        raise Conflict(f"The campaign is {campaign.status}; only a draft can be sent.", code="not_a_draft")
    if campaign.send_at and campaign.send_at > utcnow():
        Campaign.update(status=Campaign.SCHEDULED).where(Campaign.id == campaign.id).execute()
        tasks.resume_campaigns_task.schedule(eta=campaign.send_at)
        return
    tasks.start(campaign.id)


def cancel(campaign):
    """Stop what has not been sent: pending deliveries are cancelled and no
    slice sends again."""
    if campaign.status in (Campaign.COMPLETED, Campaign.CANCELLED):
        raise Conflict(f"The campaign is already {campaign.status}.", code="already_finished")
    with write_transaction():
        Campaign.update(status=Campaign.CANCELLED, finished_at=utcnow()).where(Campaign.id == campaign.id).execute()
        Delivery.update(status=Delivery.CANCELLED, reason="campaign_cancelled", updated_at=utcnow()).where(
            (Delivery.campaign == campaign.id) & (Delivery.status == Delivery.PENDING)).execute()


def resume(campaign):
    """After a pause (e.g. credentials fixed): send the rest."""
    if campaign.status != Campaign.PAUSED:
        raise Conflict("Only a paused campaign can be resumed.", code="not_paused")
    Campaign.update(status=Campaign.SENDING, paused_reason=None).where(Campaign.id == campaign.id).execute()
    if not campaign.planned:
        tasks.plan_campaign(campaign.id)
    pending = CampaignSlice.select(CampaignSlice.id).where(
        (CampaignSlice.campaign == campaign.id) & (CampaignSlice.status == CampaignSlice.PENDING))
    for part in pending:
        tasks.queue_slice(campaign.id, part.id)


def status(campaign):
    counts = Delivery.counts(campaign)
    excluded = sum(CampaignExclusion.counts(campaign).values())
    return {
        "targeted": sum(counts.values()) + excluded,
        "sent": counts.get(Delivery.SENT, 0),
        "failed": counts.get(Delivery.FAILED, 0),
        "skipped": counts.get(Delivery.SKIPPED, 0) + counts.get(Delivery.CANCELLED, 0) + excluded,
        "invalid_tokens": counts.get(Delivery.INVALID_TOKEN, 0),
        "unknown": counts.get(Delivery.UNKNOWN, 0),
        "pending": counts.get(Delivery.PENDING, 0) + counts.get(Delivery.CLAIMED, 0),
    }


def preview(campaign):
    return audience.preview(campaign)


# -- service notifications -----------------------------------------------------------

class PushUnavailable(ServiceUnavailable):
    code = "push_unavailable"

    def __init__(self, campaign):
        super().__init__("The push provider cannot send; the notification is paused until it is resumed.",
                         details={"campaign_id": campaign.id, "reason": campaign.paused_reason})


def notify_user(user, title, body, data, admin):
    """A service notification to one user's devices, sent within the
    request (a user has few devices); transient failures are retried by the
    worker. Returns the campaign; ``PushUnavailable`` when it was paused."""
    now = utcnow()
    campaign = Campaign.create(name=f"notification to {user.id}", kind="service", title=title, body=body,
                               data=data or {}, target_user=user, created_by=admin, created_at=now,
                               status=Campaign.SENDING, started_at=now, planned=True)
    ids = audience.candidate_ids(campaign, None, sender.BATCH)
    if ids:
        part = CampaignSlice.create(campaign=campaign, after=None, upto=ids[-1])
        outcome = sender.run_slice(campaign.id, part.id)
        if outcome is not None and outcome.kind == "later":
            tasks.send_slice.schedule(args=(campaign.id, part.id), delay=outcome.delay)
    else:
        sender.complete_if_finished(campaign.id)
    campaign = Campaign.get_by_id(campaign.id)
    if campaign.status == Campaign.PAUSED:
        raise PushUnavailable(campaign)
    return campaign


def notification_summary(campaign, user):
    """How many of the user's devices the notification reached, and why the
    others were not."""
    skipped = CampaignExclusion.counts(campaign)
    considered = sum(skipped.values())
    for delivery in Delivery.select(Delivery.status, Delivery.reason).where(Delivery.campaign == campaign.id):
        considered += 1
        if delivery.status not in (Delivery.SENT, Delivery.PENDING, Delivery.CLAIMED):
            key = delivery.reason or delivery.status
            skipped[key] = skipped.get(key, 0) + 1
    without_token = Device.select().where(Device.user == user).count() - considered
    if without_token > 0:
        skipped["no_push_token"] = without_token
    counts = status(campaign)
    return {"campaign_id": campaign.id, "reached": counts["sent"], "pending": counts["pending"], "skipped": skipped}


def notify_policy(policy, admin):
    """Tell users with service_push about a new policy version."""
    campaign = Campaign.create(
        name=f"policy {policy.version}", kind="service", title="Our privacy policy has changed",
        body=f"Version {policy.version} is in effect. Review your choices under Privacy in the app.",
        data={"type": "policy_update", "policy_version": policy.version}, created_by=admin, created_at=utcnow(),
    )
    tasks.start(campaign.id)
    return campaign


# -- one-click unsubscribe ---------------------------------------------------------------
# A link names one grant of marketing_push and when it was issued, sealed
# (AES-GCM under a key derived from SECRET_KEY) so that neither the push
# service nor anyone who sees the message can tell whose it is, or link two
# messages to one person. Layout: version, nonce, then the sealed
# (user id, grant time in microseconds, issue time in seconds).

LINK_VERSION = b"\x01"
_LINK = struct.Struct(">16sqI")
_NONCE_BYTES = 12
_SEALED_BYTES = len(LINK_VERSION) + _NONCE_BYTES + _LINK.size + 16  # AES-GCM tag
_EPOCH = datetime(1970, 1, 1)


def _cipher():
    app = current_app._get_current_object()
    secret = app.config["SECRET_KEY"]
    cached = app.extensions.get("unsubscribe_cipher")
    if cached is None or cached[0] != secret:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=UNSUBSCRIBE_SALT.encode()).derive(secret.encode())
        cached = app.extensions["unsubscribe_cipher"] = (secret, AESGCM(key))
    return cached[1]


def _micros(moment):
    return (moment - _EPOCH) // timedelta(microseconds=1)


def unsubscribe_token(user_id, granted_at, issued_at=None):
    """The link of a marketing push to ``user_id``, sent under the grant of
    marketing_push made at ``granted_at``."""
    issued_at = issued_at or utcnow()
    plain = _LINK.pack(uuid.UUID(str(user_id)).bytes, _micros(granted_at or _EPOCH),
                       int((issued_at - _EPOCH).total_seconds()))
    nonce = os.urandom(_NONCE_BYTES)
    sealed = LINK_VERSION + nonce + _cipher().encrypt(nonce, plain, LINK_VERSION)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


@dataclass(frozen=True)
class UnsubscribeLink:
    user_id: uuid.UUID
    granted_at: datetime
    issued_at: datetime


class InvalidUnsubscribeToken(ApiError):
    status, code, message = 400, "invalid_token", "This unsubscribe link is not valid."


class ExpiredUnsubscribeLink(ApiError):
    status, code = 410, "link_expired"
    message = ("This unsubscribe link has expired or a later choice replaced it. "
               "Choose which notifications you get under Privacy in the app.")


def _unseal(token):
    if len(token) > 2 * _SEALED_BYTES:
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(sealed) != _SEALED_BYTES or not sealed.startswith(LINK_VERSION):
        return None
    nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
    try:
        return _cipher().decrypt(nonce, body, LINK_VERSION)
    except InvalidTag:
        return None


def _is_unbound_link(token):
    """A link of the first form (signed, user id readable, bound to no
    grant and no date): it could withdraw any later grant, so it only expires."""
    try:
        URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT).loads(token)
    except (BadData, ValueError):
        return False
    return True


def read_unsubscribe_token(token):
    """The link's contents. A link this server did not issue answers
    ``invalid_token``; one older than ``UNSUBSCRIBE_TOKEN_DAYS`` (decided
    from the link alone, whoever it names) answers ``link_expired``."""
    plain = _unseal(token)
    if plain is None:
        raise ExpiredUnsubscribeLink() if _is_unbound_link(token) else InvalidUnsubscribeToken()
    user, granted, issued = _LINK.unpack(plain)
    link = UnsubscribeLink(uuid.UUID(bytes=user), _EPOCH + timedelta(microseconds=granted),
                           _EPOCH + timedelta(seconds=issued))
    if utcnow() - link.issued_at > timedelta(days=current_app.config["UNSUBSCRIBE_TOKEN_DAYS"]):
        raise ExpiredUnsubscribeLink()
    return link


def _link_user(link):
    """The link's user; an erased one answers as a link never issued does."""
    user = User.get_or_none(User.id == link.user_id)
    if user is None:
        raise InvalidUnsubscribeToken()
    return user


def describe_unsubscribe(token):
    """Check the link as ``unsubscribe`` would, changing nothing."""
    link = read_unsubscribe_token(token)
    user = _link_user(link)
    if engine.grant_status(engine.subject_for(user), "marketing_push", link.granted_at) == engine.SUPERSEDED:
        raise ExpiredUnsubscribeLink()


def unsubscribe(token, context):
    """Withdraw the grant of marketing_push the link was sent under, and
    only that one; a second use finds it withdrawn and changes nothing."""
    link = read_unsubscribe_token(token)
    user = _link_user(link)
    if engine.withdraw_grant(user, "marketing_push", link.granted_at, context) == engine.SUPERSEDED:
        raise ExpiredUnsubscribeLink()


def unsubscribe_context(request):
    return ChangeContext(source="unsubscribe_link", ip=request.remote_addr,
                         user_agent=request.user_agent.string or None)


# -- withdrawal effects: queued pushes of a withdrawn kind are not sent ----------------

def cancel_queued_marketing(user, decisions):
    Delivery.cancel_open_for_user(user, "marketing")


def cancel_queued_service(user, decisions):
    Delivery.cancel_open_for_user(user, "service")


def register_effects(effects):
    """Withdrawing a push permission cancels the queued pushes of its kind."""
    effects.register("marketing_push", cancel_queued_marketing)
    effects.register("service_push", cancel_queued_service)
