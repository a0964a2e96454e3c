"""The form of the API key pages. It checks the shape of the input; permissions.services.api_keys creates the
key."""

from django import forms
from django.core.exceptions import ValidationError

from config.untrusted import MAX_INT
from permissions import hooks


class TriggeredCampaignsField(forms.ModelMultipleChoiceField):
    """API-triggered campaigns, chosen by id. Each bad id gets an error saying what is wrong with it."""

    def label_from_instance(self, obj):
        return f"{obj.name} (#{obj.pk}, {obj.get_status_display().lower()})"

    def _check_values(self, value):
        ids = []
        errors = []
        for raw in value:
            try:
                campaign_id = int(str(raw).strip())
            except ValueError:
                campaign_id = None
            if campaign_id is None or abs(campaign_id) > MAX_INT:  # past 64 bits: SQLite cannot even compare it
                errors.append(ValidationError("“%(value)s” is not a campaign id.", params={"value": raw}))
            else:
                ids.append(campaign_id)
        callable_by_key = hooks.key_campaigns.get().callable_by_key(ids)
        for campaign_id in ids:
            if campaign_id not in callable_by_key:
                errors.append(ValidationError("Campaign %(id)s does not exist.", params={"id": campaign_id}))
            elif not callable_by_key[campaign_id]:
                errors.append(
                    ValidationError(
                        "Campaign %(id)s is not API-triggered: only API-triggered campaigns can be called with a key.",
                        params={"id": campaign_id},
                    )
                )
        if errors:
            raise ValidationError(errors)
        return self.queryset.filter(pk__in=ids)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="Say who uses it and where, e.g. “Shop backend (production)”. Shown in lists."
    )
    all_triggered_campaigns = forms.BooleanField(
        label="All API-triggered campaigns",
        required=False,
        help_text="May read and trigger every API-triggered campaign, including ones created later.",
    )
    campaigns = TriggeredCampaignsField(
        label="Chosen API-triggered campaigns",
        queryset=None,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="Only these campaigns. Hold Ctrl (⌘ on a Mac) to choose several.",
    )
    profiles = forms.BooleanField(
        label="Profiles (upsert, export, erase)",
        required=False,
        help_text="May create and update profiles through the API, export them and erase them.",
    )

    rate_per_second = forms.IntegerField(
        label="Trigger calls per second",
        required=False,
        min_value=1,
        max_value=100_000,
        help_text="Past this rate, trigger calls get 429 with Retry-After. Empty for the default of the installation.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaigns"].queryset = hooks.key_campaigns.get().choices()

    def clean(self):
        data = super().clean()
        chosen = data.get("campaigns")
        if (
            not self.has_error("campaigns")
            and not data.get("all_triggered_campaigns")
            and not chosen
            and not data.get("profiles")
        ):
            raise ValidationError(
                "Give the key at least one scope: all API-triggered campaigns, chosen campaigns, or profiles.",
                code="no_scope",
            )
        return data
