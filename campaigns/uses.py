"""The campaigns' answers to the hooks of the apps below (config.hooks): which campaigns use an audience or a
channel configuration, and the profile page's "Messages" section. Registered in CampaignsConfig.ready()."""

from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse

from audiences import hooks as audiences_hooks
from campaigns.models import Campaign, CampaignVersion
from channels import hooks as channels_hooks
from config.hooks import Section, Use
from permissions import hooks as permissions_hooks


def campaign_use(campaign: Campaign, *, in_review: bool, through_version: bool = False) -> Use:
    """A campaign as a use of an audience or configuration; `through_version`: only another version than the
    settings in effect names it (it is not what a live campaign sends to now)."""
    status = campaign.get_status_display().lower()
    state = f"{status}, in review" if in_review else status
    return Use(
        name=campaign.name,
        state=f"{state}, through another version" if through_version else state,
        live=campaign.status in Campaign.LIVE_STATUSES and not through_version,
        finished=campaign.status in Campaign.FINISHED_STATUSES,
        html=render_to_string("campaigns/_use.html", {"campaign": campaign, "in_review": in_review}),
    )


def _uses(field: str, ids: list[int]) -> dict[int, list[Use]]:
    """The campaigns using each of `ids`: with their settings in effect or through any of their versions (a version
    keeps what it sent, or what it would send once activated)."""
    in_effect = set(Campaign.objects.filter(**{f"{field}__in": ids}).values_list("pk", field))
    users = in_effect | set(CampaignVersion.objects.filter(**{f"{field}__in": ids}).values_list("campaign_id", field))
    in_review = CampaignVersion.objects.filter(
        campaign=OuterRef("pk"), review_state=CampaignVersion.ReviewState.IN_REVIEW
    )
    campaigns = Campaign.objects.filter(pk__in={campaign_id for campaign_id, _ in users}).annotate(
        in_review=Exists(in_review)
    )
    by_id = {campaign.pk: campaign for campaign in campaigns}
    uses: dict[int, list[Use]] = {}
    for campaign_id, used in sorted(users, key=lambda pair: (by_id[pair[0]].name, pair[0])):
        campaign = by_id[campaign_id]
        through_version = (campaign_id, used) not in in_effect
        uses.setdefault(used, []).append(
            campaign_use(campaign, in_review=campaign.in_review, through_version=through_version)
        )
    return uses


def audience_uses(ids: list[int]) -> dict[int, list[Use]]:
    return _uses("audience_id", ids)


def configuration_uses(ids: list[int]) -> dict[int, list[Use]]:
    return _uses("channel_configuration_id", ids)


def profile_messages_section(request, profile) -> Section | None:
    """The messages a profile received, from the ledger (campaigns.views.profiles), for those who may see it."""
    if not request.user.has_perm("campaigns.view_delivery"):
        return None
    return Section(title="Messages", url=reverse("campaigns:profile_messages", args=[profile.pk]))


class KeyCampaigns:
    """The campaigns an API key may be scoped to: the API-triggered ones (permissions.hooks.key_campaigns)."""

    @staticmethod
    def choices():
        return Campaign.objects.filter(kind=Campaign.Kind.API_TRIGGERED).order_by("name", "pk")

    @staticmethod
    def callable_by_key(ids) -> dict[int, bool]:
        """For each of these ids that is a campaign, whether a key may be scoped to it."""
        kinds = Campaign.objects.filter(pk__in=ids).values_list("pk", "kind")
        return {pk: kind == Campaign.Kind.API_TRIGGERED for pk, kind in kinds}

    @staticmethod
    def names(ids) -> dict[int, str]:
        return dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name"))


def back_to_campaigns(request, _obj) -> Section | None:
    """The forbidden page's way back, for those who may read campaigns."""
    if not request.user.has_perm("campaigns.view_campaign"):
        return None
    return Section(title="Back to campaigns", url=reverse("campaigns:list"))


def register() -> None:
    audiences_hooks.audience_uses.register(audience_uses)
    audiences_hooks.profile_sections.register(profile_messages_section)
    channels_hooks.configuration_uses.register(configuration_uses)
    permissions_hooks.key_campaigns.register(KeyCampaigns)
    permissions_hooks.forbidden_page_links.register(back_to_campaigns)
