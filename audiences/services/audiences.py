"""Creating, changing and deleting audiences (each audited). What uses an audience is read by
audiences.selectors.audiences; a delete is refused while anything does."""

from django.db import transaction
from django.db.models import ProtectedError

from audiences.models import Audience
from audiences.rules.tree import parse_rule
from audiences.selectors.audiences import audience_uses, audiences_including
from config.hooks import Use
from permissions.services.audit import audit_record


class AudienceInUse(Exception):
    """An audience that cannot be deleted: the message says what uses it."""

    def __init__(self, message: str, uses: list[Use] = (), audiences: list[Audience] = ()):
        super().__init__(message)
        self.message = message
        self.uses = list(uses)
        self.audiences = list(audiences)


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
    uses = audience_uses(audience)
    live = [use for use in uses if use.live]
    if live:
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: live campaigns send to it: {_listed(live)}. "
            "Stop them, or give them another audience, first.",
            uses=uses,
        )
    if uses:
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: campaigns use it: {_listed(uses)}. "
            "Give the drafts another audience; a finished campaign keeps its audience for its history.",
            uses=uses,
        )
    including = audiences_including(audience)
    if including:
        names = ", ".join(f"“{other.name}”" for other in including)
        return AudienceInUse(
            f"“{audience.name}” cannot be deleted: the rules of {names} include it. Change those rules first.",
            audiences=including,
        )
    return None


def _listed(uses: list[Use]) -> str:
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
    except ProtectedError:
        # A campaign given this audience since the check above: the database refused, name it.
        uses = audience_uses(audience)
        raise AudienceInUse(
            f"“{audience.name}” cannot be deleted: campaigns use it: {_listed(uses)}.", uses=uses
        ) from None
