"""The data of `manage.py bench_reports`, in its own database.

Profiles (kept from one run to the next) are made with config.bench.ensure_profiles over a few hundred recipient
domains with a long tail; campaigns, the email configuration (open and click tracking on) and the viewer are made
through the product's services; runs, deliveries and engagement are written in SQL (INSERT ... SELECT over
generate_series-like sources, a statement per chunk) into the real tables, so that whatever the database keeps
for reports (the tally triggers of migration 0014) sees them as it sees the send path's writes. Nothing here
writes a counter.

Every mix is drawn from a hash of the row's number or id (`hashint8extended`), so the same sizes give the same
data."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import django_rq
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection

from audiences.models import Audience
from campaigns import tracking
from campaigns.models import Campaign, Engagement, Run
from campaigns.services import lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from config import bench
from permissions.roles import Role

ACTOR = "bench-reports"
VIEWER = "bench-reports-viewer"
PROFILE_PREFIX = "r"
AUDIENCE = "Bench reports: everyone"
CONFIGURATION = "Bench reports: tracked relay"
# The benchmark's own table, outside the migrations: the profile pool in a fixed, domain-mixed order.
RECIPIENTS_TABLE = "bench_reports_recipients"
CHUNK = 100_000
# Engagement rows go in by the messages of smaller chunks: the tally trigger takes an advisory lock per row, held until
# the statement commits, and the server's lock table (max_locks_per_transaction x max_connections, shared with every
# other session) holds a few thousand.
ENGAGEMENT_CHUNK = 2_000
TIMEZONE = ZoneInfo("Europe/Paris")

# Recipient domains: the common mailbox providers first, then companies; shares by rank follow Zipf's law (s = 1.1
# over 300 domains: the first about 20%, the last a few hundred in a million).
PROVIDERS = ("gmail hotmail yahoo outlook orange icloud free laposte sfr gmx web wanadoo live aol protonmail").split()
DOMAIN_COUNT = 300
ZIPF_EXPONENT = 1.1

SUBJECT = "Winter news for {{ profile.first_name }}"
# Four links tracked (positions 0-3); the unsubscribe link is Liquid, never rewritten.
HTML = (
    "<html><body><h1>Winter news, {{ profile.first_name }}</h1>"
    '<p><a href="https://shop.example/winter?ref=newsletter">The winter collection</a></p>'
    '<p><a href="https://shop.example/sale">The sale</a> and <a href="https://shop.example/stores">our stores</a></p>'
    '<p><a href="https://blog.example/recipes/hot-chocolate">Hot chocolate, our way</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
TEXT = "Winter news, {{ profile.first_name }}: https://shop.example/winter\nUnsubscribe: {{ unsubscribe_url }}"
LINKS = 4

# What became of the messages of a run, per 10,000 (the rest: sent): (share, status, reason, detail).
OUTCOMES = (
    (200, "excluded", "no_consent", ""),
    (100, "excluded", "suppressed", ""),
    (60, "excluded", "frequency_cap", ""),
    (20, "excluded", "no_address", ""),
    (20, "excluded", "quiet_hours", ""),
    (50, "failed", "smtp_5.1.1", "550 5.1.1 <recipient>: Recipient address rejected: User unknown"),
    (30, "failed", "smtp_5.7.1", "554 5.7.1 Message rejected due to local policy"),
    (20, "failed", "retries_exhausted", "421 4.7.0 Temporary System Problem. Try again later"),
    (10, "failed", "template_error", "Liquid error: undefined variable profile.city"),
    (100, "bounced", "smtp_5.1.1", "5.1.1 The email account that you tried to reach does not exist"),
    (30, "bounced", "smtp_5.2.1", "5.2.1 The email account that you tried to reach is disabled"),
    (20, "bounced", "bounced", ""),
    (10, "complained", "complaint", "abuse report"),
    (10, "unknown", "connection_lost", "Connection lost after DATA"),
    (2000, "delivered", "", ""),
)
HANDED_OVER = ("sent", "delivered", "bounced", "complained")  # a provider message id and a sent_at
ENGAGED = ("sent", "delivered", "complained", "unknown")  # messages that went out and could be opened


@dataclass(frozen=True)
class Made:
    campaign_id: int
    version_id: int
    configuration_id: int
    summary: str


# --- Reset, users, profiles -------------------------------------------------------------------------------------


def reset() -> None:
    """No campaign, run, delivery, engagement or counter left from an earlier run (every table of the campaigns app,
    the counters' included whatever they are called), and an empty Redis database; profiles are kept. TRUNCATE, not
    DELETE: it fires no row trigger, so nothing is counted down, and the counters' tables are emptied with the rest."""
    tables = [name for name in connection.introspection.table_names() if name.startswith("campaigns_")]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(name) for name in tables)} CASCADE")
    django_rq.get_connection("campaigns").flushdb()


