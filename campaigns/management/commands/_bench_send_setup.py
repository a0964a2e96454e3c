"""The data of `manage.py bench_send`, in its own database: profiles with five attributes and email consent made
in SQL (kept from one run to the next), an uploaded list of them, SMTP configurations on the sink (directly, and
through the delaying proxy), and one scheduled marketing campaign a send, made and activated through the
product's services."""

from dataclasses import dataclass
from datetime import datetime

import django_rq
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count

from audiences.models import AttributeDefinition
from campaigns.management.commands._bench_trigger_setup import relay_configuration
from campaigns.models import Campaign, Delivery, Run
from campaigns.services import lifecycle
from config import bench

ACTOR = "bench-send"
PREFIX = "s"
DOMAIN = "send.bench.test"
LIST_NAME = "Bench send: readers"
# Five attributes, one of them the list the body loops over.
ATTRIBUTES = {
    "first_name": "string",
    "city": "string",
    "plan": "string",
    "points": "number",
    "interests": "string_list",
}
ATTRIBUTES_SQL = """jsonb_build_object(
    'first_name', 'Reader ' || g,
    'city', (ARRAY['Lyon', 'Paris', 'Nantes', 'Lille', 'Brest'])[mod(g, 5) + 1],
    'plan', (ARRAY['Free', 'Pro', 'Team'])[mod(g, 3) + 1],
    'points', mod(g, 1000),
    'interests', CASE WHEN mod(g, 2) = 0 THEN '["cycling", "cooking", "travel"]'::jsonb
                      ELSE '["music", "books", "films"]'::jsonb END
)"""
SUBJECT = "{{ profile.first_name }}, your {{ profile.plan }} news from {{ profile.city }}"
HTML = (
    "<h1>Hello {{ profile.first_name }} from {{ profile.city }}</h1>"
    "<p>You are on the {{ profile.plan }} plan with {{ profile.points }} points.</p>"
    "<ul>{% for interest in profile.interests %}<li>{{ interest }}</li>{% endfor %}</ul>"
    '<p>See you soon,<br>Shop</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


@dataclass(frozen=True)
class RunTimes:
    created_at: datetime
    sending_at: datetime | None
    finished_at: datetime | None
    state: str
    statuses: dict[str, int]


def reset() -> None:
    """No campaign (nor runs, deliveries) left from an earlier send, and an empty Redis database."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE campaigns_campaign CASCADE")
    django_rq.get_connection("campaigns").flushdb()


def prepare_profiles(count: int) -> str:
    for name, kind in ATTRIBUTES.items():
        AttributeDefinition.objects.update_or_create(name=name, defaults={"type": kind})
    made = bench.ensure_profiles(PREFIX, DOMAIN, count, consent=True, attributes=ATTRIBUTES_SQL)
    bench.uploaded_list(LIST_NAME, PREFIX, DOMAIN, count)
    with connection.cursor() as cursor:
        for table in ("audiences_profile", "audiences_identity", "audiences_consent", "audiences_audiencemember"):
            cursor.execute(f"ANALYZE {table}")
    return f"{count:,} recipients with email consent ({made:,} made now), on the uploaded list {LIST_NAME!r}"


def _actor():
    actor, _ = get_user_model().objects.get_or_create(
        username=ACTOR, defaults={"email": f"{ACTOR}@example.com", "is_superuser": True, "is_staff": True}
    )
    return actor


def make_campaign(*, name: str, smtp_port: int) -> int:
    """A draft scheduled marketing campaign to the list, on activation, through a relay at `smtp_port`."""
    from audiences.models import Audience

    configuration = relay_configuration(f"Bench send: port {smtp_port}", smtp_port, "marketing")
    campaign = lifecycle.campaign_create(
        actor=_actor(),
        name=name,
        kind=Campaign.Kind.SCHEDULED,
        category=Campaign.Category.MARKETING,
        channel_configuration=configuration,
        audience=Audience.objects.get(name=LIST_NAME),
        schedule=Campaign.Schedule.ON_ACTIVATION,
        content=lifecycle.Content(SUBJECT, HTML, ""),
    )
    return campaign.pk


def activate(campaign_id: int) -> None:
    """On activation: the scheduler starts its run on its next pass."""
    lifecycle.campaign_activate(campaign=Campaign.objects.get(pk=campaign_id), actor=_actor())


def stop(campaign_id: int) -> None:
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status in Campaign.LIVE_STATUSES:
        lifecycle.campaign_stop(campaign=campaign, actor=_actor())


def run_times(campaign_id: int) -> RunTimes | None:
    run = Run.objects.filter(campaign_id=campaign_id).order_by("pk").first()
    if run is None:
        return None
    statuses = dict(Delivery.objects.filter(run=run).values_list("status").annotate(Count("id")).order_by())
    return RunTimes(run.created_at, run.sending_at, run.finished_at, run.state, statuses)
