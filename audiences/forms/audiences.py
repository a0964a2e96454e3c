"""Forms of the audience pages: the audience's own fields, and the rule editor (builder or JSON) beside them.

They check the shape of the input; audiences.rules.tree checks the rule and audiences.services.audiences stores
it.
"""

import json

from django import forms

from audiences.models import Audience
from audiences.rules import builder
from audiences.rules.tree import RuleError, parse_rule
from config import untrusted

BUILDER, JSON = "builder", "json"
# A rule typed into the JSON editor larger than this is refused before parsing.
MAX_JSON_CHARS = 100_000


class AudienceForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What this audience is for."
    )
    kind = forms.ChoiceField(
        label="Who is in it",
        choices=[(Audience.Kind.RULE, "Profiles matching a rule"), (Audience.Kind.ALL, "All profiles")],
        initial=Audience.Kind.RULE,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, audience: Audience | None = None, **kwargs):
        self.audience = audience
        if audience is not None:
            kwargs.setdefault(
                "initial", {"name": audience.name, "description": audience.description, "kind": audience.kind}
            )
        super().__init__(*args, **kwargs)
        if audience is not None and audience.kind == Audience.Kind.UPLOADED:
            # Its members come from imports: the kind is shown, not chosen.
            del self.fields["kind"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Audience.objects.filter(name=name)
        if self.audience is not None:
            others = others.exclude(pk=self.audience.pk)
        if others.exists():
            raise forms.ValidationError("Another audience has this name.")
        return name

    @property
    def chosen_kind(self) -> str:
        """The kind as posted (before validation), for the parts of the page that depend on it."""
        if "kind" not in self.fields:
            return self.audience.kind
        value = self["kind"].value()
        return value if value in (Audience.Kind.RULE, Audience.Kind.ALL) else Audience.Kind.RULE


class RuleEditor:
    """The rule being edited, as the builder's tree or as JSON text: whichever the page shows (its mode).

    `errors` are the problems shown above the builder or next to the JSON editor, as (path, problem) pairs
    (the path empty for a problem of the whole text); in builder mode the rule language's errors sit on the
    nodes they name, and only those no node takes are in `errors`.
    """

    def __init__(self, *, mode: str, tree: builder.Node, json_text: str, schema: builder.Schema, audience_id=None):
        self.mode = mode
        self.tree = tree
        self.json_text = json_text
        self.schema = schema
        self.audience_id = audience_id
        self.errors: list[tuple[str, str]] = []
        self.checked = False

    @classmethod
    def for_rule(cls, rule, *, schema: builder.Schema, audience_id=None) -> "RuleEditor":
        """Open a stored rule: in the builder, or as JSON when the builder cannot show it."""
        text = _dump(rule) if rule else ""
        try:
            tree = builder.tree_from_rule(rule, schema)
        except builder.BuilderError as error:
            editor = cls(mode=JSON, tree=builder.new_group(), json_text=text, schema=schema, audience_id=audience_id)
            editor._add_error(str(error))
            return editor
        return cls(mode=BUILDER, tree=tree, json_text=text, schema=schema, audience_id=audience_id)

    @classmethod
    def from_post(cls, data, *, schema: builder.Schema, audience_id=None) -> "RuleEditor":
        """The editor as the page posted it. A builder form that is not a tree falls back to an empty group,
        with the reason in `errors`."""
        mode = JSON if data.get("rule_mode") == JSON else BUILDER
        error = None
        try:
            tree = builder.tree_from_post(data) if mode == BUILDER else builder.new_group()
        except builder.BuilderError as exc:
            tree, error = builder.new_group(), str(exc)
        if mode == BUILDER:
            builder.fit_to_schema(tree, schema)
        editor = cls(mode=mode, tree=tree, json_text=data.get("rule_json", ""), schema=schema, audience_id=audience_id)
        if error:
            editor._add_error(error)
        return editor

    # Reading the rule -----------------------------------------------------------------------------------

    def rule(self):
        """The rule as JSON data, or None when the JSON editor's text is not JSON (the reason in `errors`)."""
        if self.mode == BUILDER:
            return builder.tree_to_rule(self.tree, self.schema)[0]
        text = self.json_text.strip()
        if len(text) > MAX_JSON_CHARS:
            self._add_error(f"The rule is longer than {MAX_JSON_CHARS:,} characters.")
            return None
        if not text:
            return {}
        try:
            return untrusted.loads(text, where="rule", max_bytes=MAX_JSON_CHARS * 4)
        except untrusted.UntrustedInputError as error:
            self._add_error(f"The rule {error.problem}." if error.where == "rule" else f"{error}.")
            return None

    def valid_rule(self):
        """The rule if the rule language accepts it, else None with its errors placed (see the class)."""
        self.checked = True
        data = self.rule()
        if data is None:
            return None
        try:
            parse_rule(data, audience_id=self.audience_id)
        except RuleError as error:
            self.place(error.errors)
            return None
        return data

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(node.errors for node in self.tree.walk())

    def _add_error(self, problem: str, path: str = "") -> None:
        if (path, problem) not in self.errors:
            self.errors.append((path, problem))

    def place(self, errors: list[str]) -> None:
        """Show the rule language's "path: problem" errors: on the builder's nodes, or next to the JSON."""
        if self.mode == BUILDER:
            _, locations = builder.tree_to_rule(self.tree, self.schema)
            errors = builder.attach_errors(self.tree, errors, locations)
        for error in errors:
            path, problem = builder.split_error(error)
            self._add_error(problem, path)

    # Builder actions and switching modes ----------------------------------------------------------------

    def apply(self, action: str) -> None:
        """A builder button, or a switch between the builder and the JSON editor."""
        if action == "to-json":
            self.to_json()
        elif action == "to-builder":
            self.to_builder()
        elif self.mode == BUILDER and action:
            self.tree = builder.apply_action(self.tree, action, self.schema)

    def to_json(self) -> None:
        if self.mode == JSON:
            return
        self.json_text = _dump(builder.tree_to_rule(self.tree, self.schema)[0])
        self.mode = JSON

    def to_builder(self) -> None:
        """Load the JSON into the builder, if it is a valid rule; otherwise stay, its errors shown."""
        if self.mode == BUILDER:
            return
        data = self.valid_rule()
        if data is None:
            return
        try:
            self.tree = builder.tree_from_rule(data, self.schema)
        except builder.BuilderError as error:
            self._add_error(str(error))
            return
        self.mode = BUILDER


def _dump(rule) -> str:
    return json.dumps(rule, indent=2, ensure_ascii=False)