def actor():
    user, _ = get_user_model().objects.get_or_create(
        username=ACTOR, defaults={"email": f"{ACTOR}@example.com", "is_superuser": True, "is_staff": True}
    )
    return user


def viewer():
    """A campaign viewer: view_campaign and view_report, nothing else."""
    user, _ = get_user_model().objects.get_or_create(username=VIEWER, defaults={"email": f"{VIEWER}@example.com"})
    user.groups.set([Group.objects.get(name=Role.VIEWER.value)])
    return user


def domain_counts(total: int) -> list[tuple[str, int]]:
    names = [f"{name}.test" for name in PROVIDERS]
    names += [f"company{rank}.test" for rank in range(len(names), DOMAIN_COUNT)]
    weights = [1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(DOMAIN_COUNT)]
    counts = [int(total * weight / sum(weights)) for weight in weights]
    counts[0] += total - sum(counts)
    return list(zip(names, counts, strict=True))


def ensure_recipients(count: int) -> str:
    """At least `count` profiles r<n>@<domain> (email identity and consent), and the recipients table: every profile,
    numbered from 1 in an order that mixes the domains (a hash of the id), so the first `count` have the mix too."""
    started = time.perf_counter()
    made = sum(
        bench.ensure_profiles(PROFILE_PREFIX, domain, share, consent=True)
        for domain, share in domain_counts(count)
        if share
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE UNLOGGED TABLE IF NOT EXISTS {RECIPIENTS_TABLE} "
            "(g integer PRIMARY KEY, profile_id bigint NOT NULL, address varchar(254) NOT NULL)"
        )
        cursor.execute(f"SELECT count(*) FROM {RECIPIENTS_TABLE}")  # noqa: S608 - our constant
        listed = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM audiences_profile")
        profiles = cursor.fetchone()[0]
        if made or listed != profiles:
            cursor.execute(f"TRUNCATE {RECIPIENTS_TABLE}")
            cursor.execute(
                f"INSERT INTO {RECIPIENTS_TABLE} (g, profile_id, address) "  # noqa: S608 - our constant
                "SELECT row_number() OVER (ORDER BY hashint8(id), id), id, email FROM audiences_profile"
            )
            for table in (RECIPIENTS_TABLE, "audiences_profile", "audiences_identity", "audiences_consent"):
                cursor.execute(f"ANALYZE {table}")
        cursor.execute(
            f"SELECT count(DISTINCT split_part(address, '@', 2)) FROM {RECIPIENTS_TABLE} WHERE g <= %s",  # noqa: S608
            [count],
        )
        domains = cursor.fetchone()[0]
    if profiles + made < count:
        raise CommandError(f"{profiles + made:,} profiles, {count:,} wanted")
    return (
        f"{count:,} recipients over {domains} domains ({made:,} profiles made now, "
        f"{time.perf_counter() - started:.1f} s)"
    )


# --- The campaign -----------------------------------------------------------------------------------------------


def tracked_configuration() -> ChannelConfiguration:
    """An email configuration with open and click tracking and UTM parameters on (nothing is sent through it)."""
    configuration = ChannelConfiguration.objects.filter(name=CONFIGURATION).first() or ChannelConfiguration(
        name=CONFIGURATION, channel="email"
    )
    configuration.set_settings(
        EmailSettings(
            from_email="news@example.com",
            from_name="Shop",
            host="127.0.0.1",
            port=2598,
            security="none",
            purpose="marketing",
            track_opens=True,
            track_clicks=True,
            utm_parameters=True,
        )
    )
    configuration.is_active = True
    configuration.save()
    return configuration


