"""Proofs: a version's content, rendered as the preview renders it, sent now to a few test addresses.

A proof leaves through the channel configuration of the version proofed (a newer version may change it: its proof
shows what that version will send, before it goes live) and its adapter, as a send job's message does, with
"[Proof] " before the subject. It is nowhere in the ledger: no Run, no Delivery, so no report counts it and no
provider feedback finds it (its message carries a negative delivery id, which no ledger row has, so neither its
VERP bounce address nor its Message-ID name a delivery). Each send is audited as `campaign.proof_sent`, and the
audit log is what the rate limit counts. Permissions (`campaigns.send_proof`) are checked by callers.
"""

import copy
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from pydantic import ValidationError as SettingsError

from audiences.models import Channel, Profile
from campaigns import previews
from campaigns.models import Campaign, CampaignVersion
from channels.adapters.base import OutboundMessage, Outcome, SendResult
from channels.adapters.registry import ADAPTERS
from channels.models import ChannelConfiguration
from config import untrusted
from permissions.models import AuditEvent
from permissions.services.audit import audit_record

PROOF_PREFIX = "[Proof] "
MAX_PROOF_ADDRESSES = 10
# Per user, across campaigns: at most PROOF_SENDS_PER_WINDOW sends (each to up to MAX_PROOF_ADDRESSES addresses)
# in any PROOF_WINDOW.
PROOF_SENDS_PER_WINDOW = 10
PROOF_WINDOW = timedelta(minutes=10)
# A page waits for the answer: each step of a proof send (connect, each reply) waits at most this long, whatever
# the configuration says.
PROOF_TIMEOUT_SECONDS = 10
# The channels proofs go out on: their addresses are typed in the form.
PROOF_CHANNELS = (Channel.EMAIL,)
AUDIT_ACTION = "campaign.proof_sent"


@dataclass(frozen=True)
class ProofResult:
    address: str
    sent: bool
    outcome: str
    reason: str = ""
    detail: str = ""


def campaign_send_proof(
    *,
    campaign: Campaign,
    actor,
    version: CampaignVersion,
    addresses: list[str],
    profile: Profile | None = None,
    now: datetime | None = None,
) -> list[ProofResult]:
    """Send `version` of `campaign`, rendered for `profile` (None: the preview's sample profile) with the contract's
    example context, through the version's channel configuration, to each of `addresses` now, and return each
    one's result.

    Refuses (ValidationError naming the field) a version of another campaign, a version whose channel proofs do
    not go out on, no address or more than MAX_PROOF_ADDRESSES, content that does not render, and an actor who has
    sent PROOF_SENDS_PER_WINDOW proofs in the last PROOF_WINDOW. A relay that refuses is a result, not a refusal.
    """
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
    if not addresses:
        raise ValidationError({"addresses": "Enter at least one address."})
    if len(addresses) > MAX_PROOF_ADDRESSES:
        raise ValidationError({"addresses": f"Enter at most {MAX_PROOF_ADDRESSES} addresses."})
    preview = previews.version_preview(version=version, profile=profile)
    if preview.error:
        raise ValidationError({"version": f"{preview.error_text}. Fix the content, then send the proof."})
    rendered = preview.rendered

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
        for index, address in enumerate(addresses)
    ]
    results = [
        ProofResult(
            address=message.to,
            sent=result.outcome == Outcome.SENT,
            outcome=str(result.outcome),
            reason=untrusted.storable(result.reason, 40),
            detail=untrusted.storable(result.detail, 300),
        )
        for message, result in zip(messages, _send(configuration, messages), strict=True)
    ]
    # The record made before the send gets its outcome.
    AuditEvent.objects.filter(pk=event.pk).update(
        after={**event.after, "outcomes": {result.address: result.outcome for result in results}}
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


def _send(configuration: ChannelConfiguration, messages: list[OutboundMessage]) -> list[SendResult]:
    """The messages handed to an adapter of their own, opened for this send and closed after it (a web process
    keeps no connections); a failure to open or send is every message's result."""
    adapter = None
    try:
        adapter = import_string(ADAPTERS[configuration.channel])(_with_short_timeout(configuration))
        return adapter.send(messages)
    except SettingsError:
        # Pydantic's message quotes the values: name no setting, show none.
        detail = "The channel configuration's stored settings no longer validate: edit the configuration."
        return [SendResult(m.delivery_id, Outcome.PERMANENT, reason="settings", detail=detail) for m in messages]
    except Exception as error:  # noqa: BLE001 - whatever fails is the proof's outcome, shown to its sender
        detail = f"{type(error).__name__}: {error}"
        return [SendResult(m.delivery_id, Outcome.PERMANENT, reason="error", detail=detail) for m in messages]
    finally:
        if adapter is not None:
            try:
                adapter.close()
            except Exception:  # noqa: BLE001, S110 - the outcome is known; a failed close changes nothing
                pass


def _with_short_timeout(configuration: ChannelConfiguration) -> ChannelConfiguration:
    """An unsaved copy whose timeout is at most PROOF_TIMEOUT_SECONDS."""
    short = copy.copy(configuration)
    value = configuration.settings.get("timeout_seconds")
    if isinstance(value, (int, float)):
        short.settings = {**configuration.settings, "timeout_seconds": min(value, PROOF_TIMEOUT_SECONDS)}
    return short
