"""RQ jobs: they take ids, never model instances (jobs are JSON), and call the send engine."""

from campaigns.engine import dispatch, planning, sending
from config import queues


def plan_run(run_id: int) -> None:
    planning.plan_run(run_id=run_id)


def send_run(run_id: int, outage: int = 0) -> None:
    sending.send_run(run_id=run_id, outage=outage)


def send_waiting_run(run_id: int, queue_name: str) -> None:
    """A trigger call's send job: clears the run's waiting flag first, so a call committing from now on enqueues
    the next job, then sends what is due."""
    queues.flag_clear(queue_name, dispatch.waiting_flag(run_id))
    sending.send_run(run_id=run_id)
