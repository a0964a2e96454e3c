"""The audit log's filter form."""

from django import forms


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor", help_text="Username, as it was at the time.")
    action = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Object type")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actions=(), object_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action"), *((action, action) for action in actions)]
        self.fields["object_type"].choices = [("", "Any type"), *((kind, kind) for kind in object_types)]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must be on or after the start date.")
        return data
