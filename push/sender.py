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
from enum import Enum, StrEnum
from typing import NamedTuple

from flask import current_app
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from peewee import Case, fn

import consent
from core import metrics
from core.config import ConfigError
from models.account import User
from models.base import db, insert_rows, is_postgres, one_of, utcnow, write_transaction
from models.consent import Consent
from models.device import PushToken
from models.push import Campaign, CampaignExclusion, CampaignSlice, Delivery
from push import audience, providers
from push.providers import Message
from push.unsubscribe import unsubscribe_token

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = providers.MAX_BATCH_SIZE
DELIVERY_COLUMNS = ("campaign", "slice", "device", "user", "status", "created_at", "updated_at")


class SliceEnd(StrEnum):
    """How a slice run ended. A ``StrEnum``, so its members still equal the
    strings callers compared with before."""

    DONE = "done"  # nothing left to send in the slice
    LATER = "later"  # deliveries wait for a retry: run the slice again after ``Outcome.delay``
    PAUSED = "paused"  # the campaign is paused (provider fault, refused credentials)
    STOPPED = "stopped"  # the campaign is no longer sending (cancelled, completed, gone)


class SendEnd(Enum):
    """How sending one claimed batch ended."""

    RECORDED = "recorded"  # every result is recorded; the slice goes on
    PAUSED = "paused"  # the campaign was paused: stop the slice


@dataclass
class Outcome:
    """How a slice run ended, and for ``SliceEnd.LATER`` the seconds to wait."""

    kind: SliceEnd
    delay: float = 0.0


def register(app):
    """Check the push settings and build the provider at start-up: one that
    cannot be built stops the process (``ConfigError``) instead of failing
    every send."""
    if app.config["PUSH_RATE_PER_MINUTE"] < 1:
        raise ConfigError(f"PUSH_RATE_PER_MINUTE must be at least 1, got {app.config['PUSH_RATE_PER_MINUTE']}")
    app.extensions["push_provider"] = providers.build_provider(app.config)


def provider():
    """The app's push provider, built once per process by ``register``."""
    return current_app.extensions["push_provider"]


def provider_name():
    """The provider's name as metrics label it (``PUSH_PROVIDER``)."""
    return (current_app.config.get("PUSH_PROVIDER") or "log").strip().lower()


def provider_fault():
    """Why the provider cannot send now, or None."""
    try:
        return provider().prepare()
    except Exception as error:  # whatever it is, nothing must be claimed for it
        log.exception("the push provider failed to prepare a send")
        return f"{type(error).__name__}: {error}"


class RateLimit:
    """``PUSH_RATE_PER_MINUTE`` across every worker sharing the storage
    (Redis when configured, this process otherwise)."""

    KEY = "push-messages"
    # Other workers' messages leave the shared window at any moment.
    MAX_POLL_SECONDS = 1.0

    def __init__(self, config):
        self.limit = parse_limit(f"{config['PUSH_RATE_PER_MINUTE']} per minute")
        storage = (storage_from_string(config["REDIS_URL"], **config["REDIS_CLIENT_OPTIONS"]) if config["REDIS_URL"]
                   else storage_from_string("memory://"))
        self.limiter = MovingWindowRateLimiter(storage)

    def acquire(self, count):
        """Wait until ``count`` messages fit in the window, and take them."""
        if count > self.limit.amount:
            raise ValueError(f"{count} messages never fit in {self.limit}; send smaller batches")
        while not self.limiter.hit(self.limit, self.KEY, cost=count):
            reset = self.limiter.get_window_stats(self.limit, self.KEY).reset_time
            time.sleep(min(max(reset - time.time(), 0.05), self.MAX_POLL_SECONDS))


def rate_limit():
    app = current_app._get_current_object()
    if "push_rate_limit" not in app.extensions:
        app.extensions["push_rate_limit"] = RateLimit(app.config)
    return app.extensions["push_rate_limit"]


def batch_size():
    """Messages per provider request: a full batch, or what the rate limit
    allows in one window (a bigger batch would never get its permit)."""
    return min(BATCH, current_app.config["PUSH_RATE_PER_MINUTE"])


