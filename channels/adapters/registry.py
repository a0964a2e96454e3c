"""One line per channel; adding a channel adds its module in this folder and a line here."""

from django.utils.module_loading import import_string

ADAPTERS = {
    "email": "channels.adapters.email.EmailAdapter",
    "sms": "channels.adapters.sms.SmsAdapter",
    "push": "channels.adapters.push.PushAdapter",
    "webhook": "channels.adapters.webhook.WebhookAdapter",
    "in_app": "channels.adapters.in_app.InAppAdapter",
}

# Open adapters by configuration, kept for the life of the worker process so connections are reused
# across jobs. A configuration edit changes updated_at, which opens a fresh adapter.
_open: dict[int, tuple[object, object]] = {}


def adapter_for(configuration):
    """An open adapter for `configuration`, reused while the configuration is unchanged."""
    held = _open.get(configuration.pk)
    if held and held[0] == configuration.updated_at:
        return held[1]
    if held:
        held[1].close()
    try:
        adapter_class = import_string(ADAPTERS[configuration.channel])
    except KeyError:
        raise LookupError(f"No adapter for channel {configuration.channel!r}") from None
    adapter = adapter_class(configuration)
    _open[configuration.pk] = (configuration.updated_at, adapter)
    return adapter


def close_all() -> None:
    while _open:
        _, (_, adapter) = _open.popitem()
        adapter.close()
