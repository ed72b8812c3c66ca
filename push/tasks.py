"""The campaign fan-out as huey tasks: a planner walks the audience by
device id in slices of at most 500 and queues one task per slice; a
resumer restarts what a dead worker left."""
import logging

from huey import crontab
from flask import current_app

from models.base import utcnow, write_transaction
from models.push import Campaign, CampaignSlice
from push import audience, sender
from worker import huey, queued, task_context

log = logging.getLogger(__name__)


@queued()
def plan_campaign(campaign_id):
    with task_context():
        plan(campaign_id)


@queued(retries=3, retry_delay=2)
def send_slice(campaign_id, slice_id):
    """A failed run (a database error, say) has given up its lease; huey
    retries it, and resume_campaigns re-queues it if the retries run out."""
    with task_context():
        outcome = sender.run_slice(campaign_id, slice_id)
        if outcome is not None and outcome.kind == "later":
            send_slice.schedule(args=(campaign_id, slice_id), delay=outcome.delay)


def queue_slice(campaign_id, slice_id):
    CampaignSlice.update(queued_at=utcnow()).where(CampaignSlice.id == slice_id).execute()
    send_slice(campaign_id, slice_id)


@queued(periodic=crontab(minute="*"))
def resume_campaigns_periodically():
    with task_context():
        resume_campaigns()


@queued()
def resume_campaigns_task():
    with task_context():
        resume_campaigns()


_resume_scheduled = False
# A slice queued this many leases ago and never started was lost with a
# worker that died between taking its task and taking its lease.
STALE_QUEUE_LEASES = 5


def resume_after_restart():
    """A restarted worker picks up what a dead one left, once the dead one's
    leases have run out."""
    global _resume_scheduled
    if _resume_scheduled or huey.flask_app is None:
        return
    _resume_scheduled = True
    lease = huey.flask_app.config["PUSH_SLICE_LEASE_SECONDS"]
    for delay in (lease + 1, STALE_QUEUE_LEASES * lease + 1):
        resume_campaigns_task.schedule(delay=delay)


def register_tasks(queue):
    """Put the fan-out's tasks on ``queue`` and resume after a restart."""
    for task in (plan_campaign, send_slice, resume_campaigns_periodically, resume_campaigns_task):
        task.bind(queue)
    queue.on_startup()(resume_after_restart)


def start(campaign_id):
    """Move a draft or scheduled campaign to sending and plan it."""
    from datetime import timedelta

    lease = current_app.config["PUSH_SLICE_LEASE_SECONDS"]
    now = utcnow()
    started = (
        Campaign.update(status=Campaign.SENDING, started_at=now, plan_lease_until=now + timedelta(seconds=lease))
        .where((Campaign.id == campaign_id) & Campaign.status.in_([Campaign.DRAFT, Campaign.SCHEDULED]))
        .execute()
    )
    if started:
        plan_campaign(campaign_id)
    return started


def plan(campaign_id):
    """Create the campaign's slices (resuming at ``plan_cursor``) and queue
    each; the audience is never held in memory."""
    from datetime import timedelta

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
        queue_slice(campaign.id, part.id)
        cursor = ids[-1]
    Campaign.update(planned=True).where(Campaign.id == campaign.id).execute()
    sender.complete_if_finished(campaign.id)


def resume_campaigns():
    """Start due scheduled campaigns, and re-queue planning and slices whose
    worker's lease ran out."""
    from datetime import timedelta

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
            plan_campaign(campaign.id)
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
