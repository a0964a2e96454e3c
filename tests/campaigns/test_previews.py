"""The content preview as a person (issue 14, item 3): subject, HTML body and text part rendered for a chosen profile
with an API-triggered campaign's example context, and render errors shown with the part and the line."""

import pytest
from django.urls import reverse

from audiences.models import Profile
from campaigns import previews
from campaigns.models import Campaign, CampaignVersion
from campaigns.services import lifecycle
from tests.conftest import make_email_configuration


@pytest.fixture
def order_shipped(personas):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Order shipped",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=make_email_configuration(port=25, purpose="transactional"),
        audience=None,
        content=lifecycle.Content(
            "{{ profile.first_name }}, order {{ context.order.id }} is on its way",
            "<p>Hi {{ profile.first_name }}</p><p>{{ context.order.items | size }} items</p>",
            "Hi {{ profile.first_name }},\norder {{ context.order.id }} ({{ profile.email }})",
        ),
    )
    lifecycle.campaign_update_contract(
        campaign=campaign,
        actor=personas["manny"],
        contract=[{"name": "order", "type": "object", "example": {"id": "A-17", "items": [1, 2, 3]}}],
    )
    campaign.refresh_from_db()
    return campaign


def test_each_part_renders_as_the_profile_with_the_example_context(order_shipped):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    preview = previews.version_preview(version=order_shipped.versions.get(), profile=ann)

    assert preview.error is None
    assert preview.context == {"order": {"id": "A-17", "items": [1, 2, 3]}}
    assert preview.rendered.subject == "Ann, order A-17 is on its way"
    assert preview.rendered.html == "<p>Hi Ann</p><p>3 items</p>"
    assert preview.rendered.text == "Hi Ann,\norder A-17 (ann@example.com)"


def test_the_page_shows_subject_text_part_and_frame_for_the_profile_picked(client, personas, order_shipped):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    client.force_login(personas["manny"])

    page = client.get(order_shipped.get_absolute_url(), {"preview_q": "ann@example.com"}).content.decode()

    assert "<dt>Subject</dt><dd>Ann, order A-17 is on its way</dd>" in page
    assert '<pre class="text-body">Hi Ann,\norder A-17 (ann@example.com)</pre>' in page
    frame_url = f"{reverse('campaigns:preview', args=[order_shipped.pk, 1])}?profile={ann.pk}"
    assert f'src="{frame_url}"' in page
    assert client.get(frame_url).content.decode() == "<p>Hi Ann</p><p>3 items</p>"
    # The proof card offers the same profile.
    assert f'name="profile" value="{ann.pk}" checked' in page


def test_a_render_error_names_the_part_and_its_line(client, personas, order_shipped):
    html = "<p>Hi</p>\n<p>{{ profile.first_name }}</p>\n<p>{{ context.order.id | divided_by: 0 }}</p>"
    CampaignVersion.objects.filter(campaign=order_shipped).update(html_body=html)
    client.force_login(personas["vera"])

    page = client.get(order_shipped.get_absolute_url()).content.decode()

    assert "HTML body does not render: divided_by: can&#x27;t divide by 0, at line 3" in page
    assert "Line 3 of the html body: <code>&lt;p&gt;{{ context.order.id | divided_by: 0 }}&lt;/p&gt;</code>" in page
    assert "Not rendered: see the error above." in page  # the text part is not shown half-rendered
    frame = client.get(reverse("campaigns:preview", args=[order_shipped.pk, 1])).content.decode()
    assert "HTML body does not render: divided_by: can&#x27;t divide by 0, at line 3" in frame


def test_an_error_liquid_places_nowhere_is_shown_without_a_line(order_shipped):
    CampaignVersion.objects.filter(campaign=order_shipped).update(text_body="Hi\n{% if profile.vip %}\nVIP")

    preview = previews.version_preview(version=order_shipped.versions.get())

    assert preview.error_line is None and preview.error_source == ""
    assert preview.error_text == "Text body does not render: expected tag endif, found end of expression"


def test_an_unknown_filter_is_placed_on_its_line_of_the_subject(order_shipped):
    CampaignVersion.objects.filter(campaign=order_shipped).update(subject="Hi {{ profile.first_name | shout }}")

    preview = previews.version_preview(version=order_shipped.versions.get())

    assert (preview.error_part, preview.error_line) == ("Subject", 1)
    assert preview.error_source == "Hi {{ profile.first_name | shout }}"
