"""Sending one slice of a campaign: consent re-checked at send time, each
delivery claimed before it is sent (at most once), results recorded, token
lifecycle, retries with backoff and jitter, and a pause on configuration
faults."""
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from peewee import Case, fn

from consent import engine
from models.account import User
from models.base import is_postgres, utcnow, write_transaction
from models.device import Device, PushToken
from models.push import Campaign, CampaignExclusion, CampaignSlice, Delivery
from push import audience, providers
from push.providers import Message

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = providers.MAX_BATCH_SIZE


@dataclass
class Outcome:
    """How a slice run ended: ``done``, ``later`` (retry after ``delay``
    seconds), ``paused``, or ``stopped`` (campaign no longer sending)."""

    kind: str
    delay: float = 0.0


def provider():
    """The app's push provider, built once per process."""
    app = current_app._get_current_object()
    if "push_provider" not in app.extensions:
        app.extensions["push_provider"] = providers.build_provider(app.config)
    return app.extensions["push_provider"]


class RateLimit:
    """``PUSH_RATE_PER_MINUTE`` across every worker sharing the storage
    (Redis when configured, this process otherwise)."""

    def __init__(self, config):
        self.limit = parse_limit(f"{config['PUSH_RATE_PER_MINUTE']} per minute")
        self.limiter = MovingWindowRateLimiter(storage_from_string(config["REDIS_URL"] or "memory://"))

    def acquire(self, count):
        while not self.limiter.hit(self.limit, "push-messages", cost=count):
            reset = self.limiter.get_window_stats(self.limit, "push-messages").reset_time
            time.sleep(min(max(reset - time.time(), 0.05), 5))


def rate_limit():
    app = current_app._get_current_object()
    if "push_rate_limit" not in app.extensions:
        app.extensions["push_rate_limit"] = RateLimit(app.config)
    return app.extensions["push_rate_limit"]


