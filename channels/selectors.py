"""Reads of the channels app: the campaigns that use a configuration, the suppression list, the profiles a
text came from.

Campaigns sit above channels (a campaign points at its configuration, PROTECT), so this module never imports
the campaigns app: it reads campaigns through the app registry by name, as audiences.selectors.audiences does.
"""

from django.db.models import QuerySet

from audiences.models import Identity, Profile
from channels import hooks
from channels.models import ChannelConfiguration, Suppression
from channels.secrets import decrypt_secrets
from config.hooks import Use

# Configurations --------------------------------------------------------------------------------------------


def configuration_uses(configuration: ChannelConfiguration) -> list[Use]:
    """What sends through this configuration (campaigns, through channels.hooks), live ones first."""
    return hooks.configuration_uses.of(configuration.pk)


def uses_by_configuration(configuration_ids) -> dict[int, list[Use]]:
    """What sends through each of these configurations, live ones first, then drafts, then finished."""
    return hooks.configuration_uses.by_id(configuration_ids)


def stored_secret_names(configuration: ChannelConfiguration) -> set[str]:
    """The names of the write-only settings that hold a value, never the values."""
    return {name for name, value in decrypt_secrets(configuration.encrypted_secrets).items() if value}


# The suppression list --------------------------------------------------------------------------------------


def suppressions_search(*, query: str = "", channel: str = "", reason: str = "") -> QuerySet[Suppression]:
    """Suppressions, newest first, whose address contains `query` (any case), on `channel`, for `reason`."""
    rows = Suppression.objects.order_by("-created_at", "-id")
    if query.strip():
        rows = rows.filter(address__icontains=query.strip())
    if channel:
        rows = rows.filter(channel=channel)
    if reason:
        rows = rows.filter(reason=reason)
    return rows


# Inbound SMS -----------------------------------------------------------------------------------------------


def profiles_with_number(number: str):
    """Profiles whose primary phone, or an identity in the phone namespace, is `number` (E.164)."""
    number = number.strip()
    if not number:
        return Profile.objects.none()
    by_identity = Identity.objects.filter(namespace="phone", value=number).values("profile_id")
    return Profile.objects.filter(phone=number) | Profile.objects.filter(pk__in=by_identity)
