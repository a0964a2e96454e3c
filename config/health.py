"""The system's health, as the home dashboard and the metrics endpoint read it: per RQ queue the workers alive, the
jobs waiting and the jobs failed, and the scheduler's heartbeat (the time of its last completed tick, which
`config.scheduler.scheduler_tick` records in Redis: a heartbeat is among what Redis may hold). Reads only: nothing
here cleans RQ's registries. Redis down is an answer (`redis_up` false), never an exception."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError
from rq.worker import Worker

from config import queues
from config.preflight import reason

log = logging.getLogger(__name__)

SCHEDULER_TICK_KEY = "campaigns:scheduler:last-tick"
# Long enough that a scheduler stopped over a weekend still shows when it last ran, rather than "never".
SCHEDULER_TICK_TTL = 14 * 24 * 60 * 60
# The scheduler's heartbeat is kept beside the work it enqueues.
_HEARTBEAT_QUEUE = queues.CAMPAIGNS


@dataclass(frozen=True)
class QueueHealth:
    name: str
    workers: int  # RQ workers registered on the queue whose record has not expired
    waiting: int  # jobs waiting on the queue
    failed: int  # jobs in the queue's failed job registry


@dataclass(frozen=True)
class SystemHealth:
    """What Redis says about the queues and the scheduler at `now`. With Redis down (`redis_up` false, `redis_error`
    its reason), the queues are empty and the scheduler's last tick is unknown, not "never"."""

    now: datetime
    redis_up: bool
    redis_error: str = ""
    queues: list[QueueHealth] = field(default_factory=list)
    scheduler_last_tick: datetime | None = None

    @property
    def queues_without_workers(self) -> list[str]:
        return [queue.name for queue in self.queues if queue.workers == 0]

    @property
    def scheduler_tick_age(self) -> timedelta | None:
        return None if self.scheduler_last_tick is None else max(self.now - self.scheduler_last_tick, timedelta(0))

    @property
    def scheduler_stale(self) -> bool:
        """The scheduler has not completed a tick within scheduler_stale_after(), or never did (Redis up only)."""
        if not self.redis_up:
            return False
        age = self.scheduler_tick_age
        return age is None or age > scheduler_stale_after()

    @property
    def warnings(self) -> bool:
        return not self.redis_up or self.scheduler_stale or bool(self.queues_without_workers)


def scheduler_stale_after() -> timedelta:
    """How old the last tick may be before the scheduler counts as stopped: three intervals, and at least 30 s."""
    return timedelta(seconds=max(3 * settings.SCHEDULER_INTERVAL, 30))


def system_health(*, now: datetime | None = None) -> SystemHealth:
    """Workers alive, jobs waiting and jobs failed for each queue of config.queues, and the scheduler's last tick.
    The first Redis error ends the reading (each further call would wait for the same timeout)."""
    now = now or timezone.now()
    try:
        read = [_queue_health(name) for name in queues.QUEUE_NAMES]
        last_tick = _scheduler_last_tick()
    except RedisError as exc:
        return SystemHealth(now=now, redis_up=False, redis_error=reason(exc))
    return SystemHealth(now=now, redis_up=True, queues=read, scheduler_last_tick=last_tick)


def _queue_health(name: str) -> QueueHealth:
    queue = queues.queue(name)
    return QueueHealth(
        name=name,
        # Worker.all drops the workers whose record expired (killed without registering their death); Worker.count
        # would count them until RQ's maintenance removes them.
        workers=len(Worker.all(queue=queue)),
        waiting=queue.count,
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
    )


def _scheduler_last_tick() -> datetime | None:
    raw = queues.connection(_HEARTBEAT_QUEUE).get(SCHEDULER_TICK_KEY)
    try:
        return datetime.fromtimestamp(float(raw), tz=UTC) if raw is not None else None
    except (ValueError, OverflowError, OSError):
        return None  # not written by scheduler_tick_record: as good as never


def scheduler_tick_record(*, at: datetime | None = None) -> None:
    """Record that the scheduler completed a tick at `at` (now). Redis down: logged, and the scheduler goes on (the
    dashboard then says Redis cannot be reached, which is the news)."""
    at = at or timezone.now()
    try:
        queues.connection(_HEARTBEAT_QUEUE).set(SCHEDULER_TICK_KEY, repr(at.timestamp()), ex=SCHEDULER_TICK_TTL)
    except RedisError as exc:
        log.warning("could not record the scheduler's tick: %s", exc)
