"""Planning a run into the ledger: one Delivery per audience member, exclusions included."""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audiences.models import Channel, Profile
from audiences.rules.tree import RuleError
from audiences.selectors.audiences import audience_member_ids
from campaigns import rules
from campaigns.engine.dispatch import dispatch_send_jobs
from campaigns.models import Campaign, Delivery, Run, TriggerRequest

log = logging.getLogger(__name__)


def plan_run(*, run_id: int) -> None:
    """Write the run's ledger: one Delivery per audience member, exclusions included.

    Streams the audience in keyset pages and advances the cursor in the same transaction as the rows, so
    an interrupted planner resumes where it stopped and a second planner adds nothing twice.
    """
    chunk = settings.CAMPAIGNS_PLAN_CHUNK
    while True:
        with transaction.atomic():
            run = (
                Run.objects.select_for_update(of=("self",))
                .select_related("campaign", "version__audience", "version__channel_configuration")
                .get(pk=run_id)
            )
            if run.state != Run.State.PLANNING:
                return
            campaign = run.campaign
            try:
                member_ids = audience_member_ids(run.version.audience, after_id=run.planning_cursor, limit=chunk)
            except RuleError as invalid:
                # The audience's rule stopped validating (an attribute undeclared since, an audience deleted):
                # the run fails with the reason instead of retrying forever.
                run.state, run.error, run.finished_at = Run.State.FAILED, f"audience rule: {invalid}", timezone.now()
                run.save(update_fields=["state", "error", "finished_at"])
                log.warning("run %s: failed, its audience's rule no longer validates: %s", run.pk, invalid)
                return
            now = timezone.now()
            if not member_ids:
                run.planning_done = True
                paused = campaign.status == Campaign.Status.PAUSED
                run.state = Run.State.PAUSED if paused else Run.State.SENDING
                run.sending_at = now
                run.heartbeat_at = now
                run.save(update_fields=["planning_done", "state", "sending_at", "heartbeat_at"])
                if not paused:
                    dispatch_send_jobs(run)
                log.info("run %s: planned", run.pk)
                return
            Delivery.objects.bulk_create(_plan_deliveries(run, member_ids, now), ignore_conflicts=True)
            run.planning_cursor = member_ids[-1]
            run.heartbeat_at = now
            run.save(update_fields=["planning_cursor", "heartbeat_at"])


def _plan_deliveries(run: Run, profile_ids: list[int], now: datetime) -> list[Delivery]:
    campaign = run.campaign
    # The run's version's settings, not the campaign's: a newer version activated meanwhile is for later runs.
    configuration = run.version.channel_configuration
    channel = configuration.channel
    profiles = Profile.objects.filter(pk__in=profile_ids).only("pk", "email", "phone", "timezone").order_by("pk")
    if channel == Channel.PUSH:
        profiles = profiles.prefetch_related("push_tokens")  # address_for reads them: one query per chunk
    candidates = [
        rules.Candidate(
            profile_id=profile.pk, address=profile.address_for(channel), due_at=now, timezone=profile.timezone
        )
        for profile in profiles
    ]
    batch = rules.Batch(
        campaign=campaign, channel=channel, stage=rules.Stage.PLAN, now=now, local_occurrence=_local_occurrence(run)
    )
    rules.decide(batch, candidates)
    # An audience trigger's rows carry its call, whose context they render.
    trigger_request_id = None
    if run.kind == Run.Kind.AUDIENCE_TRIGGER:
        trigger_request_id = TriggerRequest.objects.filter(run=run).values_list("pk", flat=True).first()
    return [
        Delivery(
            run=run,
            version_id=run.version_id,
            profile_id=candidate.profile_id,
            channel=channel,
            channel_configuration=configuration,
            trigger_request_id=trigger_request_id,
            address=candidate.address,
            due_at=candidate.due_at,
            status=Delivery.Status.EXCLUDED if candidate.reason else Delivery.Status.PENDING,
            reason=candidate.reason,
        )
        for candidate in candidates
    ]


def _local_occurrence(run: Run) -> datetime | None:
    """The local wall time each profile gets a run of a campaign delivered in profiles' zones at: the occurrence's,
    which its key starts with (campaigns.schedules.occurrence_key); None for every other run."""
    if run.kind != Run.Kind.SCHEDULED or not run.version.in_profile_timezone:
        return None
    try:
        return datetime.fromisoformat(run.occurrence[:19])
    except ValueError:
        log.warning("run %s: occurrence %r is not a local time: sent at once", run.pk, run.occurrence)
        return None
