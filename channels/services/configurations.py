"""Creating, changing, switching, deleting and test-sending channel configurations.

What uses a configuration is read in channels.selectors, through the hook the apps above fill (channels.hooks):
campaigns sit above channels, so this module never names them. Secrets never reach the audit log: it keeps the
non-secret settings and whether a write-only value changed.
"""

import copy
import time

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.html import escape
from django.utils.module_loading import import_string
from pydantic import BaseModel, SecretStr, ValidationError

from channels.adapters.base import OutboundMessage, Outcome, SendResult
from channels.adapters.registry import ADAPTERS
from channels.models import ChannelConfiguration
from channels.schemas import SETTINGS_MODELS
from channels.secrets import decrypt_secrets
from channels.selectors import configuration_uses
from config.hooks import Use
from permissions.services.audit import audit_record

# A test send waits at most this long for each step (connect, each reply), whatever the configuration says.
TEST_SEND_TIMEOUT_SECONDS = 10
_TIMEOUT_FIELDS = ("timeout_seconds", "timeout")


class ConfigurationInUse(Exception):
    """A configuration that cannot be deleted: the message names what uses it."""

    def __init__(self, message: str, uses: list[Use] = ()):
        super().__init__(message)
        self.message = message
        self.uses = list(uses)


class NameTaken(Exception):
    """Another configuration already has this name."""


def audit_values(configuration: ChannelConfiguration) -> dict:
    """What the audit log keeps of a configuration: everything but the secrets (which are never in `settings`)."""
    return {
        "name": configuration.name,
        "channel": configuration.channel,
        "active": configuration.is_active,
        **{f"settings.{name}": value for name, value in sorted(configuration.settings.items())},
    }


@transaction.atomic
def configuration_create(
    *, actor, name: str, channel: str, settings: BaseModel, is_active: bool = True
) -> ChannelConfiguration:
    """Store a new configuration with its validated settings, secrets encrypted. Raises NameTaken."""
    configuration = ChannelConfiguration(name=name, channel=channel, is_active=is_active)
    configuration.set_settings(settings)
    _save(configuration)
    after = {**audit_values(configuration), "write-only settings set": _yes_no(bool(configuration.encrypted_secrets))}
    audit_record(actor=actor, action="channel_configuration.created", obj=configuration, after=after)
    return configuration


@transaction.atomic
def configuration_update(
    *, actor, configuration: ChannelConfiguration, name: str, settings: BaseModel
) -> ChannelConfiguration:
    """Change a configuration's name and settings; its channel never changes. Raises NameTaken. Adapters open
    with the new settings from the next slice on (the registry keys open adapters by updated_at)."""
    before = audit_values(configuration)
    old_secrets = decrypt_secrets(configuration.encrypted_secrets)
    configuration.name = name
    configuration.set_settings(settings)
    secrets_changed = decrypt_secrets(configuration.encrypted_secrets) != old_secrets
    after = audit_values(configuration)
    if before == after and not secrets_changed:
        return configuration
    _save(configuration)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    audit_record(
        actor=actor,
        action="channel_configuration.changed",
        obj=configuration,
        before={key: before[key] for key in changed if key in before},
        after={
            **{key: after[key] for key in changed if key in after},
            "write-only settings changed": _yes_no(secrets_changed),
        },
    )
    return configuration


@transaction.atomic
def configuration_set_active(*, actor, configuration: ChannelConfiguration, is_active: bool) -> ChannelConfiguration:
    """Switch a configuration on or off. An inactive one cannot be chosen for a campaign nor activate one."""
    if configuration.is_active == is_active:
        return configuration
    configuration.is_active = is_active
    configuration.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=actor,
        action="channel_configuration.activated" if is_active else "channel_configuration.deactivated",
        obj=configuration,
        before={"active": not is_active},
        after={"active": is_active},
    )
    return configuration


def deletion_refusal(configuration: ChannelConfiguration) -> ConfigurationInUse | None:
    """Why the configuration cannot be deleted now, or None. A campaign keeps its configuration for its history,
    so any campaign that sends through it (live, draft or finished) prevents deletion."""
    uses = configuration_uses(configuration)
    live = [use for use in uses if use.live]
    if live:
        return ConfigurationInUse(
            f"“{configuration.name}” cannot be deleted: live campaigns send through it: {_listed(live)}. "
            "Stop them first, or deactivate the configuration instead.",
            uses=uses,
        )
    if uses:
        return ConfigurationInUse(
            f"“{configuration.name}” cannot be deleted: campaigns use it: {_listed(uses)}. "
            "Give the drafts another configuration; a finished campaign keeps its configuration for its history. "
            "Deactivate it instead to keep it from being chosen.",
            uses=uses,
        )
    return None


