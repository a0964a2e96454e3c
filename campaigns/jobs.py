"""RQ jobs: they take ids, never model instances (jobs are JSON), and call the execution services."""

from campaigns import execution


def plan_run(run_id: int) -> None:
    execution.plan_run(run_id=run_id)


def send_run(run_id: int) -> None:
    execution.send_run(run_id=run_id)
