"""An approver's bell counts the review requests still waiting: a decided one, by whoever, no longer counts."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audiences.models import Audience
from campaigns.services import approval, lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from permissions.models import Notification
from permissions.roles import Role

# Marketing email shows an unsubscribe link, or it is not submitted.
HTML = '<p>Hi</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
TEXT = "Hi\n\nUnsubscribe: {{ unsubscribe_url }}"


@pytest.fixture
def submitted(personas):
    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(EmailSettings(from_email="news@example.com", host="127.0.0.1", port=1025))
    configuration.save()
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Hello", HTML, TEXT),
    )
    approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(
            name="Marketing review",
            approver_groups=[Group.objects.get(name=role.value) for role in (Role.APPROVER, Role.ADMINISTRATOR)],
        ),
    )
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    return campaign


def _bell(client, user) -> str:
    client.force_login(user)
    page = client.get(reverse("permissions:notifications")).content.decode()
    start = page.index('class="bell"')
    return page[start : page.index("</a>", start)]


def _unread(user) -> list[str]:
    return list(Notification.objects.filter(user=user, read_at__isnull=True).values_list("title", flat=True))


def test_both_approvers_are_asked_and_their_bells_count_it(client, personas, submitted):
    for name in ("ada", "april"):
        assert _unread(personas[name]) == ["Review requested: Spring sale (version 1)"]
        assert '<span class="bell-count">1<' in _bell(client, personas[name])


def test_an_approval_by_one_approver_clears_the_request_from_every_approvers_bell(client, personas, submitted):
    approval.campaign_approve(campaign=submitted, actor=personas["april"])

    for name in ("ada", "april"):
        assert _unread(personas[name]) == []
        assert "bell-count" not in _bell(client, personas[name])
    # The request stays in the inbox, read; the submitter is told of the decision.
    assert Notification.objects.filter(user=personas["ada"], read_at__isnull=False).count() == 1
    assert _unread(personas["manny"]) == ["Approved: Spring sale (version 1)"]


def test_a_request_for_changes_clears_the_request_too(client, personas, submitted):
    approval.campaign_request_changes(campaign=submitted, actor=personas["ada"], comment="Shorter subject")

    assert _unread(personas["april"]) == [] and _unread(personas["ada"]) == []
    assert "bell-count" not in _bell(client, personas["april"])


def test_a_new_submission_counts_again_and_other_notifications_are_untouched(client, personas, submitted):
    approval.campaign_request_changes(campaign=submitted, actor=personas["ada"], comment="Shorter subject")
    lifecycle.campaign_update_content(
        campaign=submitted, actor=personas["manny"], content=lifecycle.Content("Hi", HTML, TEXT)
    )
    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])

    assert _unread(personas["april"]) == ["Review requested: Spring sale (version 1)"]
    assert _unread(personas["manny"]) == ["Changes requested: Spring sale (version 1)"]
    approval.campaign_approve(campaign=submitted, actor=personas["april"])
    assert _unread(personas["april"]) == []
    # The submitter's own notifications are about the campaign page, not the review: still unread.
    assert sorted(_unread(personas["manny"])) == [
        "Approved: Spring sale (version 1)",
        "Changes requested: Spring sale (version 1)",
    ]
