"""Reads of audiences: membership as a query, and member ids streamed for the campaign planner."""

from django.db.models import QuerySet

from audiences.models import Audience, Profile
from audiences.rules import compile_rule, parse_rule


def audience_profiles(audience: Audience) -> QuerySet[Profile]:
    """The profiles that are members of `audience` now."""
    if audience.kind == Audience.Kind.ALL:
        return Profile.objects.all()
    aliases, q = compile_rule(parse_rule(audience.rule))
    return Profile.objects.alias(**aliases).filter(q)


def audience_size(audience: Audience) -> int:
    return audience_profiles(audience).count()


def audience_member_ids(audience: Audience, *, after_id: int, limit: int) -> list[int]:
    """The next `limit` member ids above `after_id`, in id order: keyset pages in constant memory."""
    members = audience_profiles(audience).filter(pk__gt=after_id).order_by("pk")
    return list(members.values_list("pk", flat=True)[:limit])
