"""The scheduler's tick: where the apps are wired together, each app's periodic maintenance is called in turn.
`manage.py run_scheduler` runs it every SCHEDULER_INTERVAL seconds; several schedulers may run at once."""

from datetime import datetime

from django.utils import timezone

from audiences.services.imports import imports_redispatch_stalled
from campaigns.engine import scheduler as campaigns_scheduler


def scheduler_tick(*, now: datetime | None = None) -> None:
    """One pass: start due occurrences and keep runs moving (campaigns), restart stalled imports (audiences)."""
    now = now or timezone.now()
    campaigns_scheduler.tick(now=now)
    imports_redispatch_stalled(now)
