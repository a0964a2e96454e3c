"""Writes to consent: a profile's consent on a channel (with its history), and what unknown consent means
per channel. Bulk upserts store consent too (services.profiles), with the same meaning."""

from django.core.exceptions import ValidationError
from django.db import transaction

from audiences.models import (
    Channel,
    ChannelConsentSetting,
    Consent,
    ConsentEvent,
    Profile,
    unknown_consent_allows_marketing,
)
from permissions.services.audit import audit_record


@transaction.atomic
def consent_set(*, profile: Profile, channel: str, state: str, source: str) -> Consent:
    """Make `state` the profile's consent on `channel` and append it to the history.

    Idempotent: setting the state it already has changes nothing and adds no history. No row already means
    unknown, so setting unknown where nothing was ever recorded records nothing (as bulk upserts do).
    """
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    if state not in Consent.State.values:
        raise ValidationError({"state": f"Unknown consent state {state!r}."})
    source = source[:64]
    consent = Consent.objects.select_for_update().filter(profile=profile, channel=channel).first()
    if consent is None:
        if state == Consent.State.UNKNOWN:
            return Consent(profile=profile, channel=channel, state=state)
        # get_or_create: a concurrent first consent on this channel is found, not duplicated.
        consent, created = Consent.objects.get_or_create(
            profile=profile, channel=channel, defaults={"state": state, "source": source}
        )
        if created:
            ConsentEvent.objects.create(profile=profile, channel=channel, state=state, source=source)
            return consent
    if consent.state == state:
        return consent
    consent.state, consent.source = state, source
    consent.save(update_fields=["state", "source", "updated_at"])
    ConsentEvent.objects.create(profile=profile, channel=channel, state=state, source=source)
    return consent


@transaction.atomic
def channel_consent_setting_set(*, actor, channel: str, unknown_allows_marketing: bool) -> ChannelConsentSetting:
    """Say whether marketing on `channel` may reach profiles whose consent is unknown. Audited when changed."""
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    before = unknown_consent_allows_marketing(channel)
    setting, _ = ChannelConsentSetting.objects.update_or_create(
        channel=channel, defaults={"unknown_allows_marketing": unknown_allows_marketing}
    )
    if before != unknown_allows_marketing:
        audit_record(
            actor=actor,
            action="consent_setting.changed",
            obj=setting,
            before={"channel": channel, "unknown_allows_marketing": before},
            after={"channel": channel, "unknown_allows_marketing": unknown_allows_marketing},
        )
    return setting
