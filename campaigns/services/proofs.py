"""Proofs: a version's content, rendered as the preview renders it, sent now to a few test addresses and profiles.

Typed addresses get the version rendered for the sample profile (or the one profile chosen, as the preview shows it);
each profile named as a recipient gets it at its own email address, rendered as itself. Both carry the contract's
example context.

A proof leaves through the channel configuration of the version proofed (a newer version may change it: its proof
shows what that version will send, before it goes live) and its adapter, as a send job's message does, with
"[Proof] " before the subject. It is nowhere in the ledger: no Run, no Delivery, so no report counts it and no
provider feedback finds it (its message carries a negative delivery id, which no ledger row has, so neither its
VERP bounce address nor its Message-ID name a delivery). Each send is audited as `campaign.proof_sent`, and the
audit log is what the rate limit counts. Permissions (`campaigns.send_proof`) are checked by callers.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audiences.models import Channel, Profile
from campaigns import previews
from campaigns.models import Campaign, CampaignVersion
from channels.adapters.base import OutboundMessage, Outcome
from channels.services.configurations import configuration_send_now
from config import untrusted
from permissions.models import AuditEvent
from permissions.services.audit import audit_record

PROOF_PREFIX = "[Proof] "
MAX_PROOF_ADDRESSES = 10
# Per user, across campaigns: at most PROOF_SENDS_PER_WINDOW sends (each to up to MAX_PROOF_ADDRESSES addresses)
# in any PROOF_WINDOW.
PROOF_SENDS_PER_WINDOW = 10
PROOF_WINDOW = timedelta(minutes=10)
# The channels proofs go out on: their addresses are typed in the form, or a profile's.
PROOF_CHANNELS = (Channel.EMAIL,)
AUDIT_ACTION = "campaign.proof_sent"


@dataclass(frozen=True)
class ProofResult:
    address: str
    sent: bool
    outcome: str
    reason: str = ""
    detail: str = ""
    profile_id: int | None = None  # the profile the proof went to, rendered as itself; None: a typed address

    @property
    def label(self) -> str:
        """The recipient as the card names it: "qa@example.com", or "#42 ann@example.com" for a profile."""
        return f"#{self.profile_id} {self.address}" if self.profile_id is not None else self.address

    @property
    def key(self) -> str:
        """The recipient in the audit record's outcomes: the address, or "#42" for a profile."""
        return f"#{self.profile_id}" if self.profile_id is not None else self.address