@transaction.atomic
def configuration_delete(*, actor, configuration: ChannelConfiguration) -> None:
    """Delete a configuration nothing uses. Raises ConfigurationInUse, deleting nothing, when a campaign or a
    recorded delivery refers to it."""
    refusal = deletion_refusal(configuration)
    if refusal:
        raise refusal
    # Recorded first, while the configuration still has its id; refused below, the whole transaction is undone.
    audit_record(
        actor=actor, action="channel_configuration.deleted", obj=configuration, before=audit_values(configuration)
    )
    try:
        configuration.delete()
    except ProtectedError:
        # Given to a campaign since the check above, or messages recorded through it: the database refused.
        uses = configuration_uses(configuration)
        if uses:
            message = f"“{configuration.name}” cannot be deleted: campaigns use it: {_listed(uses)}."
        else:
            uses = []
            message = (
                f"“{configuration.name}” cannot be deleted: the delivery history records messages sent through it. "
                "Deactivate it instead."
            )
        raise ConfigurationInUse(message, uses=uses) from None


def configuration_send_test(*, actor, configuration: ChannelConfiguration, to: str) -> SendResult:
    """Send one test message through the configuration's adapter now, waiting for the outcome.

    A real send with the stored settings, except that each step waits at most TEST_SEND_TIMEOUT_SECONDS. The
    adapter is opened for this send alone and closed after it: a web process keeps no connections. The message
    carries a negative delivery id (minus the time in milliseconds), which no ledger row has. The outcome's
    detail never contains a secret value. Never raises for a failed send: the failure is the outcome.
    """
    delivery_id = -int(time.time() * 1000)
    message = OutboundMessage(
        delivery_id=delivery_id,
        to=to,
        subject=f"Test message from “{configuration.name}”",
        text=f"Test message from “{configuration.name}”, a channel configuration of the campaign manager.",
        html=(
            f"<p><strong>Test message</strong> from “{escape(configuration.name)}”, a channel configuration of the "
            "campaign manager.</p>"
        ),
        marketing=False,
    )
    [result] = configuration_send_now(configuration=configuration, messages=[message])
    audit_record(
        actor=actor,
        action="channel_configuration.test_sent",
        obj=configuration,
        after={"to": to, "outcome": str(result.outcome), "reason": result.reason},
    )
    return result


def configuration_send_now(*, configuration: ChannelConfiguration, messages: list[OutboundMessage]) -> list[SendResult]:
    """Send `messages` through the configuration's adapter now, waiting for their outcomes: the test send's path,
    and campaigns' proofs. The adapter is opened for this call alone and closed after it (a web process keeps no
    connections), each step waiting at most TEST_SEND_TIMEOUT_SECONDS. Never raises for a failed send: a failure to
    open the adapter or to send is every message's outcome, and no outcome's text contains a secret value."""
    try:
        adapter_class = import_string(ADAPTERS[configuration.channel])
    except KeyError:
        detail = "No adapter sends on this channel yet."
        results = [SendResult(m.delivery_id, Outcome.PERMANENT, reason="no_adapter", detail=detail) for m in messages]
    else:
        results = _send(adapter_class, _with_short_timeout(configuration), messages)
    for result in results:
        result.detail = _without_secrets(result.detail, configuration)
        result.reason = _without_secrets(result.reason, configuration)
    return results


def _send(adapter_class, configuration: ChannelConfiguration, messages: list[OutboundMessage]) -> list[SendResult]:
    adapter = None
    try:
        adapter = adapter_class(configuration)
        return adapter.send(messages)
    except Exception as error:  # noqa: BLE001 - any failure of a send made now is its outcome, shown to the sender
        detail = _error_text(error)
        return [SendResult(m.delivery_id, Outcome.PERMANENT, reason="error", detail=detail) for m in messages]
    finally:
        if adapter is not None:
            try:
                adapter.close()
            except Exception:  # noqa: BLE001, S110 - the outcome is known; a failed close changes nothing
                pass


def _with_short_timeout(configuration: ChannelConfiguration) -> ChannelConfiguration:
    """An unsaved copy whose timeout setting is at most TEST_SEND_TIMEOUT_SECONDS."""
    probe = copy.copy(configuration)
    settings = dict(configuration.settings)
    for name in _TIMEOUT_FIELDS:
        value = settings.get(name)
        if name in SETTINGS_MODELS[configuration.channel].model_fields and isinstance(value, (int, float)):
            settings[name] = min(value, TEST_SEND_TIMEOUT_SECONDS)
    probe.settings = settings
    return probe


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        # Stored settings that no longer validate (a field added since): name the fields, not the values.
        fields = ", ".join(".".join(str(part) for part in item["loc"]) or "settings" for item in error.errors())
        return f"The stored settings no longer validate ({fields}): edit the configuration."
    return f"{type(error).__name__}: {error}"[:500]


def _without_secrets(text: str, configuration: ChannelConfiguration) -> str:
    """`text` with every stored secret value (and each line of a multi-line one) replaced."""
    if not text:
        return text
    values = []
    for value in decrypt_secrets(configuration.encrypted_secrets).values():
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(value, str) and value:
            values.append(value)
            values.extend(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[secret]")
    return text


def _save(configuration: ChannelConfiguration) -> None:
    try:
        with transaction.atomic():
            configuration.save()
    except IntegrityError:
        if ChannelConfiguration.objects.filter(name=configuration.name).exclude(pk=configuration.pk).exists():
            raise NameTaken(f"A configuration named “{configuration.name}” already exists.") from None
        raise


def _listed(uses: list[Use]) -> str:
    return ", ".join(str(use) for use in uses)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"
