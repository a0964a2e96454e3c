"""The data of `manage.py bench_trigger`, in its own database: profiles made in SQL (kept from one run to the next),
two relay configurations on the benchmark's SMTP relay, the API-triggered campaign, the large scheduled campaign
and an API key, all made through the product's services."""

import json
from dataclasses import dataclass

import django_rq
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audiences.models import AttributeDefinition
from campaigns.models import Campaign
from campaigns.services import lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from config import bench
from permissions.services.api_keys import api_key_create

ACTOR = "bench-trigger"
NEWSLETTER_LIST = "Bench trigger: newsletter readers"


@dataclass(frozen=True)
class Made:
    trigger_id: int
    newsletter_id: int
    secret: str
    summary: str


def reset(minimal_table: str) -> None:
    """Start from no campaign, no call and an empty Redis database; profiles are kept (they take seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {minimal_table} "
            "(id bigserial PRIMARY KEY, request_id varchar(200) NOT NULL, created_at timestamptz NOT NULL)"
        )
        cursor.execute(f"TRUNCATE {minimal_table}")
        # Campaigns and all that hangs from them: versions, runs, deliveries, trigger calls.
        cursor.execute("TRUNCATE campaigns_campaign CASCADE")
    django_rq.get_connection("transactional").flushdb()


def prepare(*, smtp_port: int, trigger_recipients: int, campaign_size: int, trigger_domain: str, campaign_domain: str):
    actor, _ = get_user_model().objects.get_or_create(
        username=ACTOR, defaults={"email": f"{ACTOR}@example.com", "is_superuser": True, "is_staff": True}
    )
    AttributeDefinition.objects.update_or_create(name="first_name", defaults={"type": "string"})
    made_trigger = bench.ensure_profiles("t", trigger_domain, trigger_recipients, consent=False)
    made_campaign = bench.ensure_profiles("c", campaign_domain, campaign_size, consent=True)
    readers = bench.uploaded_list(NEWSLETTER_LIST, "c", campaign_domain, campaign_size)
    with connection.cursor() as cursor:
        for table in ("audiences_profile", "audiences_identity", "audiences_consent", "audiences_audiencemember"):
            cursor.execute(f"ANALYZE {table}")

    # Transactional mail on a configuration of its own, as the product advises; both on the one relay.
    transactional = relay_configuration("Bench relay: transactional", smtp_port, "transactional")
    marketing = relay_configuration("Bench relay: marketing", smtp_port, "marketing")
    trigger = lifecycle.campaign_create(
        actor=actor,
        name="Bench: sign-in code",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=transactional,
        audience=None,
        content=lifecycle.Content(
            "[bt:{{ context.request_id }}] Your sign-in code, {{ profile.first_name }}",
            "<p>Hello {{ profile.first_name }},</p><p>Your code for request <b>{{ context.request_id }}</b> is "
            "below. It expires in 10 minutes.</p><p>{{ campaign.name }}</p>",
            "Hello {{ profile.first_name }}, your code for request {{ context.request_id }} expires in 10 minutes.",
        ),
    )
    lifecycle.campaign_update_contract(
        campaign=trigger,
        actor=actor,
        contract=[
            {"name": "request_id", "type": "string", "required": True, "example": "r-1", "description": "The call."}
        ],
    )
    lifecycle.campaign_activate(campaign=trigger, actor=actor)
    newsletter = lifecycle.campaign_create(
        actor=actor,
        name="Bench: winter newsletter",
        kind=Campaign.Kind.SCHEDULED,
        category=Campaign.Category.MARKETING,
        channel_configuration=marketing,
        audience=readers,
        schedule=Campaign.Schedule.ON_ACTIVATION,
        content=lifecycle.Content(
            "Winter news for {{ profile.first_name }}",
            "<h1>Winter news</h1><p>Dear {{ profile.first_name }}, here is what is new this season.</p>"
            '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
            "Dear {{ profile.first_name }}, here is what is new this season. Unsubscribe: {{ unsubscribe_url }}",
        ),
    )
    # Far above the calls made: the key's rate limit is checked on every call (one Redis round trip) but never
    # refuses one.
    _, secret = api_key_create(actor=actor, name="Bench trigger", campaign_ids=[trigger.pk], rate_per_second=1_000_000)
    summary = (
        f"{trigger_recipients:,} trigger recipients ({made_trigger:,} made now), {campaign_size:,} newsletter "
        f"readers ({made_campaign:,} made now); campaigns {trigger.pk} (API-triggered, transactional) and "
        f"{newsletter.pk} (scheduled, marketing, on activation)"
    )
    return Made(trigger_id=trigger.pk, newsletter_id=newsletter.pk, secret=secret, summary=summary)


def relay_configuration(name: str, port: int, purpose: str) -> ChannelConfiguration:
    """An email configuration on the benchmark's relay at 127.0.0.1:`port` (bench_send's too)."""
    configuration = ChannelConfiguration.objects.filter(name=name).first() or ChannelConfiguration(
        name=name, channel="email"
    )
    # The product's defaults (4 connections a worker, no rate limit), plain SMTP on loopback.
    configuration.set_settings(
        EmailSettings(
            from_email="news@example.com",
            from_name="Shop",
            host="127.0.0.1",
            port=port,
            security="none",
            purpose=purpose,
        )
    )
    configuration.is_active = True
    configuration.save()
    return configuration


def _actor():
    return get_user_model().objects.get(username=ACTOR)


def activate_newsletter(campaign_id: int) -> None:
    """On activation: the scheduler starts its run on its next pass."""
    lifecycle.campaign_activate(campaign=Campaign.objects.get(pk=campaign_id), actor=_actor())


def stop_newsletter(campaign_id: int) -> None:
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status in Campaign.LIVE_STATUSES:
        lifecycle.campaign_stop(campaign=campaign, actor=_actor())


def queries_of_one_call(campaign_id: int, secret: str, domain: str) -> dict:
    """One trigger call made in this process through Django's test client (the real view, database and Redis):
    the SQL queries and Redis round trips it takes."""
    import redis.connection

    round_trips = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        round_trips.append(1)
        return original(self, command, check_health)

    client = Client(SERVER_NAME="127.0.0.1")

    def call(request_id: str):
        body = {
            "requestId": request_id,
            "context": {"request_id": request_id},
            "recipients": [{"identity": {"namespace": "email", "value": f"t0@{domain}"}}],
        }
        response = client.post(
            f"/api/v1/campaigns/{campaign_id}/trigger",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        if response.status_code != 202:
            raise RuntimeError(f"a trigger call answered {response.status_code}: {response.content[:500]!r}")

    # The first call of a campaign makes its unitary run and records the key's first use: the second is the
    # common case.
    call("queries-first-call")
    redis.connection.AbstractConnection.send_packed_command = counted
    try:
        with CaptureQueriesContext(connection) as captured:
            call("queries-second-call")
    finally:
        redis.connection.AbstractConnection.send_packed_command = original
    return {
        "sql": [query["sql"] for query in captured.captured_queries],
        "redis_round_trips": len(round_trips),
    }
