"""The proof form of the campaign page: where proofs go, which version, and as whom it is rendered. The shape of the
input only; campaigns.services.proofs checks the rules (the channel, the rate limit, content that renders)."""

import re

from django import forms
from django.core.exceptions import ValidationError

from audiences.models import Profile
from audiences.schemas import EmailError, excerpt, normalize_email
from campaigns.models import Campaign
from campaigns.services.proofs import MAX_PROOF_ADDRESSES
from config import untrusted
from config.forms import add_service_errors
from config.untrusted import MAX_INT

_SEPARATORS = re.compile(r"[\s,;]+")


class ProofForm(forms.Form):
    addresses = forms.CharField(
        label="Send to",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text=f"Up to {MAX_PROOF_ADDRESSES} email addresses, one a line or separated by commas.",
    )
    version = forms.TypedChoiceField(label="Version", coerce=int)
    # The profile the proof is rendered as (the one the preview shows); empty: the sample profile.
    profile = forms.IntegerField(required=False, min_value=1, max_value=MAX_INT, label="Rendered as")

    def __init__(self, data=None, *, campaign: Campaign, may_pick: bool):
        super().__init__(data)
        versions = list(
            campaign.versions.order_by("-number").values_list(
                "number", "channel_configuration_id", "channel_configuration__name"
            )
        )
        numbers = [number for number, _, _ in versions]
        live = campaign.live_version.number if campaign.live_version_id else None
        # A proof leaves through its version's configuration: when versions differ in it, each choice names it.
        differ = len({configuration for _, configuration, _ in versions}) > 1
        self.fields["version"].choices = [
            (
                number,
                f"Version {number}{_version_note(number, latest=numbers[0], live=live)}"
                + (f", through “{name}”" if differ else ""),
            )
            for number, _, name in versions
        ]
        self.fields["version"].initial = numbers[0] if numbers else None
        if not may_pick:  # only those who may read profiles render a proof as one
            del self.fields["profile"]

    def clean_addresses(self) -> list[str]:
        text = self.cleaned_data["addresses"]
        if (problem := untrusted.text_problem(text)) is not None:
            raise ValidationError(f"The addresses {problem}.")
        given = [part for part in _SEPARATORS.split(text) if part]
        if not given:
            raise ValidationError("Enter at least one email address.")
        addresses, problems = [], []
        for part in given:
            try:
                address = normalize_email(part)
            except EmailError as error:
                problems.append(f"{excerpt(part, 60)} is {_problem_words(error)}.")
                continue
            if address not in addresses:  # a repeat (the domain's case aside) is one address
                addresses.append(address)
        if problems:
            raise ValidationError(problems, code="invalid_address")
        if len(addresses) > MAX_PROOF_ADDRESSES:
            raise ValidationError(
                f"Enter at most {MAX_PROOF_ADDRESSES} addresses: {len(addresses)} were given.", code="too_many"
            )
        return addresses

    def clean_profile(self) -> Profile | None:
        pk = self.cleaned_data.get("profile")
        if pk is None:
            return None
        profile = Profile.objects.filter(pk=pk).first()
        if profile is None:
            raise ValidationError(f"There is no profile #{pk}: choose the sample profile or another one.")
        return profile

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(self, error)


def _version_note(number: int, *, latest: int, live: int | None) -> str:
    notes = [note for note, applies in (("latest", number == latest), ("live", number == live)) if applies]
    return f" ({', '.join(notes)})" if notes else ""


def _problem_words(error: EmailError) -> str:
    text = str(error)
    return text if text.startswith("not ") else f"not an email address: {text}"
