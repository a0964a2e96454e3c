"""The Prometheus endpoint, `GET /metrics`, for operators: the figures of the home dashboard (workers, queues,
failed jobs, the scheduler's heartbeat, the oldest due message) and the ledger's totals, read at scrape time.

Protected by a bearer token, `METRICS_TOKEN` (unset: 404, the endpoint is off). Never a server error for Redis
being down: the figures read from Redis are left out and `campaigns_redis_up` is 0."""

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from campaigns.models import Campaign, Delivery, Run
from campaigns.selectors.reports import delivery_status_totals, oldest_due_pending
from config.health import system_health


class CampaignsCollector(Collector):
    """Every figure read afresh at each scrape: nothing is counted in the web process, which may be one of many."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        health = system_health(now=now)
        yield GaugeMetricFamily(
            "campaigns_redis_up",
            "1 when Redis answered this scrape; 0 when it did not, and the queue and scheduler figures are left out.",
            value=1 if health.redis_up else 0,
        )
        if health.redis_up:
            yield from _queue_metrics(health)
            if health.scheduler_last_tick is not None:  # never ticked (or not for two weeks): both left out
                yield GaugeMetricFamily(
                    "campaigns_scheduler_last_tick_timestamp_seconds",
                    "When the scheduler last completed a tick (Unix time).",
                    value=health.scheduler_last_tick.timestamp(),
                )
                yield GaugeMetricFamily(
                    "campaigns_scheduler_last_tick_age_seconds",
                    "Seconds since the scheduler last completed a tick.",
                    value=health.scheduler_tick_age.total_seconds(),
                )
        oldest = oldest_due_pending(now=now)
        yield GaugeMetricFamily(
            "campaigns_oldest_due_pending_age_seconds",
            "Seconds the oldest due message of a sending run has waited to be sent; 0 when none waits.",
            value=(now - oldest).total_seconds() if oldest is not None else 0,
        )
        yield _by_label(
            "campaigns_messages",
            "Messages in the ledger, by delivery status.",
            "status",
            delivery_status_totals(),
            Delivery.Status.values,
        )
        yield _by_label(
            "campaigns_runs",
            "Runs (sends of a campaign version), by state.",
            "state",
            dict(Run.objects.values_list("state").annotate(n=Count("id")).order_by()),
            Run.State.values,
        )
        yield _by_label(
            "campaigns_campaigns",
            "Campaigns, by status.",
            "status",
            dict(Campaign.objects.values_list("status").annotate(n=Count("id")).order_by()),
            Campaign.Status.values,
        )


def _queue_metrics(health) -> Iterator[Metric]:
    workers = GaugeMetricFamily("campaigns_queue_workers", "RQ workers alive, by queue.", labels=["queue"])
    waiting = GaugeMetricFamily("campaigns_queue_jobs", "Jobs waiting on the queue, by queue.", labels=["queue"])
    failed = GaugeMetricFamily(
        "campaigns_queue_failed_jobs", "Jobs in the queue's failed job registry, by queue.", labels=["queue"]
    )
    for queue in health.queues:
        workers.add_metric([queue.name], queue.workers)
        waiting.add_metric([queue.name], queue.waiting)
        failed.add_metric([queue.name], queue.failed)
    yield from (workers, waiting, failed)


def _by_label(name: str, documentation: str, label: str, counts: dict[str, int], values) -> GaugeMetricFamily:
    """A gauge with one sample per value of `label`, each of `values` included at 0 so that no series comes and
    goes. Gauges, not counters: a message moves from one status to the next, so a count goes down as well as up."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in sorted((dict.fromkeys(values, 0) | counts).items()):
        family.add_metric([value], count)
    return family


# A registry of its own: the process-wide default one carries the client's process and platform collectors.
registry = CollectorRegistry(auto_describe=False)
registry.register(CampaignsCollector())


@require_GET
@sensitive_variables("token", "presented")
def metrics(request):
    """The metrics in Prometheus's text format, for `Authorization: Bearer <METRICS_TOKEN>`: 404 while no token is
    set, 401 with `WWW-Authenticate: Bearer` for a missing or wrong one."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound("Not found: set METRICS_TOKEN to turn the metrics endpoint on.")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Bytes, compared in constant time; a header may hold any character, which compare_digest refuses in a str.
    given = presented.strip().encode("utf-8", "surrogatepass")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, token.encode()):
        response = HttpResponse("Unauthorized: send Authorization: Bearer <METRICS_TOKEN>.\n", status=401)
        response["Content-Type"] = "text/plain; charset=utf-8"
        response["WWW-Authenticate"] = "Bearer"
        return response
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