def make_campaign(*, name: str, weekly: bool) -> Made:
    """A marketing campaign to every profile, made and activated through the product's services: weekly on Mondays at
    09:00 in Paris (waiting for its next occurrence), or on activation."""
    audience, _ = Audience.objects.get_or_create(name=AUDIENCE, defaults={"kind": Audience.Kind.ALL})
    schedule = (
        {
            "schedule": Campaign.Schedule.WEEKLY,
            "send_time": clock(9, 0),
            "weekdays": [0],
            "timezone_name": str(TIMEZONE),
        }
        if weekly
        else {"schedule": Campaign.Schedule.ON_ACTIVATION}
    )
    configuration = tracked_configuration()
    campaign = lifecycle.campaign_create(
        actor=actor(),
        name=name,
        kind=Campaign.Kind.SCHEDULED,
        category=Campaign.Category.MARKETING,
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content(SUBJECT, HTML, TEXT),
        **schedule,
    )
    campaign = lifecycle.campaign_activate(campaign=campaign, actor=actor())
    links = tracking.version_links(campaign.live_version.html_body).urls
    if len(links) != LINKS:
        raise CommandError(f"the content has {len(links)} tracked links, {LINKS} expected: {links}")
    how = "weekly, Mondays 09:00 Europe/Paris" if weekly else "on activation"
    return Made(
        campaign_id=campaign.pk,
        version_id=campaign.live_version_id,
        configuration_id=configuration.pk,
        summary=f"campaign {campaign.pk} ({how}, {LINKS} tracked links, opens and clicks tracked)",
    )


def mark_completed(campaign_id: int) -> None:
    """As campaigns.engine.completion leaves a one-off campaign whose run is complete."""
    Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.COMPLETED, next_run_at=None)


