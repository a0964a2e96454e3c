"""Channel configuration pages: list, detail, create and edit (forms generated from the channel's settings
model), switch on or off, delete, and send a test message.

Views check permissions, read the form and call channels.services.configurations (or channels.selectors);
nothing more. No page ever renders a stored secret: the settings shown come from `settings` (which holds none)
and the secret inputs are write-only.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audiences.models import Channel
from channels import selectors
from channels.adapters.base import Outcome
from channels.forms.configurations import ConfigurationForm, SendTestForm, choice_label, setting_specs
from channels.models import ChannelConfiguration
from channels.schemas import SETTINGS_MODELS
from channels.services import configurations
from permissions.access import permission_required


@permission_required("channels.view_channelconfiguration")
def configuration_list(request):
    listed = list(ChannelConfiguration.objects.all())
    used_by = selectors.uses_by_configuration([configuration.pk for configuration in listed])
    rows = [(configuration, used_by.get(configuration.pk, [])) for configuration in listed]
    return render(request, "channels/configuration_list.html", {"rows": rows, "channels": _channels()})


@permission_required("channels.view_channelconfiguration")
def configuration_detail(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    return render(request, "channels/configuration_detail.html", _detail_context(request, configuration))


@permission_required("channels.add_channelconfiguration")
def configuration_create(request):
    channel = request.GET.get("channel", "")
    if channel not in SETTINGS_MODELS:
        # No channel chosen yet (or one without settings): the page offers the channels to choose from.
        status = 404 if channel else 200
        return render(request, "channels/configuration_new.html", {"channels": _channels()}, status=status)
    form = ConfigurationForm(request.POST or None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            configuration = configurations.configuration_create(
                actor=request.user, name=form.cleaned_data["name"], channel=channel, settings=form.settings
            )
        except configurations.NameTaken as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, f"Configuration “{configuration.name}” created. Send a test to check it.")
            return redirect("channels:configuration_detail", configuration.pk)
    context = {"form": form, "channel_label": Channel(channel).label, "configuration": None}
    return render(request, "channels/configuration_form.html", context)


@permission_required("channels.change_channelconfiguration")
def configuration_edit(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    if configuration.channel not in SETTINGS_MODELS:
        raise Http404("No settings model for this channel.")
    form = ConfigurationForm(request.POST or None, channel=configuration.channel, configuration=configuration)
    if request.method == "POST" and form.is_valid():
        try:
            configurations.configuration_update(
                actor=request.user, configuration=configuration, name=form.cleaned_data["name"], settings=form.settings
            )
        except configurations.NameTaken as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, f"Configuration “{configuration.name}” saved.")
            return redirect("channels:configuration_detail", configuration.pk)
    context = {
        "form": form,
        "channel_label": configuration.get_channel_display(),
        "configuration": configuration,
        "uses": [use for use in selectors.configuration_uses(configuration) if not use.finished],
    }
    return render(request, "channels/configuration_form.html", context)


@permission_required("channels.change_channelconfiguration")
@require_POST
def configuration_set_active(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    active = request.POST.get("active") == "1"
    configurations.configuration_set_active(actor=request.user, configuration=configuration, is_active=active)
    if active:
        messages.success(request, f"“{configuration.name}” is active: campaigns can use it.")
    else:
        messages.success(
            request,
            f"“{configuration.name}” is inactive: no new campaign can choose it, and no campaign using it can be "
            "activated or resumed. Active campaigns keep sending through it until paused or stopped.",
        )
    if request.POST.get("next") == "list":
        return redirect("channels:configuration_list")
    return redirect("channels:configuration_detail", configuration.pk)


@permission_required("channels.delete_channelconfiguration")
def configuration_delete(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    refusal = configurations.deletion_refusal(configuration)
    if request.method == "POST" and refusal is None:
        name = configuration.name
        try:
            configurations.configuration_delete(actor=request.user, configuration=configuration)
        except configurations.ConfigurationInUse as error:
            refusal = error
        else:
            messages.success(request, f"Configuration “{name}” deleted.")
            return redirect("channels:configuration_list")
    # In-app messages live in this database, tied to their configuration: deleting it empties those inboxes.
    inbox_messages = configuration.inbox_messages.count() if configuration.channel == Channel.IN_APP else 0
    context = {"configuration": configuration, "refusal": refusal, "inbox_messages": inbox_messages}
    status = 409 if refusal and request.method == "POST" else 200
    return render(request, "channels/configuration_delete.html", context, status=status)


@permission_required("channels.change_channelconfiguration")
@require_POST
def configuration_send_test(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    form = SendTestForm(request.POST, channel=configuration.channel)
    result = None
    if form.is_valid():
        result = configurations.configuration_send_test(
            actor=request.user, configuration=configuration, to=form.address
        )
    context = {"configuration": configuration, "test_form": form, "test_result": result, "Outcome": Outcome}
    if request.htmx:
        return render(request, "channels/_configuration_send_test.html", context)
    return render(request, "channels/configuration_detail.html", {**_detail_context(request, configuration), **context})


def _detail_context(request, configuration) -> dict:
    return {
        "configuration": configuration,
        "settings_rows": _settings_rows(configuration),
        "uses": selectors.configuration_uses(configuration),
        "test_form": SendTestForm(channel=configuration.channel),
        "test_result": None,
    }


def _settings_rows(configuration) -> list[tuple[str, object, str]]:
    """(label, shown value, kind) of each setting. Secrets show only whether they are set."""
    if configuration.channel not in SETTINGS_MODELS:
        return [(name, value, "text") for name, value in configuration.settings.items()]
    stored_secrets = selectors.stored_secret_names(configuration)
    rows = []
    for spec in setting_specs(configuration.channel):
        if spec.kind == "secret":
            rows.append((spec.label, "set" if spec.name in stored_secrets else "not set", "secret"))
        else:
            value = configuration.settings.get(spec.name)
            if spec.kind == "choice" and value is not None:
                value = choice_label(value)
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
            rows.append((spec.label, value, spec.kind))
    return rows


def _channels() -> list[tuple[str, str, bool]]:
    """(value, label, whether it can be configured yet) of every channel."""
    return [(value, label, value in SETTINGS_MODELS) for value, label in Channel.choices]