def campaign_send_proof(
    *,
    campaign: Campaign,
    actor,
    version: CampaignVersion,
    addresses: list[str],
    profile: Profile | None = None,
    profiles: Sequence[Profile] = (),
    now: datetime | None = None,
) -> list[ProofResult]:
    """Send `version` of `campaign` through the version's channel configuration now, with the contract's example
    context: to each of `addresses` rendered for `profile` (None: the preview's sample profile), and to each of
    `profiles` at its own email address, rendered as itself; return each recipient's result (the addresses', then
    the profiles').

    Refuses (ValidationError naming the field) a version of another campaign, a version whose channel proofs do
    not go out on, no recipient or more than MAX_PROOF_ADDRESSES in all, profiles named by an actor who may not
    read profiles (`audiences.view_profile`), a profile without an email address, content that does not render
    (for the sample profile, or for a profile named, naming it), and an actor who has sent
    PROOF_SENDS_PER_WINDOW proofs in the last PROOF_WINDOW. A relay that refuses is a result, not a refusal.
    """
    profiles = list({recipient.pk: recipient for recipient in profiles}.values())  # a repeat is one profile
    if version.campaign_id != campaign.pk:
        raise ValidationError({"version": "This version is not one of the campaign's."})
    configuration = version.channel_configuration
    if configuration.channel not in PROOF_CHANNELS:
        raise ValidationError(
            {
                "version": f"Proofs are for email campaigns only: version {version.number} sends by "
                f"{configuration.get_channel_display()}."
            }
        )
    if profiles and not actor.has_perm("audiences.view_profile"):
        raise ValidationError(
            {"addresses": "Only users who may read profiles can send a proof to a profile: enter email addresses."}
        )
    if not addresses and not profiles:
        raise ValidationError({"addresses": "Enter at least one address."})
    if len(addresses) + len(profiles) > MAX_PROOF_ADDRESSES:
        raise ValidationError({"addresses": f"Enter at most {MAX_PROOF_ADDRESSES} recipients."})
    if without := [f"#{recipient.pk}" for recipient in profiles if not recipient.email]:
        raise ValidationError({"addresses": f"No email address, so no proof can reach: {', '.join(without)}."})
    # Content that does not render for anyone is the version's problem, named once.
    preview = previews.version_preview(version=version, profile=profile)
    if preview.error:
        raise ValidationError({"version": f"{preview.error_text}. Fix the content, then send the proof."})
    # (address, rendering, profile id): the typed addresses', then each profile's own.
    recipients = [(address, preview.rendered, None) for address in addresses]
    for recipient in profiles:
        own = previews.version_preview(version=version, profile=recipient)
        if own.error:
            raise ValidationError(
                {"addresses": f"The proof does not render as profile #{recipient.pk}: {own.error_text}."}
            )
        recipients.append((recipient.email, own.rendered, recipient.pk))

    now = now or timezone.now()
    with transaction.atomic():
        # One proof send at a time per user, so two at once cannot both pass the count.
        get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
        _check_rate(actor, now)
        event = audit_record(
            actor=actor,
            action=AUDIT_ACTION,
            obj=campaign,
            after={
                "version": version.number,
                "addresses": addresses,
                "profile": profile.pk if profile else None,
                "profiles": [recipient.pk for recipient in profiles],
            },
        )

    first_id = -int(time.time() * 1000) * 100  # negative: no ledger row has it; unique per message of this send
    messages = [
        OutboundMessage(
            delivery_id=first_id - index,
            to=address,
            subject=PROOF_PREFIX + rendered.subject,
            html=rendered.html,
            text=rendered.text,
            marketing=campaign.category == Campaign.Category.MARKETING,
            unsubscribe_url="",  # no List-Unsubscribe: a proof's reader unsubscribes nobody
            campaign_id=campaign.pk,
        )
        for index, (address, rendered, _) in enumerate(recipients)
    ]
    results = [
        ProofResult(
            address=message.to,
            sent=result.outcome == Outcome.SENT,
            outcome=str(result.outcome),
            reason=untrusted.storable(result.reason, 40),
            detail=untrusted.storable(result.detail, 300),
            profile_id=profile_id,
        )
        for message, result, (_, _, profile_id) in zip(
            messages, configuration_send_now(configuration=configuration, messages=messages), recipients, strict=True
        )
    ]
    # The record made before the send gets its outcome (a profile's under "#42": its address is the profile's).
    AuditEvent.objects.filter(pk=event.pk).update(
        after={**event.after, "outcomes": {result.key: result.outcome for result in results}}
    )
    return results


def proofs_left(*, actor, now: datetime | None = None) -> int:
    """How many proof sends `actor` may make now."""
    return max(PROOF_SENDS_PER_WINDOW - _recent_sends(actor, now or timezone.now()).count(), 0)


def _recent_sends(actor, now: datetime):
    return AuditEvent.objects.filter(actor_id=actor.pk, action=AUDIT_ACTION, created_at__gt=now - PROOF_WINDOW)


def _check_rate(actor, now: datetime) -> None:
    recent = list(_recent_sends(actor, now).order_by("created_at").values_list("created_at", flat=True))
    if len(recent) < PROOF_SENDS_PER_WINDOW:
        return
    # The send that frees a place: the oldest of those that fill the window.
    frees_at = recent[len(recent) - PROOF_SENDS_PER_WINDOW] + PROOF_WINDOW
    minutes = max(math.ceil((frees_at - now).total_seconds() / 60), 1)
    raise ValidationError(
        f"You have sent {PROOF_SENDS_PER_WINDOW} proofs in the last {_minutes(PROOF_WINDOW)}, the most allowed: "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        code="rate_limited",
    )


def _minutes(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
