"""The Prometheus endpoint, /metrics: off (404) without METRICS_TOKEN, 401 with `WWW-Authenticate: Bearer` for a
missing or wrong token (a login is no credential), and with the token the figures of the data built here, read
back with Prometheus's own parser; with Redis unreachable, the Redis figures left out and `campaigns_redis_up 0`."""

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.serializers import JSONSerializer

from campaigns.models import Campaign, Delivery, Run
from config import health, queues
from tests.test_dashboard import NOW, make_campaign, make_deliveries, make_run, register_worker
from tests.test_preflight import closed_port
from tests.test_settings import run_python

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789-abcdef"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client, authorization: str | None = f"Bearer {TOKEN}"):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.get("/metrics", headers=headers)


def samples(response) -> dict[tuple, float]:
    """{(name, (label, value), ...): value} of every sample in the scrape."""
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        assert family.name.startswith("campaigns_") and family.documentation, family.name
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def test_without_a_token_set_the_endpoint_is_off(client, settings):
    settings.METRICS_TOKEN = None

    assert scrape(client).status_code == 404
    assert scrape(client, None).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_a_missing_or_wrong_token_is_refused_with_a_bearer_challenge(client, token, authorization):
    response = scrape(client, authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in response.content.decode()


def test_a_login_is_no_credential(client, personas, token):
    client.force_login(personas["ada"])

    assert scrape(client, None).status_code == 401


def test_the_token_is_accepted_whatever_the_schemes_case(client, token, redis):
    assert scrape(client, f"bearer {TOKEN}").status_code == 200


def test_only_get_is_answered(client, token):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


def test_the_metrics_match_the_data(client, personas, token, redis, time_machine):
    time_machine.move_to(NOW, tick=False)
    april = personas["april"]
    spring = make_campaign(april, "Spring sale", status=Campaign.Status.ACTIVE)
    sending = make_run(spring, "a", Run.State.SENDING)
    make_deliveries(sending, ["sent", "sent", "failed", "excluded"])
    make_deliveries(sending, ["pending"], due_at=NOW - timedelta(seconds=90))
    autumn = make_campaign(april, "Autumn sale", status=Campaign.Status.COMPLETED)
    make_deliveries(make_run(autumn, "b", Run.State.COMPLETE), ["delivered", "opened"])
    make_run(autumn, "c", Run.State.STOPPED)
    make_campaign(april, "Draft")
    register_worker(queues.TRANSACTIONAL, "transactional-worker")
    Queue(queues.MAINTENANCE, connection=redis, serializer=JSONSerializer).enqueue("campaigns.jobs.send_run", 1)
    health.scheduler_tick_record(at=NOW - timedelta(seconds=12))

    found = samples(scrape(client))

    assert found[("campaigns_redis_up",)] == 1
    for name in queues.QUEUE_NAMES:
        assert found[("campaigns_queue_workers", ("queue", name))] == (name == queues.TRANSACTIONAL)
        assert found[("campaigns_queue_jobs", ("queue", name))] == (name == queues.MAINTENANCE)
        assert found[("campaigns_queue_failed_jobs", ("queue", name))] == 0
    assert found[("campaigns_scheduler_last_tick_timestamp_seconds",)] == (NOW - timedelta(seconds=12)).timestamp()
    assert found[("campaigns_scheduler_last_tick_age_seconds",)] == 12
    assert found[("campaigns_oldest_due_pending_age_seconds",)] == 90
    assert by_label(found, "campaigns_messages") == {
        **dict.fromkeys(Delivery.Status.values, 0),  # every status has its series, none comes and goes
        **{"sent": 2, "failed": 1, "excluded": 1, "pending": 1, "delivered": 1, "opened": 1},
    }
    assert by_label(found, "campaigns_runs") == {
        **dict.fromkeys(Run.State.values, 0),
        **{"sending": 1, "complete": 1, "stopped": 1},
    }
    assert by_label(found, "campaigns_campaigns") == {
        **dict.fromkeys(Campaign.Status.values, 0),
        **{"active": 1, "completed": 1, "draft": 1},
    }


def by_label(found: dict[tuple, float], name: str) -> dict[str, float]:
    return {labels[0][1]: value for (sample, *labels), value in found.items() if sample == name}


def test_a_scheduler_that_never_ticked_has_no_tick_figures_and_nothing_waiting_is_age_zero(client, token, redis):
    found = samples(scrape(client))

    assert not any(key[0].startswith("campaigns_scheduler_") for key in found)
    assert found[("campaigns_oldest_due_pending_age_seconds",)] == 0


def test_with_redis_unreachable_the_redis_figures_are_left_out(client, personas, token, settings):
    make_campaign(personas["april"], "Spring sale")
    port = closed_port()
    settings.RQ_QUEUES = {
        name: {**queue, "URL": f"redis://127.0.0.1:{port}/0"} for name, queue in settings.RQ_QUEUES.items()
    }

    found = samples(scrape(client))

    assert found[("campaigns_redis_up",)] == 0
    assert not any(key[0].startswith(("campaigns_queue_", "campaigns_scheduler_")) for key in found)
    assert found[("campaigns_campaigns", ("status", "draft"))] == 1


def test_a_short_token_stops_every_command_without_showing_it(tmp_path):
    result = run_python(["manage.py", "check"], var_dir=tmp_path, METRICS_TOKEN="short-secret")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Configuration error: METRICS_TOKEN must be at least 16 characters")
    assert "short-secret" not in result.stdout + result.stderr
