"""`manage.py seed_demo`: demo data for a first look, created once."""

from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command

from audiences.models import Audience, Consent, Profile
from audiences.selectors.audiences import audience_size
from campaigns.models import ApprovalPolicy, Campaign, CampaignVersion, ReviewDecision
from campaigns.personalization import compiled_content
from campaigns.services import approval
from campaigns.unsubscribe import visible_unsubscribe_errors
from channels.adapters.email_footer import shows_unsubscribe_url
from channels.models import ChannelConfiguration
from permissions.roles import Role, user_roles


def _counts():
    return {
        "users": get_user_model().objects.count(),
        "profiles": Profile.objects.count(),
        "consents": Consent.objects.count(),
        "audiences": Audience.objects.count(),
        "configurations": ChannelConfiguration.objects.count(),
        "campaigns": Campaign.objects.count(),
        "approval policies": ApprovalPolicy.objects.count(),
        "review decisions": ReviewDecision.objects.count(),
    }


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_twice_creates_the_data_once(db):
    _seed()
    first = _counts()

    output = _seed()

    assert _counts() == first
    assert "Nothing to do" in output
    assert first["users"] == 4
    assert 950 <= first["profiles"] <= 1050
    assert (first["audiences"], first["configurations"], first["approval policies"]) == (2, 1, 1)


def test_demo_users_hold_their_roles_and_log_in(db, client):
    _seed()

    User = get_user_model()
    expected = {"admin": Role.ADMINISTRATOR, "approver": Role.APPROVER, "manager": Role.MANAGER, "viewer": Role.VIEWER}
    for username, role in expected.items():
        user = User.objects.get(username=username)
        assert user_roles(user) == [role.value]
        assert user.email == f"{username}@example.com"
        assert client.login(username=username, password="demo-password-123")


def test_demo_data_is_varied_and_usable(db):
    _seed()

    assert Profile.objects.filter(email="").exists()
    assert Consent.objects.filter(channel="email", state=Consent.State.OPTED_OUT).exists()
    assert Profile.objects.values("timezone").distinct().count() > 3
    assert 0 < audience_size(Audience.objects.get(name="Pro customers in France")) < Profile.objects.count()
    settings = ChannelConfiguration.objects.get().get_settings()
    assert (settings.from_email, settings.security, settings.connections) == ("news@example.com", "none", 4)
    statuses = set(Campaign.objects.values_list("status", flat=True))
    assert {Campaign.Status.DRAFT, Campaign.Status.ACTIVE} <= statuses
    weekly = Campaign.objects.get(status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED)
    assert weekly.next_run_at is not None and weekly.cron
    # The password reset is live too, so the README's trigger examples work as written.
    reset = Campaign.objects.get(status=Campaign.Status.ACTIVE, kind=Campaign.Kind.API_TRIGGERED)
    assert reset.name == "Password reset" and reset.live_version is not None


def test_demo_marketing_campaigns_went_through_the_approval_policy(db):
    _seed()

    policy = ApprovalPolicy.objects.get()
    assert (policy.name, policy.categories, policy.block_self_approval, policy.is_active) == (
        "Marketing needs approval",
        [Campaign.Category.MARKETING],
        True,
        True,
    )
    assert [group.name for group in policy.approver_groups.all()] == [Role.APPROVER.value]
    assert not policy.approver_users.exists()
    # Every marketing campaign that has been live sends a version the manager submitted and the approver approved.
    published = Campaign.objects.filter(category=Campaign.Category.MARKETING, live_version__isnull=False)
    assert set(published.values_list("status", flat=True)) == {Campaign.Status.ACTIVE, Campaign.Status.PAUSED}
    for campaign in published:
        assert approval.matching_policies(campaign) == [policy]
        version = campaign.live_version
        assert version == campaign.latest_version()
        assert version.review_state == CampaignVersion.ReviewState.APPROVED
        assert version.submitted_by.username == "manager"
        [decision] = version.decisions.all()
        assert (decision.decision, decision.decided_by.username) == (ReviewDecision.Decision.APPROVE, "approver")
    # One waits in the approver's review queue; the transactional password reset needs no approval.
    in_review = Campaign.objects.get(name="Spring sale preview")
    assert in_review.latest_version().review_state == CampaignVersion.ReviewState.IN_REVIEW
    approver = get_user_model().objects.get(username="approver")
    assert approver.notifications.filter(title__startswith="Review requested: Spring sale preview").exists()
    assert not approval.approval_required(Campaign.objects.get(name="Password reset"))


def test_the_demo_newsletter_shows_an_unsubscribe_link_in_its_footer(db):
    _seed()

    newsletter = Campaign.objects.get(name="Weekly newsletter")
    version = newsletter.live_version
    assert visible_unsubscribe_errors(campaign=newsletter, version=version) == {}
    # In the content's own footer (the demo relay has none), in both parts.
    assert not version.channel_configuration.get_settings().footer_html
    assert shows_unsubscribe_url(version.html_body) and shows_unsubscribe_url(version.text_body)
    rendered = compiled_content(version).render(
        {"profile": {}, "campaign": {}, "context": {}, "unsubscribe_url": "https://demo.example/u/t/"}
    )
    assert '<a href="https://demo.example/u/t/"' in rendered.html
    assert "Unsubscribe: https://demo.example/u/t/" in rendered.text
