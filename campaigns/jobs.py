"""RQ jobs: they take ids, never model instances (jobs are JSON), and call the send engine."""

from campaigns.engine import planning, sending


def plan_run(run_id: int) -> None:
    planning.plan_run(run_id=run_id)


def send_run(run_id: int) -> None:
    sending.send_run(run_id=run_id)
