"""Breadcrumbs: links (and plain <span> labels) only; app.css puts one " /" after each, so a separator written in
the template too showed empty segments ("Campaigns / / Spring sale /")."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
BREADCRUMB = re.compile(r'<p class="breadcrumb">(.*?)</p>', re.S)
SEGMENT = re.compile(r"<a [^>]*>.*?</a>|<span>[^<]*</span>|{%.*?%}", re.S)


def _breadcrumbs():
    for path in sorted(TEMPLATES.rglob("*.html")):
        for trail in BREADCRUMB.findall(path.read_text()):
            yield path.relative_to(TEMPLATES), trail


def test_templates_have_breadcrumbs():
    assert len(list(_breadcrumbs())) > 20


@pytest.mark.parametrize(("template", "trail"), list(_breadcrumbs()), ids=lambda value: str(value)[:40])
def test_a_breadcrumb_holds_nothing_but_its_segments(template, trail):
    assert SEGMENT.sub("", trail).strip() == "", f"{template}: text outside a segment in {trail!r}"


def test_the_edit_page_breadcrumb_has_one_link_per_segment(client, personas):
    from audiences.models import Audience
    from campaigns.services import lifecycle
    from channels.models import ChannelConfiguration
    from channels.schemas import EmailSettings

    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(EmailSettings(from_email="news@example.com", host="127.0.0.1", port=1025))
    configuration.save()
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Hello", "<p>Hi</p>", "Hi"),
    )
    client.force_login(personas["manny"])

    page = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()

    [trail] = BREADCRUMB.findall(page)
    assert trail == f'<a href="/campaigns/">Campaigns</a> <a href="/campaigns/{campaign.pk}/">Spring sale</a>'
