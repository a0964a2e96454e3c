"""Forms of the profile settings pages: the attribute schema, identity namespaces, consent settings."""

from django import forms

from audiences.models import AttributeDefinition, Channel, IdentityNamespace, unknown_consent_allows_marketing


class AttributeForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        help_text="How imports, the API and rules name it: lower-case letters, digits and underscores. "
        "It cannot change later.",
    )
    type = forms.ChoiceField(
        choices=AttributeDefinition.Type.choices,
        help_text="Every value of the attribute has this type. It can change only while no profile holds a value.",
    )
    label = forms.CharField(max_length=200, required=False, help_text="What people see, e.g. “Date of birth”.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    indexed = forms.BooleanField(
        required=False,
        label="Indexed",
        help_text="Keep a database index on it, for audiences that filter on it often. Costs some space.",
    )

    def __init__(self, *args, definition: AttributeDefinition | None = None, type_locked: bool = False, **kwargs):
        if definition is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": definition.name,
                    "type": definition.type,
                    "label": definition.label,
                    "description": definition.description,
                    "indexed": definition.indexed,
                },
            )
        super().__init__(*args, **kwargs)
        if definition is not None:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name of a declared attribute never changes."
        if type_locked:
            self.fields["type"].disabled = True
            self.fields["type"].help_text = "Profiles hold values of this attribute: its type can no longer change."


class NamespaceForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        help_text="How imports and the API name it, e.g. loyalty_card: lower-case letters, digits and underscores.",
    )
    label = forms.CharField(max_length=200, required=False, help_text="What people see, e.g. “Loyalty card”.")
    kind = forms.ChoiceField(
        choices=IdentityNamespace.Kind.choices,
        initial=IdentityNamespace.Kind.TEXT,
        help_text="Email addresses and phone numbers are checked and normalized; text is stored as given.",
    )


class ConsentSettingsForm(forms.Form):
    """One choice per channel: what unknown consent means for marketing there."""

    CHOICES = [("yes", "Unknown means yes: send marketing"), ("no", "Unknown means no: do not send marketing")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for channel in Channel:
            self.fields[channel.value] = forms.ChoiceField(
                label=channel.label,
                choices=self.CHOICES,
                widget=forms.RadioSelect,
                initial="yes" if unknown_consent_allows_marketing(channel) else "no",
            )

    def settings(self) -> dict[str, bool]:
        return {channel.value: self.cleaned_data[channel.value] == "yes" for channel in Channel}
