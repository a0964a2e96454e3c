"""Campaign and run reports: the numbers of a ledger built for the test, engagement through the real tracking and
unsubscribe links, rates, domains and links; viewers read reports without any action; a live run's panel polls and a
finished one's does not; the cost of a report does not grow with the number of runs."""

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audiences.models import Profile
from campaigns.models import Delivery, DeliveryTally, Run
from campaigns.selectors import reports
from campaigns.services import tallies
from campaigns.services.lifecycle import Content
from channels.unsubscribe import unsubscribe_url
from tests.campaigns.test_tracking import BROWSER, GMAIL_PROXY, click_path, open_path
from tests.conftest import PASSWORD, make_email_configuration

S = Delivery.Status
PERSON = {"HTTP_USER_AGENT": BROWSER, "REMOTE_ADDR": "203.0.113.7"}
CONTENT = Content(
    "June news",
    '<p><a href="https://shop.example/new">New</a> <a href="https://shop.example/sale">Sale</a> '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    "",
)
# (address, status, reason) of the ledger the tests build: 10 messages.
LEDGER = [
    ("ann@gmail.com", S.SENT, ""),
    ("bob@gmail.com", S.SENT, ""),
    ("cy@gmail.com", S.SENT, ""),
    ("di@yahoo.com", S.SENT, ""),
    ("ed@yahoo.com", S.BOUNCED, "smtp_550"),
    ("flo@corp.example", S.COMPLAINED, "complaint"),
    ("gus@corp.example", S.FAILED, "smtp_550"),
    ("hal@corp.example", S.FAILED, "retries_exhausted"),
    ("ivy@corp.example", S.EXCLUDED, "no_consent"),
    ("jo@corp.example", S.PENDING, ""),
]


def _campaign_with_run(personas, *, occurrence="2026-06-01T09:00", ledger=LEDGER):
    from audiences.models import Audience
    from campaigns.models import Campaign
    from campaigns.services.lifecycle import campaign_create

    campaign = Campaign.objects.filter(name="June news").first()
    if campaign is None:
        campaign = campaign_create(
            actor=personas["manny"],
            name="June news",
            channel_configuration=make_email_configuration(port=25, track_opens=True, track_clicks=True),
            audience=Audience.objects.get_or_create(name="Everyone", kind=Audience.Kind.ALL)[0],
            content=CONTENT,
        )
    version = campaign.latest_version()
    run = Run.objects.create(
        campaign=campaign, version=version, occurrence=occurrence, state=Run.State.COMPLETE, finished_at=timezone.now()
    )
    sent_at = timezone.now() - timedelta(hours=1)
    for address, status, reason in ledger:
        profile, _ = Profile.objects.get_or_create(email=address)
        Delivery.objects.create(
            run=run,
            version=version,
            profile=profile,
            channel="email",
            channel_configuration=version.channel_configuration,
            address=address,
            due_at=sent_at,
            status=status,
            reason=reason,
            sent_at=sent_at if status not in (S.EXCLUDED, S.PENDING) else None,
        )
    return campaign, run


def _delivery(run, address) -> Delivery:
    return Delivery.objects.get(run=run, address=address)


def _engage(client, run):
    """Opens, clicks and unsubscribes through the public links, as people and machines make them."""
    ann, bob, cy, di = (_delivery(run, a) for a in ("ann@gmail.com", "bob@gmail.com", "cy@gmail.com", "di@yahoo.com"))
    for delivery, headers in [
        (ann, PERSON),
        (ann, PERSON),
        (bob, PERSON),
        (cy, {"HTTP_USER_AGENT": GMAIL_PROXY, "REMOTE_ADDR": "66.249.84.1"}),  # a mail privacy proxy: a machine
    ]:
        assert client.get(open_path(delivery.pk), **headers).status_code == 200
    for delivery, position in [(ann, 0), (ann, 1), (ann, 1), (bob, 1)]:
        assert client.get(click_path(delivery.pk, position), **PERSON).status_code == 302
    assert client.head(click_path(di.pk, 0), **PERSON).status_code == 302  # a HEAD request: a scanner
    path = urlsplit(unsubscribe_url(profile_id=bob.profile_id, channel="email", delivery_id=bob.pk)).path
    assert client.post(path).status_code == 200
    assert client.post(path).status_code == 200  # confirmed twice: one unsubscribe


