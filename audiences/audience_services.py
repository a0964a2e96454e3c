"""Creating, changing and deleting audiences, and what depends on an audience.

Campaigns sit above audiences (they point at one, PROTECT), so this module never imports the campaigns app:
it reads campaigns through the app registry by name, as permissions/api_key_forms.py does.
"""

from dataclasses import dataclass

from django.apps import apps
from django.db import transaction
from django.db.models import Exists, OuterRef, ProtectedError

from audiences.models import Audience
from audiences.rules import member_of_ids, parse_rule
from permissions.services import audit_record

# Campaign statuses, as campaigns.models.Campaign.Status names them.
LIVE_STATUSES = ("active", "paused")
FINISHED_STATUSES = ("stopped", "completed")


@dataclass(frozen=True)
class CampaignUse:
    """A campaign that sends to an audience, and how it depends on it."""

    campaign: object
    in_review: bool

    @property
    def live(self) -> bool:
        return self.campaign.status in LIVE_STATUSES

    @property
    def finished(self) -> bool:
        return self.campaign.status in FINISHED_STATUSES

    @property
    def state(self) -> str:
        status = self.campaign.get_status_display().lower()
        return f"{status}, in review" if self.in_review else status

    def __str__(self):
        return f"“{self.campaign.name}” ({self.state})"


class AudienceInUse(Exception):
    """An audience that cannot be deleted: the message says what uses it."""

    def __init__(self, message: str, campaigns: list[CampaignUse] = (), audiences: list[Audience] = ()):
        super().__init__(message)
        self.message = message
        self.campaigns = list(campaigns)
        self.audiences = list(audiences)


def audience_campaigns(audience: Audience) -> list[CampaignUse]:
    """Every campaign whose audience this is, live ones first."""
    campaign_model = apps.get_model("campaigns", "Campaign")
    version_model = apps.get_model("campaigns", "CampaignVersion")
    in_review = version_model.objects.filter(campaign=OuterRef("pk"), review_state="in_review")
    campaigns = campaign_model.objects.filter(audience=audience).annotate(in_review=Exists(in_review))
    uses = [CampaignUse(campaign, campaign.in_review) for campaign in campaigns.order_by("name", "pk")]
    return sorted(uses, key=lambda use: (not use.live, use.finished))


def campaigns_by_audience(audience_ids) -> dict[int, list[CampaignUse]]:
    """The campaigns of each of these audiences, for a list of audiences: one query."""
    campaign_model = apps.get_model("campaigns", "Campaign")
    uses: dict[int, list[CampaignUse]] = {}
    for campaign in campaign_model.objects.filter(audience_id__in=audience_ids).order_by("name", "pk"):
        uses.setdefault(campaign.audience_id, []).append(CampaignUse(campaign, False))
    for listed in uses.values():
        listed.sort(key=lambda use: (not use.live, use.finished))
    return uses


def affected_campaigns(audience: Audience) -> list[CampaignUse]:
    """The campaigns that send to this audience from now on (not the stopped or completed ones): changing
    the audience changes who they reach."""
    return [use for use in audience_campaigns(audience) if not use.finished]


def audiences_including(audience: Audience) -> list[Audience]:
    """The other audiences whose rule names this one in `member_of`."""
    rules = Audience.objects.filter(kind=Audience.Kind.RULE).exclude(pk=audience.pk).order_by("name")
    return [other for other in rules if audience.pk in member_of_ids(other.rule)]


def _values(audience: Audience) -> dict:
    """What the audit log keeps of an audience."""
    return {
        "name": audience.name,
        "description": audience.description,
        "kind": audience.kind,
        "rule": audience.rule,
    }


def _checked_rule(kind: str, rule, audience_id: int | None):
    """The rule to store: validated for a rule audience (RuleError when it does not), empty otherwise."""
    if kind != Audience.Kind.RULE:
        return {}
    parse_rule(rule, audience_id=audience_id)
    return rule


@transaction.atomic
def audience_create(*, actor, name: str, description: str = "", kind: str, rule=None) -> Audience:
    """Create a rule-based or all-profiles audience. Raises RuleError, storing nothing, when the rule does not
    validate. Uploaded lists are created by imports."""
    if kind == Audience.Kind.UPLOADED:
        raise ValueError("Uploaded lists are created by an import.")
    audience = Audience(name=name, description=description, kind=kind, created_by=actor)
    audience.rule = _checked_rule(kind, rule, None)
    audience.save()
    audit_record(actor=actor, action="audience.created", obj=audience, after=_values(audience))
    return audience


@transaction.atomic
def audience_update(*, actor, audience: Audience, name: str, description: str = "", kind: str, rule=None) -> Audience:
    """Change an audience's name, description, kind (all or rule) or rule. Raises RuleError, changing nothing,
    when the rule does not validate (or would make an audience include itself). The campaigns that send to
    it reach the new members from their next run on. An uploaded list keeps its kind and its members."""
    before = _values(audience)
    if audience.kind == Audience.Kind.UPLOADED or kind == Audience.Kind.UPLOADED:
        kind, rule = audience.kind, audience.rule
    else:
        rule = _checked_rule(kind, rule, audience.pk)
    audience.name, audience.description, audience.kind, audience.rule = name, description, kind, rule
    audience.save()
    after = _values(audience)
    if before != after:
        audit_record(actor=actor, action="audience.changed", obj=audience, before=before, after=after)
    return audience


def deletion_refusal(audience: Audience) -> AudienceInUse | None:
    """Why the audience cannot be deleted now, or None. A campaign keeps its audience for its history, so any
    campaign pointing at it (live, draft or finished) prevents deletion, as does another audience's rule."""
    uses = audience_campaigns(audience)
    live = [use for use in uses if use.live]
    if live:
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: live campaigns send to it: {_listed(live)}. "
            "Stop them, or give them another audience, first.",
            campaigns=uses,
        )
    if uses:
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: campaigns use it: {_listed(uses)}. "
            "Give the drafts another audience; a finished campaign keeps its audience for its history.",
            campaigns=uses,
        )
    including = audiences_including(audience)
    if including:
        names = ", ".join(f"“{other.name}”" for other in including)
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: the rules of {names} include it. Change those rules first.",
            audiences=including,
        )
    return None


def _listed(uses: list[CampaignUse]) -> str:
    return ", ".join(str(use) for use in uses)


@transaction.atomic
def audience_delete(*, actor, audience: Audience) -> None:
    """Delete an audience nothing uses. Raises AudienceInUse, deleting nothing, when a campaign or another
    audience's rule uses it."""
    refusal = deletion_refusal(audience)
    if refusal:
        raise refusal
    # Recorded first, while the audience still has its id; refused below, the whole transaction is undone.
    audit_record(actor=actor, action="audience.deleted", obj=audience, before=_values(audience))
    try:
        audience.delete()
    except ProtectedError as error:
        # A campaign given this audience since the check above: the database refused, name it.
        campaigns = [obj for obj in error.protected_objects if obj._meta.label_lower == "campaigns.campaign"]
        uses = [CampaignUse(campaign, False) for campaign in campaigns]
        raise AudienceInUse(
            f"“{audience.name}” cannot be deleted: campaigns use it: {_listed(uses)}.", campaigns=uses
        ) from None
