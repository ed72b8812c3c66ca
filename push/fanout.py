"""The campaign fan-out, planned: a planner walks the audience by device id
in slices of at most 500 and queues one send per slice; a resumer restarts
what a dead worker left. The queue's tasks are ``push.tasks``; it binds
them here when ``create_app`` registers it."""
import logging
from datetime import timedelta

from flask import current_app

from core import metrics
from models.base import utcnow, write_transaction
from models.push import Campaign, CampaignSlice
from push import audience, sender

log = logging.getLogger(__name__)

# A slice queued this many leases ago and never started was lost with a
# worker that died between taking its task and taking its lease.
STALE_QUEUE_LEASES = 5


class _Unbound:
    def __getattr__(self, name):
        raise RuntimeError("the fan-out's tasks are not registered with the queue (create_app registers them)")


queue = _Unbound()


def bind(tasks):
    """Queue through ``tasks`` (``plan_campaign``, ``send_slice``, ``resume_campaigns_task``)."""
    global queue
    queue = tasks


def queue_plan(campaign_id):
    queue.plan_campaign(campaign_id)


def queue_slice(campaign_id, slice_id):
    CampaignSlice.update(queued_at=utcnow()).where(CampaignSlice.id == slice_id).execute()
    queue.send_slice(campaign_id, slice_id)


def retry_slice_later(campaign_id, slice_id, delay):
    queue.send_slice.schedule(args=(campaign_id, slice_id), delay=delay)


def resume_at(eta=None, delay=None):
    """Run ``resume_campaigns`` at ``eta`` or after ``delay`` seconds."""
    if eta is not None:
        queue.resume_campaigns_task.schedule(eta=eta)
    else:
        queue.resume_campaigns_task.schedule(delay=delay)


def start(campaign_id):
    """Move a draft or scheduled campaign to sending and plan it."""
    lease = current_app.config["PUSH_SLICE_LEASE_SECONDS"]
    now = utcnow()
    started = (
        Campaign.update(status=Campaign.SENDING, started_at=now, plan_lease_until=now + timedelta(seconds=lease))
        .where((Campaign.id == campaign_id) & Campaign.status.in_([Campaign.DRAFT, Campaign.SCHEDULED]))
        .execute()
    )
    if started:
        queue_plan(campaign_id)
    return started


def plan(campaign_id):
    """Create the campaign's slices (resuming at ``plan_cursor``) and queue
    each; the audience is never held in memory."""
    config = current_app.config
    size = config["PUSH_SLICE_SIZE"]
    lease = timedelta(seconds=config["PUSH_SLICE_LEASE_SECONDS"])
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None or campaign.status != Campaign.SENDING or campaign.planned:
        return
    cursor = campaign.plan_cursor
    while True:
        ids = audience.candidate_ids(campaign, cursor, size)
        if not ids:
            break
        with write_transaction():
            part = CampaignSlice.create(campaign=campaign, after=cursor, upto=ids[-1])
            Campaign.update(plan_cursor=ids[-1], plan_lease_until=utcnow() + lease).where(
                Campaign.id == campaign.id).execute()
        metrics.FANOUT_SLICES.labels("planned").inc()
        queue_slice(campaign.id, part.id)
        cursor = ids[-1]
    Campaign.update(planned=True).where(Campaign.id == campaign.id).execute()
    sender.complete_if_finished(campaign.id)


def resume_campaigns():
    """Start due scheduled campaigns, and re-queue planning and slices whose
    worker's lease ran out."""
    # Each loop reads its rows first: on SQLite, a write while a read is still
    # open fails at once ("database is locked") if a worker wrote in between.
    now = utcnow()
    for campaign in list(Campaign.select().where((Campaign.status == Campaign.SCHEDULED) & (Campaign.send_at <= now))):
        start(campaign.id)
    lease = current_app.config["PUSH_SLICE_LEASE_SECONDS"]
    stale_plans = Campaign.select(Campaign.id).where(
        (Campaign.status == Campaign.SENDING) & ~Campaign.planned
        & (Campaign.plan_lease_until.is_null() | (Campaign.plan_lease_until < now)))
    for campaign in list(stale_plans):
        taken = Campaign.update(plan_lease_until=now + timedelta(seconds=lease)).where(
            (Campaign.id == campaign.id) & (Campaign.plan_lease_until.is_null() | (Campaign.plan_lease_until < now))
        ).execute()
        if taken:
            queue_plan(campaign.id)
    lost_lease = CampaignSlice.lease_owner.is_null(False) & (CampaignSlice.lease_until < now)
    lost_task = CampaignSlice.lease_owner.is_null() & (
        CampaignSlice.queued_at < now - timedelta(seconds=STALE_QUEUE_LEASES * lease))
    abandoned = (
        CampaignSlice.select(CampaignSlice.id, CampaignSlice.campaign)
        .join(Campaign)
        .where((Campaign.status == Campaign.SENDING) & (CampaignSlice.status == CampaignSlice.PENDING)
               & (lost_lease | lost_task))
    )
    for part in list(abandoned):
        log.warning("re-queueing slice %s of campaign %s after a lost worker", part.id, part.campaign_id)
        queue_slice(part.campaign_id, part.id)
