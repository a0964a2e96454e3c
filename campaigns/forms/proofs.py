"""The proof form of the campaign page: where proofs go (email addresses, and profiles named `#42` for those who may
read profiles), which version, and as whom the typed addresses' proof is rendered. The shape of the input only;
campaigns.services.proofs checks the rules (the channel, the rate limit, content that renders)."""

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
_PROFILE_ENTRY = re.compile(r"#([0-9]+)")  # ASCII digits: "#٣" is no id


class ProofForm(forms.Form):
    addresses = forms.CharField(
        label="Send to",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text=f"Up to {MAX_PROOF_ADDRESSES} email addresses, one a line or separated by commas.",
    )
    # The help text of those who may read profiles, who may also name profiles.
    _PROFILES_HELP = (
        f"Up to {MAX_PROOF_ADDRESSES} recipients, one a line or separated by commas: email addresses, or profiles "
        "by id (#42), each of which gets the proof at its own address, rendered as itself."
    )
    version = forms.TypedChoiceField(label="Version", coerce=int)
    # The profile the proof is rendered as (the one the preview shows); empty: the sample profile.
    profile = forms.IntegerField(required=False, min_value=1, max_value=MAX_INT, label="Rendered as")

    def __init__(self, data=None, *, campaign: Campaign, may_pick: bool):
        super().__init__(data)
        self.may_pick = may_pick
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
        if may_pick:
            self.fields["addresses"].help_text = self._PROFILES_HELP
        else:  # only those who may read profiles render a proof as one, or send one to a profile
            del self.fields["profile"]

    def clean_addresses(self) -> list[str | Profile]:
        """The recipients in the order given, each once: email addresses (str) and profiles (`#42`, each found,
        with an email address). An entry that is neither is named; so is every `#` entry of a user who may not read
        profiles, before any profile is looked up (what such a user is told never depends on which ids exist)."""
        text = self.cleaned_data["addresses"]
        if (problem := untrusted.text_problem(text)) is not None:
            raise ValidationError(f"The addresses {problem}.")
        given = [part for part in _SEPARATORS.split(text) if part]
        if not given:
            raise ValidationError("Enter at least one email address.")
        entries, problems, refused = [], [], []
        for part in given:
            if part.startswith("#"):
                if not self.may_pick:
                    refused.append(excerpt(part, 30))
                elif (pk := _profile_id(part, problems)) is not None and pk not in entries:
                    entries.append(pk)  # a repeat (#42, #042) is one profile
                continue
            try:
                address = normalize_email(part)
            except EmailError as error:
                problems.append(f"{excerpt(part, 60)} is {_problem_words(error)}.")
                continue
            if address not in entries:  # a repeat (the domain's case aside) is one address
                entries.append(address)
        if refused:
            problems.insert(
                0,
                f"Only users who may read profiles can send a proof to a profile ({', '.join(refused)}): "
                "enter email addresses.",
            )
        if problems:
            raise ValidationError(problems, code="invalid_address")
        if len(entries) > MAX_PROOF_ADDRESSES:
            noun = "recipients" if self.may_pick else "addresses"
            raise ValidationError(
                f"Enter at most {MAX_PROOF_ADDRESSES} {noun}: {len(entries)} were given.", code="too_many"
            )
        return _with_profiles(entries)

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


def _profile_id(entry: str, problems: list[str]) -> int | None:
    """The id `entry` (`#42`) names, or None with its problem added."""
    match = _PROFILE_ENTRY.fullmatch(entry)
    if match is None:
        problems.append(f"{excerpt(entry, 60)} is not a profile: write # and the profile's id, as #42.")
        return None
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 19 or not 1 <= int(digits) <= MAX_INT:
        problems.append(f"There is no profile {excerpt(entry, 30)}: no profile has an id that large or small.")
        return None
    return int(digits)


def _with_profiles(entries: list[str | int]) -> list[str | Profile]:
    """`entries` with each profile id replaced by its profile; an id no profile has (never one, or erased) or a
    profile without an email address is named."""
    ids = [entry for entry in entries if isinstance(entry, int)]
    found = Profile.objects.in_bulk(ids) if ids else {}
    problems = []
    for pk in ids:
        if pk not in found:
            problems.append(f"There is no profile #{pk}: it was never created, or it was erased.")
        elif not found[pk].email:
            problems.append(f"Profile #{pk} has no email address: a proof cannot reach it.")
    if problems:
        raise ValidationError(problems, code="invalid_profile")
    return [found[entry] if isinstance(entry, int) else entry for entry in entries]


def _version_note(number: int, *, latest: int, live: int | None) -> str:
    notes = [note for note, applies in (("latest", number == latest), ("live", number == live)) if applies]
    return f" ({', '.join(notes)})" if notes else ""


def _problem_words(error: EmailError) -> str:
    text = str(error)
    return text if text.startswith("not ") else f"not an email address: {text}"
