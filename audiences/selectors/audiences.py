"""Reads of audiences: membership as a query, its size and a sample, member ids streamed for the campaign
planner, and what uses an audience. A rule that no longer validates (an attribute undeclared since, an audience
it names deleted) raises audiences.rules.tree.RuleError rather than selecting a different set of profiles.

Campaigns sit above audiences (they point at one, PROTECT), so this module never names them: what uses an
audience comes through the hook the apps above fill (audiences.hooks).
"""

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from audiences import hooks
from audiences.models import Audience, AudienceMember, Profile
from audiences.rules.sql import compile_rule, list_members
from audiences.rules.tree import member_of_ids, parse_rule
from config.hooks import Use


def audience_uses(audience: Audience) -> list[Use]:
    """What sends to this audience (campaigns, through audiences.hooks), live ones first."""
    return hooks.audience_uses.of(audience.pk)


def uses_by_audience(audience_ids) -> dict[int, list[Use]]:
    """What sends to each of these audiences, for a list of audiences."""
    return hooks.audience_uses.by_id(audience_ids)


def affected_uses(audience: Audience) -> list[Use]:
    """What sends to this audience from now on (not the stopped or completed campaigns): changing the audience
    changes who they reach."""
    return [use for use in audience_uses(audience) if not use.finished]


def audiences_including(audience: Audience) -> list[Audience]:
    """The other audiences whose rule names this one in `member_of`."""
    rules = Audience.objects.filter(kind=Audience.Kind.RULE).exclude(pk=audience.pk).order_by("name")
    return [other for other in rules if audience.pk in member_of_ids(other.rule)]


def audience_profiles(audience: Audience, *, now: datetime | None = None) -> QuerySet[Profile]:
    """The profiles that are members of `audience` now (relative dates in its rule taken at `now`)."""
    match audience.kind:
        case Audience.Kind.ALL:
            return Profile.objects.all()
        case Audience.Kind.UPLOADED:
            members = AudienceMember.objects.filter(audience_id=audience.pk, profile_id=OuterRef("pk"))
            return Profile.objects.filter(Exists(members))
    return rule_profiles(audience.rule, audience_id=audience.pk, now=now)


def rule_profiles(rule_data, *, audience_id: int | None = None, now: datetime | None = None) -> QuerySet[Profile]:
    """The profiles a rule (JSON, maybe not saved yet) selects: for live estimates while it is edited.
    `audience_id` is the audience being edited, if any, so that a rule naming it is refused."""
    return Profile.objects.filter(compile_rule(parse_rule(rule_data, audience_id=audience_id), now=now))


def audience_size(audience: Audience) -> int:
    if audience.kind == Audience.Kind.UPLOADED:
        return AudienceMember.objects.filter(audience_id=audience.pk).count()
    if audience.kind == Audience.Kind.RULE:
        rule = parse_rule(audience.rule, audience_id=audience.pk)
        rows = list_members(rule)
        return (rows if rows is not None else Profile.objects.filter(compile_rule(rule))).count()
    return Profile.objects.count()


def audience_sample(audience: Audience, *, limit: int = 20) -> list[Profile]:
    """Up to `limit` members, the most recently created first."""
    return list(audience_profiles(audience).order_by("-pk")[:limit])


def audience_member_ids(audience: Audience, *, after_id: int, limit: int) -> list[int]:
    """The next `limit` member ids above `after_id`, in id order: keyset pages, so a whole audience streams
    in constant memory and a planner resumes from the last id it stored."""
    if audience.kind == Audience.Kind.UPLOADED:
        # Served by the (audience, profile) unique index alone; a member's profile always exists (CASCADE).
        members = AudienceMember.objects.filter(audience_id=audience.pk, profile_id__gt=after_id)
        return list(members.order_by("profile_id").values_list("profile_id", flat=True)[:limit])
    if audience.kind == Audience.Kind.ALL:
        members = Profile.objects.filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True)
        return list(members[:limit])
    rule = parse_rule(audience.rule, audience_id=audience.pk)
    # A rule on an uploaded list pages through the list's rows; any other through the profiles.
    rows = list_members(rule, after_id=after_id)
    if rows is not None:
        return list(rows.order_by("profile_id").values_list("profile_id", flat=True)[:limit])
    members = Profile.objects.filter(compile_rule(rule, after_id=after_id))
    return list(members.order_by("pk").values_list("pk", flat=True)[:limit])
