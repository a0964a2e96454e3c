"""Forms of the suppression list pages: the filters and the manual add."""

from django import forms

from audiences.models import Channel
from channels.models import Suppression

# Channels whose messages go to an address a person gives out: the ones with something to suppress.
ADDRESSED_CHANNELS = [(Channel.EMAIL.value, Channel.EMAIL.label), (Channel.SMS.value, Channel.SMS.label)]


class SuppressionFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=320, label="Address contains")
    channel = forms.ChoiceField(required=False, choices=[("", "Any channel"), *Channel.choices])
    reason = forms.ChoiceField(required=False, choices=[("", "Any reason"), *Suppression.Reason.choices])


class SuppressionAddForm(forms.Form):
    channel = forms.ChoiceField(choices=ADDRESSED_CHANNELS, initial=Channel.EMAIL.value)
    address = forms.CharField(
        max_length=320,
        help_text="An email address (compared in lower case) or a phone number in international form (+44…).",
    )

    def clean(self):
        data = super().clean()
        address, channel = data.get("address", ""), data.get("channel")
        if channel == Channel.EMAIL and address and "@" not in address:
            self.add_error("address", "Enter an email address.")
        if channel == Channel.SMS and address and not address.strip().startswith("+"):
            self.add_error("address", "Enter the number in international form, starting with +.")
        return data
