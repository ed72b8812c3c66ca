"""Campaigns as operators see them: create, preview, send, cancel, resume,
status; service notifications to one user."""
from auth import audit
from core.errors import Conflict, ServiceUnavailable
from models.base import utcnow, write_transaction
from models.device import Device
from models.push import Campaign, CampaignExclusion, CampaignSlice, Delivery
from push import audience, fanout, sender

EDITABLE = ("name", "kind", "title", "body", "data", "audience", "send_at")


def _target(campaign):
    return f"campaign:{campaign.id}"


def create(data, admin):
    """A draft campaign; the audit log names ``admin`` as its author."""
    with write_transaction():
        campaign = Campaign.create(
            name=data["name"], kind=data["kind"], title=data["title"], body=data["body"],
            data=data.get("data") or {}, audience=data.get("audience") or {}, send_at=data.get("send_at"),
            created_by=admin, created_at=utcnow(),
        )
        audit.record(admin, "campaign.create", _target(campaign), {"kind": campaign.kind})
    return campaign


def update(campaign, data, admin):
    """Change the draft's fields that ``data`` names (of ``EDITABLE``)."""
    changes = {name: data[name] for name in EDITABLE if name in data}
    with write_transaction():
        updated = Campaign.update(status=Campaign.DRAFT, **changes).where(
            (Campaign.id == campaign.id) & (Campaign.status == Campaign.DRAFT)).execute()
        if not updated:
            raise Conflict(f"The campaign is {campaign.status}; only a draft can be changed.", code="not_a_draft")
        audit.record(admin, "campaign.update", _target(campaign), {"fields": sorted(changes)})
    return Campaign.get_by_id(campaign.id)


def send(campaign, admin):
    """Start now, or schedule for ``send_at``."""
    if campaign.status != Campaign.DRAFT:
        raise Conflict(f"The campaign is {campaign.status}; only a draft can be sent.", code="not_a_draft")
    scheduled = bool(campaign.send_at and campaign.send_at > utcnow())
    with write_transaction():
        audit.record(admin, "campaign.send", _target(campaign),
                     {"send_at": campaign.send_at.isoformat() if scheduled else None})
        if scheduled:
            Campaign.update(status=Campaign.SCHEDULED).where(Campaign.id == campaign.id).execute()
    if scheduled:
        fanout.resume_at(eta=campaign.send_at)
        return
    fanout.start(campaign.id)


def cancel(campaign, admin):
    """Stop what has not been sent: pending deliveries are cancelled and no
    slice sends again."""
    if campaign.status in (Campaign.COMPLETED, Campaign.CANCELLED):
        raise Conflict(f"The campaign is already {campaign.status}.", code="already_finished")
    with write_transaction():
        Campaign.update(status=Campaign.CANCELLED, finished_at=utcnow()).where(Campaign.id == campaign.id).execute()
        Delivery.update(status=Delivery.CANCELLED, reason="campaign_cancelled", updated_at=utcnow()).where(
            (Delivery.campaign == campaign.id) & (Delivery.status == Delivery.PENDING)).execute()
        audit.record(admin, "campaign.cancel", _target(campaign), {"status_was": campaign.status})


def resume(campaign, admin):
    """After a pause (e.g. credentials fixed): send the rest."""
    if campaign.status != Campaign.PAUSED:
        raise Conflict("Only a paused campaign can be resumed.", code="not_paused")
    with write_transaction():
        Campaign.update(status=Campaign.SENDING, paused_reason=None).where(Campaign.id == campaign.id).execute()
        audit.record(admin, "campaign.resume", _target(campaign), {"paused_reason": campaign.paused_reason})
    if not campaign.planned:
        fanout.queue_plan(campaign.id)
    pending = CampaignSlice.select(CampaignSlice.id).where(
        (CampaignSlice.campaign == campaign.id) & (CampaignSlice.status == CampaignSlice.PENDING))
    for part in pending:
        fanout.queue_slice(campaign.id, part.id)


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