def backoff(attempt, retry_after=None):
    """Seconds before retry number ``attempt``: exponential with equal jitter
    (uniformly between half and all of the ceiling ``PUSH_RETRY_BASE_SECONDS
    * 2 ** (attempt - 1)``, capped at ``PUSH_RETRY_MAX_SECONDS``), never
    sooner than ``retry_after``."""
    config = current_app.config
    ceiling = min(config["PUSH_RETRY_MAX_SECONDS"], config["PUSH_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def message_data(campaign, user_id, granted_at=None):
    """``granted_at``: when the user's grant of marketing_push in effect at
    the claim was made; a marketing push's unsubscribe link is bound to it."""
    data = {**(campaign.data or {}), "campaign_id": str(campaign.id)}
    if campaign.kind == "marketing":
        data["unsubscribe_token"] = unsubscribe_token(user_id, granted_at)
    return data


# -- one slice ------------------------------------------------------------------

def run_slice(campaign_id, slice_id):
    """Send the slice if its lease can be had; returns the Outcome (or None
    when another run holds it or it is finished)."""
    lease = current_app.config["PUSH_SLICE_LEASE_SECONDS"]
    owner = uuid.uuid4().hex
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None or campaign.status != Campaign.SENDING:
        return Outcome(SliceEnd.STOPPED)
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
    CampaignSlice.release(slice_id, owner, done=outcome.kind is SliceEnd.DONE)
    metrics.FANOUT_SLICES.labels(outcome.kind.value).inc()
    if outcome.kind is SliceEnd.DONE:
        complete_if_finished(campaign.id)
    return outcome


def materialize(campaign, part):
    """A pending delivery for each device of the slice the campaign may
    reach now; the others are counted by reason. Runs once per slice."""
    now = utcnow()
    rows, excluded = [], {}
    for device_id, user_id, reason in audience.slice_audience(campaign, part.after, part.upto, now):
        if reason is None:
            rows.append({"campaign": campaign.id, "slice": part.id, "device": device_id, "user": user_id,
                         "status": Delivery.PENDING, "created_at": now, "updated_at": now})
        else:
            excluded[reason] = excluded.get(reason, 0) + 1
    with write_transaction():
        taken = CampaignSlice.update(materialized=True).where(
            (CampaignSlice.id == part.id) & ~CampaignSlice.materialized).execute()
        if taken:
            for start in range(0, len(rows), 1000):
                insert_rows(Delivery, rows[start:start + 1000], DELIVERY_COLUMNS, ignore_conflicts=True)
            CampaignExclusion.add(campaign.id, excluded)


def _due(part, now, size):
    """(delivery id, device id, user id) of the next batch to send."""
    return list(
        Delivery.select(Delivery.id, Delivery.device, Delivery.user)
        .where((Delivery.slice == part.id) & (Delivery.status == Delivery.PENDING)
               & (Delivery.next_attempt_at.is_null() | (Delivery.next_attempt_at <= now)))
        .order_by(Delivery.id)
        .limit(size)
        .tuples()
    )


def _next_due(part):
    row = (Delivery.select(Delivery.next_attempt_at)
           .where((Delivery.slice == part.id) & (Delivery.status == Delivery.PENDING))
           .order_by(Delivery.next_attempt_at).first())
    return None if row is None else (row.next_attempt_at or utcnow())


def _status(campaign):
    return Campaign.select(Campaign.status).where(Campaign.id == campaign.id).scalar()


def send_pending(campaign, part, owner, lease):
    inline_wait = current_app.config["PUSH_INLINE_RETRY_MAX_SECONDS"]
    size = batch_size()
    while True:
        status = _status(campaign)
        if status != Campaign.SENDING:
            return Outcome(SliceEnd.PAUSED if status == Campaign.PAUSED else SliceEnd.STOPPED)
        due = _due(part, utcnow(), size)
        if not due:
            when = _next_due(part)
            if when is None:
                return Outcome(SliceEnd.DONE)
            delay = max((when - utcnow()).total_seconds(), 0)
            if delay > inline_wait:
                return Outcome(SliceEnd.LATER, delay)
            CampaignSlice.extend(part.id, owner, lease + delay)
            time.sleep(delay)
            continue
        # The permit comes before the claim, so that nothing waits between
        # a claim and its request: a withdrawal committed before the claim
        # (which re-checks consent) always wins.
        rate_limit().acquire(len(due))
        if _status(campaign) != Campaign.SENDING:
            continue
        fault = provider_fault()
        if fault is not None:
            return pause(campaign, f"the push provider cannot send: {fault}")
        claimed = claim(campaign, due, owner)
        if claimed:
            if send_claimed(campaign, claimed) is SendEnd.PAUSED:
                return Outcome(SliceEnd.PAUSED)
        CampaignSlice.extend(part.id, owner, lease)


def _lock_users(user_ids):
    if is_postgres() and user_ids:
        consent.user_locks(one_of(User.id, user_ids), shared=True).execute()


class Claimed(NamedTuple):
    """A delivery claimed for sending, with what sending and recording need."""

    id: int
    attempts: int
    device_id: uuid.UUID
    user_id: uuid.UUID
    token: str
    granted_at: object = None  # of marketing_push, for the unsubscribe link


def claim(campaign, due, owner):
    """Under the users' consent locks: skip what consent or the filters no
    longer allow, claim the rest. ``due`` holds (delivery, device, user)
    ids; returns the Claimed deliveries."""
    by_device = {device_id: delivery_id for delivery_id, device_id, _ in due}
    now = utcnow()
    with write_transaction():
        _lock_users({user_id for _, _, user_id in due})
        verdicts = audience.classify(campaign, by_device, now)
        skipped, tokens = {}, {}
        for device_id, delivery_id in by_device.items():
            reason, token = verdicts.get(device_id, ("device_or_token_gone", None))
            if reason is None:
                tokens[delivery_id] = token
            else:
                skipped.setdefault(reason, []).append(delivery_id)
        for reason, ids in skipped.items():
            Delivery.update(status=Delivery.SKIPPED, reason=reason, updated_at=now).where(
                one_of(Delivery.id, ids) & (Delivery.status == Delivery.PENDING)).execute()
        if not tokens:
            return []
        claimed = (
            Delivery.update(status=Delivery.CLAIMED, claim_owner=owner, attempts=Delivery.attempts + 1, updated_at=now)
            .where(one_of(Delivery.id, tokens) & (Delivery.status == Delivery.PENDING))
            .returning(Delivery.id, Delivery.attempts, Delivery.device, Delivery.user)
            .tuples()
            .execute()
        )
        # read under the same locks as the claim: the grant the push is sent under
        granted_at = (Consent.chosen_at({row[3] for row in claimed}, "marketing_push")
                      if campaign.kind == "marketing" and claimed else {})
        return sorted(Claimed(*row, tokens[row[0]], granted_at.get(row[3])) for row in claimed)


def send_claimed(campaign, claimed):
    messages = [
        Message(token=delivery.token, title=campaign.title, body=campaign.body,
                data=message_data(campaign, delivery.user_id, delivery.granted_at))
        for delivery in claimed
    ]
    try:
        results = provider().send(messages)
    except Exception as error:  # a provider fault, not the devices'
        # Some messages may have gone out: at most once makes these unknown,
        # and the pause keeps the rest of the audience from the same fate.
        # The error's text is left out: it may quote a message, token included.
        with write_transaction():
            Delivery.update(status=Delivery.UNKNOWN, reason="provider_error", updated_at=utcnow()).where(
                one_of(Delivery.id, [delivery.id for delivery in claimed])).execute()
            pause(campaign, f"the push provider raised {type(error).__name__} while sending")
        metrics.PUSH_MESSAGES.labels(provider_name(), "unknown").inc(len(claimed))
        return SendEnd.PAUSED
    return record(campaign, claimed, results)


def pause(campaign, reason):
    """Stop sending with a reason an operator can act on; resuming sends what is left."""
    Campaign.update(status=Campaign.PAUSED, paused_reason=reason[:200]).where(
        (Campaign.id == campaign.id) & (Campaign.status == Campaign.SENDING)).execute()
    log.error("campaign %s paused: %s", campaign.id, reason)
    return Outcome(SliceEnd.PAUSED)


def _mark_sent(message_ids, now):
    """status ``sent`` with each delivery's message id, in one statement."""
    if is_postgres():
        db.execute_sql(
            'UPDATE "delivery" SET "status" = %s, "updated_at" = %s, "message_id" = sent.message_id '
            'FROM unnest(%s::bigint[], %s::text[]) AS sent(id, message_id) WHERE "delivery"."id" = sent.id',
            [Delivery.SENT, now, list(message_ids), list(message_ids.values())])
    else:
        Delivery.update(
            status=Delivery.SENT, updated_at=now, message_id=Case(Delivery.id, list(message_ids.items())),
        ).where(Delivery.id.in_(list(message_ids))).execute()


def count_results(results):
    """Each provider answer, by status (``delivered``, ``token_invalid``, ...)."""
    name = provider_name()
    for status in providers.STATUSES:
        sent = sum(1 for result in results if result.status == status)
        if sent:
            metrics.PUSH_MESSAGES.labels(name, status).inc(sent)


def record(campaign, claimed, results):
    count_results(results)
    now = utcnow()
    message_ids = {}
    failed, invalid, retry, auth = {}, [], [], []
    for delivery, result in zip(claimed, results):
        if result.status == providers.DELIVERED:
            message_ids[delivery.id] = (result.message_id or "")[:200]
        elif result.status == providers.TOKEN_INVALID:
            invalid.append((delivery, result.code))
        elif result.status == providers.RETRY:
            retry.append((delivery, result))
        elif result.status == providers.AUTH_ERROR:
            auth.append((delivery, result))
        else:
            failed.setdefault(result.code or "failed", []).append(delivery.id)
    with write_transaction():
        if message_ids:
            _mark_sent(message_ids, now)
        for code, ids in failed.items():
            Delivery.update(status=Delivery.FAILED, reason=code[:64], updated_at=now).where(
                one_of(Delivery.id, ids)).execute()
        for delivery, code in invalid:
            Delivery.update(status=Delivery.INVALID_TOKEN, reason=(code or "")[:64], updated_at=now).where(
                Delivery.id == delivery.id).execute()
            # only the token that failed: the device may have registered a new one since
            PushToken.delete().where((PushToken.device == delivery.device_id)
                                     & (PushToken.token == delivery.token)).execute()
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
                            updated_at=now).where(one_of(Delivery.id, [d.id for d, _ in auth])).execute()
            pause(campaign, f"push provider refused our credentials ({auth[0][1].code})")
            return SendEnd.PAUSED
    return SendEnd.RECORDED


def complete_if_finished(campaign_id):
    open_slices = CampaignSlice.select().where(
        (CampaignSlice.campaign == campaign_id) & (CampaignSlice.status == CampaignSlice.PENDING))
    return (
        Campaign.update(status=Campaign.COMPLETED, finished_at=utcnow())
        .where((Campaign.id == campaign_id) & (Campaign.status == Campaign.SENDING) & Campaign.planned
               & ~fn.EXISTS(open_slices))
        .execute()
    )
