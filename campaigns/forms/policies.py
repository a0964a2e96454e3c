"""The approval policy form: the shape of a policy's rules; campaigns.services.approval checks them."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audiences.models import Channel
from campaigns.forms.campaigns import ChoicesByIdField, LifecycleErrorsMixin, split_tags
from campaigns.models import Campaign
from campaigns.services.approval import PolicyRules


class ApprovalPolicyForm(LifecycleErrorsMixin, forms.Form):
    name = forms.CharField(max_length=200)
    kinds = forms.MultipleChoiceField(
        label="Campaign kinds",
        choices=Campaign.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked matches every kind.",
    )
    categories = forms.MultipleChoiceField(
        choices=Campaign.Category.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked matches every category.",
    )
    channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The channel of the campaign's configuration. None ticked matches every channel.",
    )
    tags = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma separated. A campaign carrying any of them matches; empty matches every campaign.",
    )
    approver_groups = ChoicesByIdField(
        label="Approver roles",
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Holders of these roles approve, if they hold the approve permission.",
    )
    approver_users = ChoicesByIdField(
        label="Approver users",
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="Named users who approve, if they hold the approve permission.",
    )
    block_self_approval = forms.BooleanField(
        required=False,
        initial=True,
        help_text="The user who submitted a version, or last edited it, may not approve it.",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    @classmethod
    def for_policy(cls, policy, data=None):
        initial = {
            "name": policy.name,
            "kinds": policy.kinds,
            "categories": policy.categories,
            "channels": policy.channels,
            "tags": ", ".join(policy.tags),
            "approver_groups": list(policy.approver_groups.all()),
            "approver_users": list(policy.approver_users.all()),
            "block_self_approval": policy.block_self_approval,
            "is_active": policy.is_active,
        }
        return cls(data, initial=initial)

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])

    def clean(self):
        data = super().clean()
        if not data.get("approver_groups") and not data.get("approver_users") and not self.has_error("approver_users"):
            self.add_error("approver_groups", "Name an approver role, approver users, or both.")
        return data

    def rules(self) -> PolicyRules:
        data = self.cleaned_data
        return PolicyRules(
            name=data["name"],
            kinds=data["kinds"],
            categories=data["categories"],
            channels=data["channels"],
            tags=data["tags"],
            approver_groups=list(data["approver_groups"]),
            approver_users=list(data["approver_users"]),
            block_self_approval=data["block_self_approval"],
            is_active=data["is_active"],
        )
