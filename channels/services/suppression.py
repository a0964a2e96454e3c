"""Writes to the suppression list: addresses that must not be messaged on a channel, whatever consent says.

Hard bounces and invalid numbers (from the send path and provider feedback) and complaints add to it on their
own; administrators add and remove addresses by hand. Opt-outs are not suppressions: they are the profile's
consent (audiences.services.consent.consent_set), which marketing honours and transactional messages do not.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from audiences.models import Channel
from channels.models import Suppression, normalize_address
from permissions.services.audit import audit_record


def suppress_addresses(*, channel: str, addresses, reason: str) -> int:
    """Add addresses found undeliverable (or complained from) to the list. Idempotent: an address already
    listed keeps its first reason. Returns how many were new."""
    wanted = {normalize_address(channel, address) for address in addresses if address and address.strip()}
    if not wanted:
        return 0
    before = Suppression.objects.filter(channel=channel, address__in=wanted).count()
    Suppression.objects.bulk_create(
        [Suppression(channel=channel, address=address, reason=reason) for address in sorted(wanted)],
        ignore_conflicts=True,
    )
    return Suppression.objects.filter(channel=channel, address__in=wanted).count() - before


@transaction.atomic
def suppression_add(*, actor, channel: str, address: str) -> Suppression:
    """Suppress an address by hand (reason manual). Audited. Refused when it is already listed."""
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    address = normalize_address(channel, address)
    if not address:
        raise ValidationError({"address": "Enter an address."})
    existing = Suppression.objects.filter(channel=channel, address=address).first()
    if existing is not None:
        raise ValidationError(
            {"address": f"{address} is already suppressed on {channel} ({existing.get_reason_display().lower()})."}
        )
    suppression = Suppression.objects.create(channel=channel, address=address, reason=Suppression.Reason.MANUAL)
    audit_record(
        actor=actor, action="suppression.added", obj=suppression, after={"channel": channel, "address": address}
    )
    return suppression


@transaction.atomic
def suppression_remove(*, actor, suppression: Suppression) -> None:
    """Take an address off the list, whatever put it there, so it may be messaged again. Audited."""
    before = {"channel": suppression.channel, "address": suppression.address, "reason": suppression.reason}
    audit_record(actor=actor, action="suppression.removed", obj=suppression, before=before)
    suppression.delete()
