"""The URLconf of the benchmarks that serve the product with gunicorn (`manage.py bench_trigger`, `bench_reports`)
only: the product's URLs, plus baseline views that the product's endpoints are compared with in the same run, behind
the same middleware, server and workers.

- `bench/noop`: answers a small JSON document without reading the body or the database.
- `bench/minimal`: reads the JSON body, inserts one row into a table of the benchmark's own
  (`bench_trigger_minimal`, created by the command in its database, outside the migrations) and enqueues a no-op
  job on the transactional queue when that commits: the least an accepted call must do. Done well: the queue and
  its Redis connection are made once a process (the product's `enqueue_on_commit` makes a new one each time).
- `bench/noop-get`: a GET answered with a few bytes, without the database: the baseline of the tracking links
  (`bench_reports --tracking`), which are GETs.

Never the ROOT_URLCONF of a deployment: the command's settings module (`_bench_trigger_settings`) points at it.
"""

import json
from functools import cache

import django_rq
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config import queues
from config.urls import urlpatterns as product_urlpatterns

MINIMAL_TABLE = "bench_trigger_minimal"


@csrf_exempt
@require_POST
def noop(request):
    return JsonResponse({"ok": True}, status=202)


@require_GET
def noop_get(request):
    return HttpResponse(b"ok", content_type="text/plain")


@csrf_exempt
@require_POST
def minimal(request):
    body = json.loads(request.body)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {MINIMAL_TABLE} (request_id, created_at) VALUES (%s, now()) RETURNING id",  # noqa: S608
                [str(body.get("requestId", ""))[:200]],
            )
            row_id = cursor.fetchone()[0]
        transaction.on_commit(lambda: _transactional_queue().enqueue("config.bench_urls.noop_job", row_id), robust=True)
    return JsonResponse({"id": row_id}, status=202)


@cache
def _transactional_queue():
    return django_rq.get_queue(queues.TRANSACTIONAL)


def noop_job(row_id: int) -> None:
    """The minimal view's job: a worker takes it off the queue and does nothing."""


urlpatterns = [
    path("bench/noop", noop),
    path("bench/minimal", minimal),
    path("bench/noop-get", noop_get),
    *product_urlpatterns,
]
