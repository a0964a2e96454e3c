"""Which queue a run's jobs go on, and the send jobs that keep a run moving."""

from django.conf import settings

from campaigns.models import Campaign, Run
from config import queues
from config.queues import enqueue_on_commit, enqueue_once_on_commit


def queue_for(campaign: Campaign) -> str:
    """Scheduled sends, whatever their category, go to `campaigns`: a million-recipient policy notice must
    not make a password reset wait. The transactional queue is for API-triggered transactional messages."""
    if campaign.kind != Campaign.Kind.API_TRIGGERED:
        return queues.CAMPAIGNS
    if campaign.category == Campaign.Category.TRANSACTIONAL:
        return queues.TRANSACTIONAL
    return queues.TRIGGERED


def dispatch_send_jobs(run: Run) -> None:
    """Keep the run's share of the pool busy: a bounded number of send jobs, each pulling slices."""
    for _ in range(settings.CAMPAIGNS_SEND_JOBS_PER_RUN):
        enqueue_on_commit(queue_for(run.campaign), "campaigns.jobs.send_run", run.pk)


def waiting_flag(run_id: int) -> str:
    return f"campaigns:send-waiting:{run_id}"


def wake_run_on_commit(run: Run) -> None:
    """A trigger call added deliveries to the run: one send job for them, unless one is already waiting to start
    (campaigns.jobs.send_waiting_run clears the flag as it starts), so a burst of calls is sent by a few jobs,
    not one job a call."""
    queue = queue_for(run.campaign)
    enqueue_once_on_commit(queue, "campaigns.jobs.send_waiting_run", run.pk, queue, flag=waiting_flag(run.pk))
