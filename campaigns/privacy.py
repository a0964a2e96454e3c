"""The campaigns app's part in a person's rights over their data (see audiences.services.privacy): what the ledger
and the trigger log keep about a profile, for an export, and how they forget it on erase.

An erased person's deliveries stay in the ledger, so run counts and reports do not change, but without
their address, provider error detail or link to the profile. Their trigger requests keep the requestId and
body hash (replays are still answered) with the context emptied.
"""

from django.db.models import Q
from django.dispatch import receiver

from audiences.models import Profile
from audiences.services.privacy import profile_erasing, profile_exporting
from campaigns.models import Delivery, TriggerRequest


@receiver(profile_exporting, sender=Profile, dispatch_uid="campaigns.privacy.export")
def export_profile_messages(sender, profile, **kwargs) -> dict:
    deliveries = (
        Delivery.objects.filter(profile=profile)
        .order_by("id")
        .values(
            "id",
            "run__campaign_id",
            "run__campaign__name",
            "channel",
            "address",
            "status",
            "reason",
            "detail",
            "sent_at",
        )
    )
    requests = (
        TriggerRequest.objects.filter(Q(profile=profile) | Q(deliveries__profile=profile))
        .distinct()
        .order_by("created_at", "id")
        .values("campaign_id", "campaign__name", "kind", "request_id", "context", "created_at")
    )
    return {
        "deliveries": [
            {
                "id": row["id"],
                "campaign_id": row["run__campaign_id"],
                "campaign": row["run__campaign__name"],
                "channel": row["channel"],
                "address": row["address"],
                "status": row["status"],
                "reason": row["reason"],
                "detail": row["detail"],
                "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
            }
            for row in deliveries
        ],
        "trigger_requests": [
            {
                "campaign_id": row["campaign_id"],
                "campaign": row["campaign__name"],
                "request_id": row["request_id"],
                "context": _their_context(row, profile.pk),
                "created_at": row["created_at"].isoformat(),
            }
            for row in requests
        ],
    }


def _their_context(request: dict, profile_id: int) -> dict:
    """What a call carried for this person: the shared context and their own (not the other recipients')."""
    context = request["context"] or {}
    if "shared" not in context:
        return context
    own = (context.get("recipients") or {}).get(str(profile_id))
    return {"shared": context["shared"], **({"own": own} if own else {})}


@receiver(profile_erasing, sender=Profile, dispatch_uid="campaigns.privacy.erase")
def erase_profile_messages(sender, profile, **kwargs) -> dict:
    # A call to several people keeps the others' context: only this person's own entry goes (first, while the
    # deliveries still name them). A call to them alone is emptied below.
    shared_calls = set(
        TriggerRequest.objects.filter(kind=TriggerRequest.Kind.UNITARY, deliveries__profile=profile)
        .exclude(profile=profile)
        .values_list("pk", flat=True)
    )
    for request in TriggerRequest.objects.select_for_update().filter(pk__in=shared_calls):
        if (request.context.get("recipients") or {}).pop(str(profile.pk), None) is not None:
            request.save(update_fields=["context"])
    # The claim token goes too, so an outcome or feedback arriving later for one of these rows matches
    # nothing and cannot write a provider's text (which may quote the address) back onto it.
    deliveries = Delivery.objects.filter(profile=profile).update(
        profile=None, address="", detail="", claim_token=None, provider_message_id=""
    )
    requests = TriggerRequest.objects.filter(profile=profile).update(profile=None, context={})
    return {"deliveries_anonymised": deliveries, "trigger_requests_scrubbed": requests}
