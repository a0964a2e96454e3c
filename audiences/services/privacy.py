"""The person's rights over their data: export everything stored about them, erase them everywhere.

Apps above audiences take part in export and erase through the two signals below, since audiences may not
import them; their receivers connect to the signals of this module (campaigns/privacy.py, channels/privacy.py).
"""

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from audiences.models import AttributeDefinition, AudienceMember, Profile
from audiences.selectors.profiles import profile_memberships
from permissions.models import ApiKey
from permissions.services.audit import audit_record

# Sent with `profile` inside the erase transaction, before the profile's rows are deleted. A receiver removes
# or anonymises what its app stores about the person and may return {what: how many rows} for the receipt;
# an exception aborts the whole erase.
profile_erasing = Signal()
# Sent with `profile` by profile_export. A receiver returns {section: JSON-ready list} of what its app stores
# about the person (the campaigns app answers with deliveries and trigger requests).
profile_exporting = Signal()


def profile_export(profile: Profile) -> dict:
    """Everything stored about the person, JSON-ready: profile fields, identities, attributes (with their
    declared types), consent and its history, push tokens, list memberships, and what the apps above
    audiences keep about them (deliveries and trigger requests). Nothing about anyone else."""
    profile = Profile.objects.get(pk=profile.pk)
    declared = dict(AttributeDefinition.objects.filter(name__in=list(profile.attributes)).values_list("name", "type"))
    export = {
        "exported_at": _iso(timezone.now()),
        "profile": {
            "id": profile.pk,
            "email": profile.email,
            "phone": profile.phone,
            "timezone": profile.timezone,
            "locale": profile.locale,
            "created_at": _iso(profile.created_at),
            "updated_at": _iso(profile.updated_at),
        },
        "identities": [
            {"namespace": namespace, "value": value}
            for namespace, value in profile.identities.order_by("namespace", "value").values_list("namespace", "value")
        ],
        "attributes": [
            {"name": name, "type": declared.get(name, ""), "value": value}
            for name, value in sorted(profile.attributes.items())
        ],
        "consent": [
            {"channel": c.channel, "state": c.state, "source": c.source, "updated_at": _iso(c.updated_at)}
            for c in profile.consents.order_by("channel")
        ],
        "consent_history": [
            {"channel": e.channel, "state": e.state, "source": e.source, "at": _iso(e.created_at)}
            for e in profile.consent_events.order_by("created_at", "id")
        ],
        "push_tokens": [
            {
                "platform": t.platform,
                "app": t.app,
                "token": t.token,
                "created_at": _iso(t.created_at),
                "retired_at": _iso(t.retired_at),
            }
            for t in profile.push_tokens.order_by("created_at", "id")
        ],
        "audience_memberships": [
            {"audience_id": audience.pk, "audience": audience.name} for audience in profile_memberships(profile)
        ],
    }
    for _receiver, sections in profile_exporting.send(sender=Profile, profile=profile):
        for name, rows in (sections or {}).items():
            export.setdefault(name, []).extend(rows)
    return export


def profile_export_recorded(*, profile: Profile, actor) -> dict:
    """profile_export, with an audit record saying who exported whom (by id only)."""
    export = profile_export(profile)
    _audit(actor=actor, action="profile.exported", profile_id=profile.pk)
    return export


@transaction.atomic
def profile_erase(*, profile: Profile, actor) -> dict[str, int]:
    """Remove the person's personal data everywhere, keeping anonymous counts.

    The profile row is deleted with its identities, attributes, consent and history, push tokens and list
    memberships; apps above audiences scrub what they keep through `profile_erasing` (the campaigns app
    keeps each delivery for the counts, without its address or its link to the person, and empties stored
    trigger contexts). All of it in one transaction: an erase is whole or not at all. The audit log names the
    profile by id only. Returns how many rows of each kind were removed or scrubbed.
    """
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    profile_id = profile.pk
    receipt = {
        "identities": profile.identities.count(),
        "attributes": len(profile.attributes),
        "consents": profile.consents.count(),
        "consent_events": profile.consent_events.count(),
        "push_registrations": profile.push_tokens.count(),  # "token" names are redacted in the audit log
        "audience_memberships": AudienceMember.objects.filter(profile=profile).count(),
    }
    for _receiver, counts in profile_erasing.send(sender=Profile, profile=profile):
        receipt.update(counts or {})
    profile.delete()
    _audit(actor=actor, action="profile.erased", profile_id=profile_id, after=receipt)
    return receipt


def _audit(*, actor, action: str, profile_id: int, after: dict | None = None) -> None:
    # A stand-in names the profile by id only ("Profile 12"): no address of the person enters the audit log.
    stand_in = Profile(pk=profile_id)
    if isinstance(actor, ApiKey):
        event = audit_record(actor=None, action=action, obj=stand_in, after=after)
        event.actor_label = f"API key {actor.prefix}…"[:200]
        event.save(update_fields=["actor_label"])
    else:
        audit_record(actor=actor, action=action, obj=stand_in, after=after)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None