def _cell(html: str, row: str) -> list[str]:
    """The cells after the row heading `row` in the page's report tables."""
    match = re.search(rf"<th scope=\"row\"[^>]*>{re.escape(row)}</th>(.*?)</tr>", html, re.S)
    assert match, row
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", match[1], re.S)]


@pytest.fixture
def reported(personas, client, redis):
    campaign, run = _campaign_with_run(personas)
    _engage(client, run)
    return campaign, run


@pytest.mark.parametrize("compacted", [False, True])
def test_run_report_shows_the_numbers_of_the_ledger(reported, client, personas, compacted):
    campaign, run = reported
    if compacted:
        tallies.tallies_compact(now=timezone.now())
    client.force_login(personas["vera"])  # a viewer
    response = client.get(reverse("campaigns:run_report", args=[campaign.pk, run.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert _cell(html, "Targeted") == ["10"]
    assert _cell(html, "Excluded") == ["1"]
    assert _cell(html, "Sent")[0] == "6"  # 4 sent, 1 bounced and 1 complained after they were taken
    assert _cell(html, "Delivered")[0] == "5"
    assert _cell(html, "Bounced, hard")[0] == "2"  # the bounce, and the 550 refused at the handover
    assert _cell(html, "Bounced, soft")[0] == "1"
    assert _cell(html, "Failed at the handover")[0] == "2"  # at the handover; the bounce and the complaint came after
    assert _cell(html, "Still to send") == ["1"]
    assert _cell(html, "Opens") == ["2", "3", "1", "1"]  # ann twice and bob; the proxy's open of cy apart
    assert _cell(html, "Clicks") == ["2", "4", "1", "1"]  # ann on two links, bob; di's HEAD was a scanner's
    assert _cell(html, "Unsubscribes")[0] == "1"
    assert _cell(html, "Complaints")[0] == "1"
    assert _cell(html, "Open rate")[:2] == ["40.0%", "2 / 5"]
    assert _cell(html, "Click-to-open rate")[:2] == ["100.0%", "2 / 2"]
    assert _cell(html, "Delivery rate")[:2] == ["62.5%", "5 / 8"]
    assert _cell(html, "Complaint rate")[:2] == ["20.0%", "1 / 5"]
    domains = {row.domain: row for row in response.context["domains"]}
    assert (domains["gmail.com"].messages, domains["gmail.com"].opened, domains["gmail.com"].clicked) == (3, 2, 2)
    assert (domains["yahoo.com"].bounced, domains["corp.example"].failed) == (1, 2)
    links = [(link.url, link.people, link.total, link.machine_total) for link in response.context["links"]]
    assert links == [("https://shop.example/sale", 2, 3, 0), ("https://shop.example/new", 1, 1, 1)]
    # The chart is there, with its numbers in a table beside it.
    assert html.count('role="img"') == 2
    assert "Sends and engagement over time" in html and ">Opened (people)</th>" in html


def test_a_viewer_reads_reports_without_any_action(reported, client, personas):
    campaign, run = reported
    client.force_login(personas["vera"])
    for url in (
        reverse("campaigns:report", args=[campaign.pk]),
        reverse("campaigns:run_report", args=[campaign.pk, run.pk]),
    ):
        html = client.get(url).content.decode()
        assert "<form" not in html.split("<main", 1)[-1]
        assert "Download deliveries" not in html
    client.force_login(personas["ada"])  # an administrator may read and export the deliveries
    html = client.get(reverse("campaigns:run_report", args=[campaign.pk, run.pk])).content.decode()
    assert "Download deliveries" in html


def test_reports_need_view_report(reported, client, django_user_model):
    from django.contrib.auth.models import Permission

    campaign, run = reported
    user = django_user_model.objects.create_user("reader", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    assert client.get(reverse("campaigns:run_report", args=[campaign.pk, run.pk])).status_code == 403
    assert client.get(reverse("campaigns:report", args=[campaign.pk])).status_code == 403


def test_a_run_of_another_campaign_is_not_found(reported, client, personas):
    campaign, run = reported
    client.force_login(personas["vera"])
    assert client.get(reverse("campaigns:run_report", args=[campaign.pk + 1000, run.pk])).status_code == 404


def test_the_live_panel_polls_while_the_run_sends_only(reported, client, personas):
    campaign, run = reported
    client.force_login(personas["vera"])
    live = reverse("campaigns:run_report_live", args=[campaign.pk, run.pk])
    assert "hx-get" not in client.get(live).content.decode()
    Run.objects.filter(pk=run.pk).update(state=Run.State.SENDING, sending_at=timezone.now() - timedelta(minutes=2))
    html = client.get(live).content.decode()
    assert f'hx-get="{live}"' in html
    assert "messages a second" in html  # 6 first outcomes this minute (the ledger was written just now)


def test_campaign_report_adds_runs_up_and_its_cost_does_not_grow_with_them(reported, client, personas):
    campaign, _run = reported
    client.force_login(personas["vera"])
    url = reverse("campaigns:report", args=[campaign.pk])
    with CaptureQueriesContext(connection) as one_run:
        assert client.get(url).status_code == 200
    for day in range(2, 6):
        _campaign_with_run(personas, occurrence=f"2026-06-0{day}T09:00")
    with CaptureQueriesContext(connection) as five_runs:
        response = client.get(url)
    assert len(five_runs) == len(one_run)
    html = response.content.decode()
    assert _cell(html, "Targeted") == ["50"]
    assert _cell(html, "Opens")[:2] == ["2", "3"]
    assert html.count('role="img"') == 1  # the trend of the runs' rates
    assert len(response.context["rows"]) == 5


def test_campaign_page_links_each_run_to_its_report(reported, client, personas):
    campaign, run = reported
    client.force_login(personas["vera"])
    html = client.get(reverse("campaigns:status", args=[campaign.pk])).content.decode()
    assert reverse("campaigns:run_report", args=[campaign.pk, run.pk]) in html
    assert reverse("campaigns:report", args=[campaign.pk]) in html


def test_enhanced_smtp_codes_are_hard_and_soft_bounces(personas):
    _campaign, run = _campaign_with_run(
        personas,
        ledger=[
            ("a@x.example", S.FAILED, "smtp_5.1.1"),
            ("b@x.example", S.FAILED, "smtp_550"),
            ("c@x.example", S.FAILED, "smtp_4.2.2"),
            ("d@x.example", S.FAILED, "smtp_5xx"),  # not an SMTP reply's code
        ],
    )
    figures = reports.figures_of_runs([run.pk])[run.pk]
    assert (figures.hard_bounces, figures.soft_bounces, figures.failed) == (2, 1, 4)


def test_a_complaint_after_a_reported_open_is_counted(personas):
    from campaigns.services.feedback import feedback_apply
    from channels.feedback import EventType, FeedbackEvent

    _campaign, run = _campaign_with_run(personas, ledger=[("a@x.example", S.OPENED, "")])
    delivery = Delivery.objects.get(run=run)
    feedback_apply(
        events=[
            FeedbackEvent(
                type=EventType.COMPLAINED, delivery_id=delivery.pk, configuration_id=delivery.channel_configuration_id
            )
        ]
    )
    assert reports.figures_of_runs([run.pk])[run.pk].complaints == 1


def test_a_run_named_with_an_impossible_id_is_not_found(reported, client, personas):
    campaign, run = reported
    client.force_login(personas["vera"])
    huge = 2**63
    for url in (
        f"/campaigns/{huge}/runs/{run.pk}/report/",
        f"/campaigns/{huge}/runs/{run.pk}/report/live/",
        f"/campaigns/{campaign.pk}/runs/{huge}/report/",
    ):
        assert client.get(url).status_code == 404, url
    client.force_login(personas["ada"])
    assert client.get(f"/campaigns/{huge}/runs/{run.pk}/deliveries.csv").status_code == 404


def test_days_on_the_timeline_begin_on_the_readers_clock(personas, settings):
    from django.utils import timezone as tz

    _campaign, run = _campaign_with_run(personas, ledger=[])
    first = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York
    DeliveryTally.objects.create(run=run, status=S.SENT, bucket=first, n=3)
    DeliveryTally.objects.create(run=run, status=S.SENT, bucket=first + timedelta(days=12), n=1)
    with tz.override("America/New_York"):
        timeline = reports.run_timeline(run_id=run.pk)
    assert timeline.step == timedelta(days=1)
    assert (timeline.buckets[0].date(), timeline.buckets[0].hour) == (date(2026, 6, 10), 0)
    assert timeline.series["Sent"][0] == 3 and sum(timeline.series["Sent"]) == 4
