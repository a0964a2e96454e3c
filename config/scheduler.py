"""The scheduler's tick: where the apps are wired together, each app's periodic maintenance is called in turn.
`manage.py run_scheduler` runs it every SCHEDULER_INTERVAL seconds; several schedulers may run at once."""

from datetime import datetime

from django.utils import timezone

from audiences.services.imports import imports_redispatch_stalled
from campaigns.engine import scheduler as campaigns_scheduler
from campaigns.services.triggers import trigger_requests_purge_expired
from config.health import scheduler_tick_record


def scheduler_tick(*, now: datetime | None = None) -> None:
    """One pass: start due occurrences and keep runs moving (campaigns), restart stalled imports (audiences),
    empty the context of trigger calls past their retention (campaigns); then its heartbeat, the time the pass
    completed, which the dashboard and the metrics read (config.health)."""
    now = now or timezone.now()
    campaigns_scheduler.tick(now=now)
    imports_redispatch_stalled(now)
    trigger_requests_purge_expired(now=now)
    scheduler_tick_record()
