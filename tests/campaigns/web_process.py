"""A second web process for the trigger API's tests: Django set up afresh in a spawned interpreter, on the test
database and Redis of the test that starts it. Kept apart from the tests, which import models at load time (a
spawned process imports the module of its target before Django is set up)."""

import json
import os
import time


def trigger_calls(database_url: str, redis_db: str, path: str, secret: str, body: dict, calls: int, results):
    """Trigger calls from a second web process: Django set up afresh on the same database and Redis, calling the API
    in-process. Puts (start time, end time, statuses) on `results`."""
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url, TEST_REDIS_DB=redis_db)
    import django

    django.setup()
    from django.test import Client

    client = Client()
    client.get("/api/v1/health")  # warm up: the first request loads URLs and the API
    started = time.time()
    statuses = []
    for number in range(calls):
        body = {**body, "requestId": f"{os.getpid()}-{number}"}
        response = client.post(
            path, data=json.dumps(body), content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
        )
        statuses.append(response.status_code)
    results.put((started, time.time(), statuses))
