"""The fan-out's huey tasks, wrappers only: each opens a task context and
calls ``push.fanout`` or ``push.sender``. ``register_tasks`` puts them on
the queue and hands them to the fan-out."""
from types import SimpleNamespace

from huey import crontab

from core.worker import huey, queued, task_context
from push import fanout, sender


@queued()
def plan_campaign(campaign_id):
    with task_context():
        fanout.plan(campaign_id)


@queued(retries=3, retry_delay=2)
def send_slice(campaign_id, slice_id):
    """A failed run (a database error, say) has given up its lease; huey
    retries it, and resume_campaigns re-queues it if the retries run out."""
    with task_context():
        outcome = sender.run_slice(campaign_id, slice_id)
        if outcome is not None and outcome.kind is sender.SliceEnd.LATER:
            fanout.retry_slice_later(campaign_id, slice_id, outcome.delay)


@queued(periodic=crontab(minute="*"))
def resume_campaigns_periodically():
    with task_context():
        fanout.resume_campaigns()


@queued()
def resume_campaigns_task():
    with task_context():
        fanout.resume_campaigns()


_resume_scheduled = False


def resume_after_restart():
    """A restarted worker picks up what a dead one left, once the dead one's
    leases have run out."""
    global _resume_scheduled
    if _resume_scheduled or huey.flask_app is None:
        return
    _resume_scheduled = True
    lease = huey.flask_app.config["PUSH_SLICE_LEASE_SECONDS"]
    for delay in (lease + 1, fanout.STALE_QUEUE_LEASES * lease + 1):
        fanout.resume_at(delay=delay)


def register_tasks(queue):
    """Put the fan-out's tasks on ``queue`` and resume after a restart."""
    for task in (plan_campaign, send_slice, resume_campaigns_periodically, resume_campaigns_task):
        task.bind(queue)
    queue.on_startup()(resume_after_restart)
    fanout.bind(SimpleNamespace(plan_campaign=plan_campaign, send_slice=send_slice,
                                resume_campaigns_task=resume_campaigns_task))