def weekly_occurrences(now: datetime, count: int) -> list[datetime]:
    """The last `count` Monday 09:00 (Paris) occurrences that ended at least a day ago, latest first."""
    local = (now - timedelta(days=1)).astimezone(TIMEZONE)
    monday = (local - timedelta(days=local.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    if monday > local:
        monday -= timedelta(weeks=1)
    return [monday - timedelta(weeks=weeks) for weeks in range(count)]


def make_run(made: Made, *, occurrence: datetime, sending: timedelta) -> Run:
    """A complete scheduled run of the campaign's live version, which started at `occurrence` and sent for
    `sending`."""
    run = Run.objects.create(
        campaign_id=made.campaign_id,
        version_id=made.version_id,
        kind=Run.Kind.SCHEDULED,
        occurrence=occurrence.astimezone(TIMEZONE).strftime("%Y-%m-%dT%H:%M"),
        state=Run.State.COMPLETE,
        planning_done=True,
    )
    Run.objects.filter(pk=run.pk).update(
        created_at=occurrence,
        sending_at=occurrence + timedelta(minutes=1),
        finished_at=occurrence + timedelta(minutes=1) + sending,
    )
    run.refresh_from_db()
    return run


# --- Deliveries and engagement ------------------------------------------------------------------------------------


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _outcome_case(column: int, rest: str) -> str:
    """CASE over `h.u` (0-9999) choosing the `column` of OUTCOMES, `rest` for the messages simply sent."""
    parts, bound = [], 0
    for outcome in OUTCOMES:
        bound += outcome[0]
        parts.append(f"WHEN h.u < {bound} THEN {_quoted(outcome[column])}")
    return f"CASE {' '.join(parts)} ELSE {_quoted(rest)} END"


_HANDED_OVER = ", ".join(map(_quoted, HANDED_OVER))
_DELIVERIES = f"""
INSERT INTO campaigns_delivery (
    run_id, version_id, profile_id, channel, channel_configuration_id, trigger_request_id, address, due_at, status,
    reason, detail, attempts, first_attempt_at, next_attempt_at, provider_message_id, claim_token, claimed_at,
    claimed_by, sent_at
)
SELECT %(run)s, %(version)s, r.profile_id, 'email', %(configuration)s, NULL,
    CASE WHEN o.reason = 'no_address' THEN '' ELSE r.address END, %(start)s, o.status, o.reason, o.detail,
    CASE WHEN o.status = 'excluded' THEN 0 WHEN o.reason = 'retries_exhausted' THEN 5 ELSE 1 END,
    CASE WHEN o.status = 'excluded' THEN NULL ELSE o.at END,
    NULL,
    CASE WHEN o.status IN ({_HANDED_OVER}) THEN 'bench-' || %(run)s || '-' || r.g || '@relay.test' ELSE '' END,
    NULL, NULL, NULL,
    CASE WHEN o.status IN ({_HANDED_OVER}) THEN o.at END
FROM {RECIPIENTS_TABLE} r
CROSS JOIN LATERAL (
    SELECT CASE WHEN %(all_sent)s THEN 10000 ELSE mod(abs(hashint8extended(r.g, %(seed)s)), 10000) END AS u
) h
CROSS JOIN LATERAL (
    SELECT {_outcome_case(1, "sent")} AS status, {_outcome_case(2, "")} AS reason, {_outcome_case(3, "")} AS detail,
        %(start)s + make_interval(secs => r.g * %(spread)s) AS at
) o
WHERE r.g BETWEEN %(first)s AND %(last)s
"""  # noqa: S608 - built from this module's constants


def _h(seed: int) -> str:
    """A per-mille (0-999) drawn from the delivery's id."""
    return f"mod(abs(hashint8extended(d.id, {seed})), 1000)"


_AT = "coalesce(d.sent_at, d.first_attempt_at)"
_OPENED_AT = f"{_AT} + make_interval(secs => 60 + mod(abs(hashint8extended(d.id, 4)), 172800))"
_ENGAGED = ", ".join(map(_quoted, ENGAGED))
_ENGAGEMENT = f"""
INSERT INTO campaigns_engagement (delivery_id, kind, link, machine, first_at, last_at, count)
SELECT d.id, %(kind)s, {{link}}, {{machine}}, e.first_at, e.first_at + (e.count - 1) * interval '{{gap}}', e.count
FROM campaigns_delivery d
CROSS JOIN LATERAL (SELECT {{first_at}} AS first_at, {{count}} AS count) e
WHERE d.run_id = %(run)s AND d.id BETWEEN %(first)s AND %(last)s AND d.status IN ({_ENGAGED}) AND {{where}}
"""  # noqa: S608 - built from this module's constants


def _engagement_statements() -> list[tuple[str, str, str]]:
    """(what, kind, SQL) of each engagement statement. About 20% of the messages that went out opened by people
    (30% of them more than once), 6% by a mail privacy proxy (25% in all), 6% clicked by people (a quarter of them on
    two links; 20% more than once), 1% clicked by a link scanner (every link, within seconds), 0.3% unsubscribed.

    A message's rows of one kind and machine flag go in separate statements (its second link after its first): the
    tally trigger decides whether a row is the message's first of its kind when the statement ends, when it would
    see its sibling rows of the same statement, as it never does with one request a statement."""
    people_open = f"{_h(1)} < 210"
    people_click = f"{_h(1)} < 60"
    first_link = f"mod({_h(9)}, {LINKS})"
    statements = [
        (
            "opens by people",
            "open",
            dict(
                link="NULL",
                machine="false",
                where=people_open,
                count=f"CASE WHEN {_h(2)} < 300 THEN 2 + mod({_h(3)}, 4) ELSE 1 END",
                first_at=_OPENED_AT,
                gap="3 hours",
            ),
        ),
        (
            "opens by proxies",
            "open",
            dict(
                link="NULL",
                machine="true",
                where=f"{_h(6)} < 60",
                count=f"CASE WHEN {_h(7)} < 100 THEN 2 ELSE 1 END",
                first_at=f"{_AT} + make_interval(secs => 1 + mod({_h(8)}, 8))",
                gap="1 hour",
            ),
        ),
        (
            "clicks by people, a first link",
            "click",
            dict(
                link=first_link,
                machine="false",
                where=people_click,
                count=f"CASE WHEN {_h(10)} < 200 THEN 2 + mod({_h(11)}, 3) ELSE 1 END",
                first_at=f"{_OPENED_AT} + make_interval(secs => 5 + mod({_h(12)}, 600))",
                gap="20 minutes",
            ),
        ),
        (
            "clicks by people, a second link",
            "click",
            dict(
                link=f"mod({first_link} + 1 + mod({_h(14)}, {LINKS - 1}), {LINKS})",
                machine="false",
                where=f"{people_click} AND {_h(13)} < 250",
                count="1",
                first_at=f"{_OPENED_AT} + make_interval(secs => 700 + mod({_h(12)}, 600))",
                gap="0 seconds",
            ),
        ),
    ]
    statements += [
        (
            f"clicks by link scanners, link {position}",
            "click",
            dict(
                link=str(position),
                machine="true",
                where=f"{_h(15)} < 10",
                count="1",
                first_at=f"{_AT} + make_interval(secs => {2 + position})",
                gap="0 seconds",
            ),
        )
        for position in range(LINKS)
    ]
    if "unsubscribe" in Engagement.Kind.values:
        statements.append(
            (
                "unsubscribes",
                "unsubscribe",
                dict(
                    link="NULL",
                    machine="false",
                    where=f"{people_open} AND {_h(16)} < 15",
                    count="1",
                    first_at=f"{_OPENED_AT} + make_interval(secs => 30)",
                    gap="0 seconds",
                ),
            )
        )
    return [(what, kind, _ENGAGEMENT.format(**parts)) for what, kind, parts in statements]


def fill_run(made: Made, run: Run, *, count: int, seed: int, engagement: bool, sent_only: bool = False) -> dict:
    """`count` deliveries of the run (the first `count` recipients), then their engagement: a statement per chunk of
    CHUNK messages (ENGAGEMENT_CHUNK for engagement), each committed on its own. With `sent_only` every message is
    simply sent (the tracking windows)."""
    spread = (run.finished_at - run.sending_at).total_seconds() / max(count, 1)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for first in range(1, count + 1, CHUNK):
            cursor.execute(
                _DELIVERIES,
                {
                    "run": run.pk,
                    "version": made.version_id,
                    "configuration": made.configuration_id,
                    "start": run.sending_at,
                    "seed": seed,
                    "all_sent": sent_only,  # past every share of OUTCOMES: sent
                    "spread": spread,
                    "first": first,
                    "last": min(first + CHUNK - 1, count),
                },
            )
        deliveries_seconds = time.perf_counter() - started
        cursor.execute("SELECT min(id), max(id), count(*) FROM campaigns_delivery WHERE run_id = %s", [run.pk])
        low, high, written = cursor.fetchone()
        engagement_rows: dict[str, int] = {}
        started = time.perf_counter()
        if engagement and written:
            for what, kind, statement in _engagement_statements():
                for first in range(low, high + 1, ENGAGEMENT_CHUNK):
                    last = min(first + ENGAGEMENT_CHUNK - 1, high)
                    cursor.execute(statement, {"kind": kind, "run": run.pk, "first": first, "last": last})
                    engagement_rows[what] = engagement_rows.get(what, 0) + cursor.rowcount
    return {
        "run": run.pk,
        "deliveries": written,
        "deliveries_seconds": deliveries_seconds,
        "engagement_rows": engagement_rows,
        "engagement_seconds": time.perf_counter() - started,
    }


def ledger_summary(run_id: int) -> dict:
    """What the ledger holds for a run: messages by status, and engagement rows, requests and messages by kind."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM campaigns_delivery WHERE run_id = %s GROUP BY status ORDER BY 2 DESC",
            [run_id],
        )
        statuses = dict(cursor.fetchall())
        cursor.execute(
            """
            SELECT e.kind, e.machine, count(*), sum(e.count)::bigint, count(DISTINCT e.delivery_id)
            FROM campaigns_engagement e JOIN campaigns_delivery d ON d.id = e.delivery_id
            WHERE d.run_id = %s GROUP BY e.kind, e.machine ORDER BY e.kind, e.machine
            """,
            [run_id],
        )
        engagement = {
            f"{kind} ({'machine' if machine else 'people'})": {"rows": rows, "requests": requests, "messages": messages}
            for kind, machine, rows, requests, messages in cursor.fetchall()
        }
    return {"statuses": statuses, "engagement": engagement}


def vacuum_analyze() -> float:
    """VACUUM (ANALYZE) of the whole database, as autovacuum would leave it after large inserts: visibility maps
    set (a count may then read the index only) and fresh statistics. Seconds taken."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started