def backoff(attempt, retry_after=None):
    """Exponential with full jitter, never sooner than ``Retry-After``."""
    config = current_app.config
    ceiling = min(config["PUSH_RETRY_MAX_SECONDS"], config["PUSH_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def message_data(campaign, user):
    from push.campaigns import unsubscribe_token

    data = {**(campaign.data or {}), "campaign_id": str(campaign.id)}
    if campaign.kind == "marketing":
        data["unsubscribe_token"] = unsubscribe_token(user, campaign)
    return data


# -- one slice ------------------------------------------------------------------

def run_slice(campaign_id, slice_id):
    """Send the slice if its lease can be had; returns the Outcome (or None
    when another run holds it or it is finished)."""
    lease = current_app.config["PUSH_SLICE_LEASE_SECONDS"]
    owner = uuid.uuid4().hex
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None or campaign.status != Campaign.SENDING:
        return Outcome("stopped")
    if not CampaignSlice.acquire(slice_id, owner, lease):
        return None
    part = CampaignSlice.get_by_id(slice_id)
    try:
        # Claims a previous run left behind may or may not have been sent:
        # at most once means they are never sent again.
        Delivery.update(status=Delivery.UNKNOWN, reason="worker_lost", updated_at=utcnow()).where(
            (Delivery.slice == part.id) & (Delivery.status == Delivery.CLAIMED)).execute()
        if not part.materialized:
            materialize(campaign, part)
        outcome = send_pending(campaign, part, owner, lease)
    except Exception:
        CampaignSlice.abandon(slice_id, owner)
        raise
    CampaignSlice.release(slice_id, owner, done=outcome.kind == "done")
    if outcome.kind == "done":
        complete_if_finished(campaign.id)
    return outcome


def materialize(campaign, part):
    """A pending delivery for each device of the slice the campaign may
    reach now; the others are counted by reason. Runs once per slice."""
    now = utcnow()
    rows, excluded = [], {}
    for device in audience.slice_audience(campaign, part.after, part.upto, now):
        if device.reason is None:
            rows.append({"campaign": campaign.id, "slice": part.id, "device": device.id, "user": device.user_id,
                         "status": Delivery.PENDING, "created_at": now, "updated_at": now})
        else:
            excluded[device.reason] = excluded.get(device.reason, 0) + 1
    with write_transaction():
        taken = CampaignSlice.update(materialized=True).where(
            (CampaignSlice.id == part.id) & ~CampaignSlice.materialized).execute()
        if taken:
            for start in range(0, len(rows), 200):
                Delivery.insert_many(rows[start:start + 200]).on_conflict_ignore().execute()
            CampaignExclusion.add(campaign.id, excluded)


def _due(part, now):
    return list(
        Delivery.select()
        .where((Delivery.slice == part.id) & (Delivery.status == Delivery.PENDING)
               & (Delivery.next_attempt_at.is_null() | (Delivery.next_attempt_at <= now)))
        .order_by(Delivery.id)
        .limit(BATCH)
    )


def _next_due(part):
    row = (Delivery.select(Delivery.next_attempt_at)
           .where((Delivery.slice == part.id) & (Delivery.status == Delivery.PENDING))
           .order_by(Delivery.next_attempt_at).first())
    return None if row is None else (row.next_attempt_at or utcnow())


def send_pending(campaign, part, owner, lease):
    inline_wait = current_app.config["PUSH_INLINE_RETRY_MAX_SECONDS"]
    while True:
        status = Campaign.select(Campaign.status).where(Campaign.id == campaign.id).scalar()
        if status != Campaign.SENDING:
            return Outcome("paused" if status == Campaign.PAUSED else "stopped")
        due = _due(part, utcnow())
        if not due:
            when = _next_due(part)
            if when is None:
                return Outcome("done")
            delay = max((when - utcnow()).total_seconds(), 0)
            if delay > inline_wait:
                return Outcome("later", delay)
            CampaignSlice.extend(part.id, owner, lease + delay)
            time.sleep(delay)
            continue
        claimed = claim(campaign, due, owner)
        if claimed:
            if send_claimed(campaign, claimed) == "paused":
                return Outcome("paused")
        CampaignSlice.extend(part.id, owner, lease)


def _lock_users(user_ids):
    if is_postgres() and user_ids:
        engine.user_locks(User.id.in_(list(user_ids)), shared=True).execute()


def claim(campaign, due, owner):
    """Under the users' consent locks: skip what consent or the filters no
    longer allow, claim the rest. Returns [(delivery, device)] claimed."""
    by_device = {d.device_id: d for d in due}
    now = utcnow()
    with write_transaction():
        _lock_users({d.user_id for d in due})
        verdicts = audience.classify(campaign, by_device, now)
        skipped = {}
        for device_id, delivery in by_device.items():
            reason = verdicts.get(device_id, "device_or_token_gone")
            if reason is not None:
                skipped.setdefault(reason, []).append(delivery.id)
        allowed = {device.id: device for device in audience.sendable(
            [device_id for device_id, reason in verdicts.items() if reason is None])}
        for reason, ids in skipped.items():
            Delivery.update(status=Delivery.SKIPPED, reason=reason, updated_at=now).where(
                Delivery.id.in_(ids) & (Delivery.status == Delivery.PENDING)).execute()
        ids = [by_device[device_id].id for device_id in allowed]
        if ids:
            Delivery.update(status=Delivery.CLAIMED, claim_owner=owner, attempts=Delivery.attempts + 1,
                            updated_at=now).where(Delivery.id.in_(ids) & (Delivery.status == Delivery.PENDING)).execute()
    claimed = Delivery.select().where(Delivery.id.in_(ids) & (Delivery.claim_owner == owner)
                                      & (Delivery.status == Delivery.CLAIMED)) if ids else []
    return [(delivery, allowed[delivery.device_id]) for delivery in claimed]


def send_claimed(campaign, claimed):
    messages = [
        Message(token=device.push.token, title=campaign.title, body=campaign.body,
                data=message_data(campaign, device.user))
        for _, device in claimed
    ]
    rate_limit().acquire(len(messages))
    results = provider().send(messages)
    return record(campaign, claimed, results)


def record(campaign, claimed, results):
    now = utcnow()
    sent_ids, message_ids = [], {}
    failed, invalid, retry, auth = {}, [], [], []
    for (delivery, device), result in zip(claimed, results):
        if result.status == providers.DELIVERED:
            sent_ids.append(delivery.id)
            message_ids[delivery.id] = (result.message_id or "")[:200]
        elif result.status == providers.TOKEN_INVALID:
            invalid.append((delivery.id, device.id, device.push.token, result.code))
        elif result.status == providers.RETRY:
            retry.append((delivery, result))
        elif result.status == providers.AUTH_ERROR:
            auth.append((delivery, result))
        else:
            failed.setdefault(result.code or "failed", []).append(delivery.id)
    with write_transaction():
        if sent_ids:
            Delivery.update(
                status=Delivery.SENT, updated_at=now,
                message_id=Case(Delivery.id, [(i, m) for i, m in message_ids.items()]),
            ).where(Delivery.id.in_(sent_ids)).execute()
        for code, ids in failed.items():
            Delivery.update(status=Delivery.FAILED, reason=code[:64], updated_at=now).where(
                Delivery.id.in_(ids)).execute()
        for delivery_id, device_id, token, code in invalid:
            Delivery.update(status=Delivery.INVALID_TOKEN, reason=(code or "")[:64], updated_at=now).where(
                Delivery.id == delivery_id).execute()
            # only the token that failed: the device may have registered a new one since
            PushToken.delete().where((PushToken.device == device_id) & (PushToken.token == token)).execute()
        for delivery, result in retry:
            if delivery.attempts >= MAX_ATTEMPTS:
                Delivery.update(status=Delivery.FAILED, reason=f"retries_exhausted:{result.code}"[:64],
                                updated_at=now).where(Delivery.id == delivery.id).execute()
            else:
                Delivery.update(
                    status=Delivery.PENDING, claim_owner=None, updated_at=now,
                    next_attempt_at=now + timedelta(seconds=backoff(delivery.attempts, result.retry_after)),
                ).where(Delivery.id == delivery.id).execute()
        if auth:
            # Not the devices' fault: put them back, unattempted, and pause.
            Delivery.update(status=Delivery.PENDING, claim_owner=None, attempts=Delivery.attempts - 1,
                            updated_at=now).where(Delivery.id.in_([d.id for d, _ in auth])).execute()
            reason = f"push provider refused our credentials ({auth[0][1].code})"
            Campaign.update(status=Campaign.PAUSED, paused_reason=reason[:200]).where(
                (Campaign.id == campaign.id) & (Campaign.status == Campaign.SENDING)).execute()
            log.error("campaign %s paused: %s", campaign.id, reason)
            return "paused"
    return "ok"


def complete_if_finished(campaign_id):
    open_slices = CampaignSlice.select().where(
        (CampaignSlice.campaign == campaign_id) & (CampaignSlice.status == CampaignSlice.PENDING))
    return (
        Campaign.update(status=Campaign.COMPLETED, finished_at=utcnow())
        .where((Campaign.id == campaign_id) & (Campaign.status == Campaign.SENDING) & Campaign.planned
               & ~fn.EXISTS(open_slices))
        .execute()
    )