def draft(data):
    """An unsaved campaign made of ``data`` (as ``create`` takes it), for a
    preview of its audience before anything is stored."""
    return Campaign(kind=data.get("kind") or "marketing", audience=data.get("audience") or {},
                    target_user=None, status=Campaign.DRAFT)


def progress(campaign):
    """How far sending has come: ``{done, total, percent, finished}``. The
    total grows while the fan-out plans; 100 % only once the campaign is
    completed (or cancelled)."""
    counters = status(campaign)
    done = counters["targeted"] - counters["pending"]
    finished = campaign.status in (Campaign.COMPLETED, Campaign.CANCELLED)
    if finished:
        percent = 100
    else:
        percent = min(99, (100 * done) // counters["targeted"]) if counters["targeted"] else 0
    return {"done": done, "total": counters["targeted"], "percent": percent, "finished": finished,
            "counters": counters}


def results(campaign):
    """What became of every device the campaign targeted: ``{outcomes:
    {outcome: devices}, reasons: {reason: devices}}``. Devices the audience
    excluded count as ``excluded`` under the preview's reason names
    (``marketing_push:not_asked``, ``filter:area`` ...); deliveries skipped
    or cancelled later under the reason they were given."""
    outcomes, reasons = {}, {}
    for reason, count in CampaignExclusion.counts(campaign).items():
        outcomes["excluded"] = outcomes.get("excluded", 0) + count
        reasons[reason] = reasons.get(reason, 0) + count
    for (outcome, reason), count in Delivery.reasons(campaign).items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
        if reason and outcome != Delivery.SENT:
            reasons[reason] = reasons.get(reason, 0) + count
    return {"outcomes": outcomes, "reasons": reasons}


def in_flight(limit=20):
    """Campaigns sending, paused or scheduled now, oldest first."""
    live = (Campaign.SENDING, Campaign.PAUSED, Campaign.SCHEDULED)
    return list(Campaign.select().where(Campaign.status.in_(live))
                .order_by(Campaign.created_at, Campaign.id).limit(limit))


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
    with write_transaction():
        campaign = Campaign.create(name=f"notification to {user.id}", kind="service", title=title, body=body,
                                   data=data or {}, target_user=user, created_by=admin, created_at=now,
                                   status=Campaign.SENDING, started_at=now, planned=True)
        audit.record(admin, "notification.send", f"user:{user.id}", {"campaign_id": str(campaign.id)})
    ids = audience.candidate_ids(campaign, None, sender.BATCH)
    if ids:
        part = CampaignSlice.create(campaign=campaign, after=None, upto=ids[-1])
        outcome = sender.run_slice(campaign.id, part.id)
        if outcome is not None and outcome.kind is sender.SliceEnd.LATER:
            fanout.retry_slice_later(campaign.id, part.id, outcome.delay)
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
    with write_transaction():
        campaign = Campaign.create(
            name=f"policy {policy.version}", kind="service", title="Our privacy policy has changed",
            body=f"Version {policy.version} is in effect. Review your choices under Privacy in the app.",
            data={"type": "policy_update", "policy_version": policy.version}, created_by=admin, created_at=utcnow(),
        )
        audit.record(admin, "campaign.send", _target(campaign), {"policy_version": policy.version})
    fanout.start(campaign.id)
    return campaign


# -- withdrawal effects: queued pushes of a withdrawn kind are not sent ----------------

def cancel_queued_marketing(user, decisions):
    Delivery.cancel_open_for_user(user, "marketing")


def cancel_queued_service(user, decisions):
    Delivery.cancel_open_for_user(user, "service")


def register_effects(effects):
    """Withdrawing a push permission cancels the queued pushes of its kind."""
    effects.register("marketing_push", cancel_queued_marketing)
    effects.register("service_push", cancel_queued_service)
