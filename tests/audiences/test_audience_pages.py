"""The audience pages through Django's test client: list, detail, the rule builder's htmx fragments and its
JSON editor, the live estimate of an unsaved rule, saving, deleting, audit events and who may do what."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from audiences.models import AttributeDefinition, Audience, AudienceMember, Consent, Profile, ProfileImport
from campaigns.models import Campaign
from campaigns.services import lifecycle
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration

PRO = {"attribute": "plan", "op": "equals", "value": "pro"}
PRO_IN_FR_DE = {"all": [PRO, {"attribute": "country", "op": "in", "value": ["FR", "DE"]}]}


@pytest.fixture
def schema(db):
    for name, type_ in [("plan", "string"), ("country", "string"), ("age", "number"), ("vip", "boolean")]:
        AttributeDefinition.objects.create(name=name, type=type_)


@pytest.fixture
def people(schema):
    rows = [
        ("ann@example.com", {"plan": "pro", "country": "FR", "age": 31, "first_name": "Ann", "last_name": "Lee"}),
        ("bob@example.com", {"plan": "pro", "country": "DE", "age": 45}),
        ("cy@example.com", {"plan": "free", "country": "FR", "age": 19}),
        ("di@example.com", {"plan": "pro", "country": "IT", "age": 52, "vip": True}),
    ]
    return [Profile.objects.create(email=email, attributes=attributes) for email, attributes in rows]


@pytest.fixture
def pros(people, personas):
    return Audience.objects.create(name="Pros in FR and DE", kind=Audience.Kind.RULE, rule=PRO_IN_FR_DE)


@pytest.fixture
def configuration(db):
    return make_email_configuration(port=1025)


def campaign_for(audience, personas, configuration, *, name="Spring sale", status=Campaign.Status.DRAFT):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name=name,
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    return campaign


def logged_in(client, personas, username="manny"):
    client.force_login(personas[username])
    return client


class _Inputs(HTMLParser):
    """The name/value pairs a browser would post for the inputs of an HTML page or fragment."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("radio", "checkbox", "submit"):
            self.values[name] = attrs.get("value") or ""
        elif tag == "input" and name and attrs.get("type") == "radio" and "checked" in attrs:
            self.values[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            if self._first_option is None:
                self._first_option = value
                self.values.setdefault(self._select, value)
            if "selected" in attrs:
                self.values[self._select] = value
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data.removeprefix("\n") if not self.values[self._textarea] else data


def inputs(response) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(response.content.decode())
    return parser.values


def swapped(state: dict, fragment) -> dict:
    """The form after htmx swapped the builder fragment in: its inputs replace the builder's, the rest stays."""
    kept = {name: value for name, value in state.items() if not name.startswith(("rule[", "rule_mode", "rule_json"))}
    return kept | inputs(fragment)


def builder_post(client, data, action=""):
    return client.post(
        reverse("audiences:rule_builder"), {**data, "builder_action": action}, headers={"HX-Request": "true"}
    )


def to_json(client, data) -> dict:
    response = builder_post(client, data, "to-json")
    return json.loads(inputs(response)["rule_json"])


# The list ---------------------------------------------------------------------------------------------------


def test_list_shows_kind_campaigns_and_creator_and_loads_sizes_lazily(client, personas, pros, configuration):
    campaign_for(pros, personas, configuration, status=Campaign.Status.ACTIVE)
    Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL, created_by=personas["ada"])

    response = logged_in(client, personas, "april").get(reverse("audiences:audience_list"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Pros in FR and DE" in page and "Profiles matching a rule" in page and "All profiles" in page
    assert "Spring sale" in page and "badge-active" in page
    assert "ada" in page
    # Sizes are counted by their own requests when the cells scroll into view.
    assert f'hx-get="{reverse("audiences:audience_size", args=[pros.pk])}"' in page
    assert 'hx-trigger="revealed"' in page


def test_size_cell_counts_now(client, personas, pros):
    response = logged_in(client, personas).get(reverse("audiences:audience_size", args=[pros.pk]))
    assert response.content.decode().strip() == "2"


def test_size_cell_of_a_rule_that_no_longer_validates_says_so(client, personas, pros):
    AttributeDefinition.objects.filter(name="country").delete()
    response = logged_in(client, personas).get(reverse("audiences:audience_size", args=[pros.pk]))
    assert "rule to fix" in response.content.decode()


# The detail page --------------------------------------------------------------------------------------------


def test_detail_reads_the_rule_in_words_and_lists_its_campaigns(client, personas, pros, configuration):
    campaign_for(pros, personas, configuration, name="Autumn", status=Campaign.Status.PAUSED)
    response = logged_in(client, personas, "april").get(reverse("audiences:audience_detail", args=[pros.pk]))
    page = response.content.decode()
    assert "plan is pro AND country is one of FR, DE" in page
    assert "Autumn" in page and "badge-paused" in page
    # Approvers see audiences but may not change them.
    assert reverse("audiences:audience_edit", args=[pros.pk]) not in page


def test_preview_gives_size_and_sample_with_links_to_profiles(client, personas, pros, people):
    response = logged_in(client, personas).get(reverse("audiences:audience_preview", args=[pros.pk]))
    page = response.content.decode()
    assert '<span class="estimate-number">2</span>' in page
    assert "ann@example.com" in page and "bob@example.com" in page and "cy@example.com" not in page
    assert "Ann Lee" in page
    assert reverse("audiences:profile_detail", args=[people[0].pk]) in page


def test_sample_is_hidden_from_those_who_may_not_see_profiles(client, personas, pros):
    response = logged_in(client, personas, "april").get(reverse("audiences:audience_preview", args=[pros.pk]))
    page = response.content.decode()
    assert '<span class="estimate-number">2</span>' in page
    assert "ann@example.com" not in page and "permission to view profiles" in page


def test_uploaded_list_shows_its_members_and_import_report(client, personas, people):
    uploaded = Audience.objects.create(name="Fair visitors", kind=Audience.Kind.UPLOADED)
    AudienceMember.objects.bulk_create(AudienceMember(audience=uploaded, profile=p) for p in people[:3])
    profile_import = ProfileImport.objects.create(
        file="imports/x.csv",
        original_name="fair.csv",
        audience=uploaded,
        status=ProfileImport.Status.DONE,
        rows_stored=3,
        created_by=personas["manny"],
    )
    client = logged_in(client, personas)

    page = client.get(reverse("audiences:audience_detail", args=[uploaded.pk])).content.decode()
    assert "An uploaded list of 3 members" in page
    assert f'href="{reverse("audiences:import_detail", args=[profile_import.pk])}"' in page and "fair.csv" in page
    preview = client.get(reverse("audiences:audience_preview", args=[uploaded.pk])).content.decode()
    assert '<span class="estimate-number">3</span>' in preview

    # Its edit page changes name and description only: the kind is not offered, the members stay.
    edit = client.get(reverse("audiences:audience_edit", args=[uploaded.pk])).content.decode()
    assert 'name="kind"' not in edit and 'id="rule-builder"' not in edit and "fair.csv" in edit
    client.post(reverse("audiences:audience_edit", args=[uploaded.pk]), {"name": "Fair 2026", "description": ""})
    uploaded.refresh_from_db()
    assert (uploaded.name, uploaded.kind, uploaded.members.count()) == ("Fair 2026", Audience.Kind.UPLOADED, 3)


# The builder's fragments ------------------------------------------------------------------------------------


def test_add_condition_returns_the_builder_fragment_not_a_page(client, personas, schema):
    client = logged_in(client, personas)
    start = inputs(client.get(reverse("audiences:audience_create")))

    response = builder_post(client, start, "add-condition:r")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page and "<body" not in page
    assert page.lstrip().startswith("{#") is False and 'id="rule-builder"' in page
    assert 'name="rule[r.0][subject]"' in page
    assert response["HX-Trigger"] == "rule-changed"


def test_add_group_then_remove_a_condition(client, personas, schema):
    client = logged_in(client, personas)
    state = inputs(client.get(reverse("audiences:audience_create")))
    state = inputs(builder_post(client, state, "add-condition:r"))
    state = inputs(builder_post(client, state, "add-group:r"))
    assert "rule[r.1.0][subject]" in state

    state = inputs(builder_post(client, state, "remove:r.0"))

    assert "rule[r.1][kind]" not in state and state["rule[r.0][kind]"] == "group"
    assert "rule[r.0.0][subject]" in state


def test_changing_the_attribute_changes_operators_and_value_input(client, personas, schema):
    client = logged_in(client, personas)
    state = inputs(builder_post(client, inputs(client.get(reverse("audiences:audience_create"))), "add-condition:r"))
    state |= {"rule[r.0][subject]": "attribute:plan", "rule[r.0][op]": "starts_with"}
    as_text = builder_post(client, state).content.decode()
    assert 'value="starts_with" selected' in as_text

    state = inputs(builder_post(client, state)) | {"rule[r.0][subject]": "attribute:vip"}
    as_boolean = builder_post(client, state).content.decode()

    operators = re.search(r'name="rule\[r\.0\]\[op\]".*?</select>', as_boolean, re.S).group(0)
    assert re.findall(r'<option value="(\w+)"', operators) == ["equals", "not_equals", "exists"]
    assert 'value="starts_with"' not in as_boolean
    assert '<option value="true"' in as_boolean  # yes/no, not a text input


def test_builder_and_json_editor_round_trip_the_same_rule(client, personas, schema):
    rule = {
        "all": [
            PRO,
            {"any": [{"attribute": "country", "op": "in", "value": ["FR", "Paris, France"]}, {"not": PRO}]},
            {"attribute": "age", "op": "between", "value": [18, 30.5]},
            {"consent": {"channel": "email", "state": "opted_in"}},
        ]
    }
    audience = Audience.objects.create(name="Mixed", kind=Audience.Kind.RULE, rule=rule)
    client = logged_in(client, personas)
    # The edit page renders the stored rule in the builder; the browser posts its inputs back.
    state = inputs(client.get(reverse("audiences:audience_edit", args=[audience.pk])))
    assert state["rule_mode"] == "builder"

    assert to_json(client, state) == rule

    # And from the JSON editor back into the builder.
    back = builder_post(client, {"rule_mode": "json", "rule_json": json.dumps(rule)}, "to-builder")
    assert inputs(back)["rule_mode"] == "builder"
    assert to_json(client, inputs(back)) == rule


def test_json_editor_shows_invalid_json_with_its_position(client, personas, schema):
    client = logged_in(client, personas)
    response = builder_post(client, {"rule_mode": "json", "rule_json": '{"all": [}'}, "to-builder")
    page = response.content.decode()
    assert inputs(response)["rule_mode"] == "json"
    assert "The rule is not JSON: Expecting value (line 1, column 10)." in page
    assert inputs(response)["rule_json"] == '{"all": [}'  # kept as typed


def test_json_editor_shows_rule_errors_with_their_paths(client, personas, schema):
    client = logged_in(client, personas)
    bad = {"all": [PRO, {"attribute": "age", "op": "gt", "value": "old"}, {"attribute": "nope", "op": "exists"}]}
    response = builder_post(client, {"rule_mode": "json", "rule_json": json.dumps(bad)}, "to-builder")
    page = response.content.decode()
    assert inputs(response)["rule_mode"] == "json"
    assert "<code>all[1].value</code>" in page
    assert "<code>all[2].attribute</code>" in page


def test_builder_errors_sit_on_the_condition_they_name(client, personas, schema):
    client = logged_in(client, personas)
    state = {
        "name": "Old people",
        "kind": "rule",
        "rule_mode": "builder",
        "rule[r][kind]": "group",
        "rule[r][combinator]": "all",
        "rule[r.0][kind]": "condition",
        "rule[r.0][subject]": "attribute:plan",
        "rule[r.0][op]": "equals",
        "rule[r.0][value]": "pro",
        "rule[r.1][kind]": "condition",
        "rule[r.1][subject]": "attribute:age",
        "rule[r.1][op]": "gt",
        "rule[r.1][value]": "old",
    }
    response = client.post(reverse("audiences:audience_create"), state)

    page = response.content.decode()
    assert response.status_code == 200
    condition = re.search(r'class="rule-condition[^"]*" id="rule-r-1".*?</ul>', page, re.S).group(0)
    assert "rule-condition has-error" in condition and "<code>value</code>" in condition
    assert "Nothing was saved" in page
    assert not Audience.objects.filter(name="Old people").exists()


def test_a_tampered_builder_form_is_answered_with_an_empty_builder_and_a_reason(client, personas, schema):
    client = logged_in(client, personas)
    response = builder_post(client, {"rule_mode": "builder", "rule[r][kind]": "group", "rule[r.0.0][kind]": "group"})
    assert response.status_code == 200
    assert "reload the page" in response.content.decode()


# The live estimate ------------------------------------------------------------------------------------------


def test_estimate_counts_and_samples_an_unsaved_rule(client, personas, people):
    client = logged_in(client, personas)
    state = {
        "kind": "rule",
        "rule_mode": "json",
        "rule_json": json.dumps({"attribute": "age", "op": "gte", "value": 40}),
    }
    response = client.post(reverse("audiences:rule_estimate"), state, headers={"HX-Request": "true"})

    page = response.content.decode()
    assert '<span class="estimate-number">2</span>' in page and "profiles match now" in page
    assert "bob@example.com" in page and "di@example.com" in page and "ann@example.com" not in page
    assert not Audience.objects.exists()


def test_estimate_of_the_builder_state(client, personas, people):
    client = logged_in(client, personas)
    state = {
        "kind": "rule",
        "rule_mode": "builder",
        "rule[r][kind]": "group",
        "rule[r][combinator]": "any",
        "rule[r.0][kind]": "condition",
        "rule[r.0][subject]": "attribute:country",
        "rule[r.0][op]": "in",
        "rule[r.0][value]": "DE, IT",
    }
    page = client.post(reverse("audiences:rule_estimate"), state).content.decode()
    assert '<span class="estimate-number">2</span>' in page


def test_estimate_of_an_unfinished_rule_asks_to_finish_it(client, personas, people):
    client = logged_in(client, personas)
    state = {"kind": "rule", "rule_mode": "json", "rule_json": '{"attribute": "age", "op": "gt"}'}
    page = client.post(reverse("audiences:rule_estimate"), state).content.decode()
    assert "Finish the rule" in page and "estimate-number" not in page


def test_estimate_of_all_profiles_needs_no_rule(client, personas, people):
    page = logged_in(client, personas).post(reverse("audiences:rule_estimate"), {"kind": "all"}).content.decode()
    assert '<span class="estimate-number">4</span>' in page


@pytest.mark.parametrize("named", ["²", "１２", "9" * 400])
@pytest.mark.parametrize("fragment", ["audiences:rule_estimate", "audiences:rule_builder"])
def test_a_fragment_reads_an_audience_that_is_no_id_as_none(client, personas, people, fragment, named):
    """`"²".isdigit()` holds but int() refuses it (a server error before), and 400 digits overflow SQLite."""
    client = logged_in(client, personas)
    state = {"kind": "rule", "rule_mode": "json", "rule_json": json.dumps(PRO), "rule_audience": named}

    response = client.post(reverse(fragment), state, headers={"HX-Request": "true"})

    assert response.status_code == 200
    if fragment == "audiences:rule_estimate":
        assert '<span class="estimate-number">3</span>' in response.content.decode()


# Saving -----------------------------------------------------------------------------------------------------


def test_manager_creates_a_rule_audience_from_the_builder_and_it_is_audited(client, personas, people):
    client = logged_in(client, personas)
    state = inputs(client.get(reverse("audiences:audience_create")))
    state = swapped(state, builder_post(client, state, "add-condition:r"))
    state |= {
        "name": "Pros",
        "description": "Paying",
        "rule[r.0][subject]": "attribute:plan",
        "rule[r.0][value]": "pro",
    }

    response = client.post(reverse("audiences:audience_create"), state)

    audience = Audience.objects.get(name="Pros")
    assert response.status_code == 302 and response["Location"] == reverse(
        "audiences:audience_detail", args=[audience.pk]
    )
    assert (audience.kind, audience.rule, audience.created_by) == ("rule", {"all": [PRO]}, personas["manny"])
    event = AuditEvent.objects.get(action="audience.created")
    assert event.object_id == str(audience.pk) and event.after["rule"] == {"all": [PRO]}


def test_an_all_profiles_audience_stores_no_rule(client, personas, schema):
    client = logged_in(client, personas)
    state = inputs(client.get(reverse("audiences:audience_create"))) | {"name": "All", "kind": "all"}
    client.post(reverse("audiences:audience_create"), state)
    assert Audience.objects.get(name="All").rule == {}


def test_saving_from_the_json_editor_validates_and_stores_nothing_on_error(client, personas, schema):
    client = logged_in(client, personas)
    state = {"name": "Broken", "kind": "rule", "rule_mode": "json", "rule_json": '{"attribute": "plan", "op": "gt"}'}
    response = client.post(reverse("audiences:audience_create"), state)
    assert response.status_code == 200 and "<code>" in response.content.decode()
    assert not Audience.objects.exists() and not AuditEvent.objects.filter(action="audience.created").exists()

    state["rule_json"] = json.dumps(PRO)
    client.post(reverse("audiences:audience_create"), state)
    assert Audience.objects.get(name="Broken").rule == PRO


def test_a_name_already_taken_is_refused(client, personas, pros):
    state = {"name": pros.name, "kind": "all"}
    response = logged_in(client, personas).post(reverse("audiences:audience_create"), state)
    assert "Another audience has this name." in response.content.decode()
    assert Audience.objects.count() == 1


def test_a_rule_may_not_include_its_own_audience(client, personas, pros):
    state = {"name": pros.name, "kind": "rule", "rule_mode": "json", "rule_json": json.dumps({"member_of": pros.pk})}
    response = logged_in(client, personas).post(reverse("audiences:audience_edit", args=[pros.pk]), state)
    assert response.status_code == 200
    pros.refresh_from_db()
    assert pros.rule == PRO_IN_FR_DE


def test_edit_page_says_which_campaigns_the_change_affects(client, personas, pros, configuration):
    campaign_for(pros, personas, configuration, name="Live one", status=Campaign.Status.ACTIVE)
    campaign_for(pros, personas, configuration, name="Draft one")
    campaign_for(pros, personas, configuration, name="Old one", status=Campaign.Status.COMPLETED)
    including = Audience.objects.create(name="Wider", kind=Audience.Kind.RULE, rule={"member_of": pros.pk})

    page = logged_in(client, personas).get(reverse("audiences:audience_edit", args=[pros.pk])).content.decode()

    notice = re.search(r'class="notice affected".*?</div>', page, re.S).group(0)
    assert "Changing this rule changes who receives" in notice
    assert "Live one" in notice and "Draft one" in notice and "Old one" not in notice
    assert including.name in notice


def test_editing_the_rule_records_before_and_after(client, personas, pros):
    client = logged_in(client, personas)
    state = inputs(client.get(reverse("audiences:audience_edit", args=[pros.pk])))
    state = swapped(state, builder_post(client, state, "remove:r.1")) | {"description": "Only pros"}

    response = client.post(reverse("audiences:audience_edit", args=[pros.pk]), state)

    assert response.status_code == 302
    pros.refresh_from_db()
    assert pros.rule == {"all": [PRO]} and pros.description == "Only pros"
    event = AuditEvent.objects.get(action="audience.changed")
    assert event.before["rule"] == PRO_IN_FR_DE and event.after["rule"] == {"all": [PRO]}
    assert event.actor == personas["manny"]


def test_saving_without_a_change_records_nothing(client, personas, pros):
    client = logged_in(client, personas)
    state = inputs(client.get(reverse("audiences:audience_edit", args=[pros.pk])))
    client.post(reverse("audiences:audience_edit", args=[pros.pk]), state)
    assert not AuditEvent.objects.filter(action="audience.changed").exists()


# Deleting ---------------------------------------------------------------------------------------------------


def test_delete_is_refused_for_an_audience_of_an_active_campaign(client, personas, pros, configuration):
    campaign_for(pros, personas, configuration, name="Weekly", status=Campaign.Status.ACTIVE)
    client = logged_in(client, personas, "ada")

    confirm = client.get(reverse("audiences:audience_delete", args=[pros.pk])).content.decode()
    assert "cannot be deleted" in confirm and "Weekly" in confirm and "Delete audience</button>" not in confirm

    response = client.post(reverse("audiences:audience_delete", args=[pros.pk]), follow=True)
    page = response.content.decode()
    assert Audience.objects.filter(pk=pros.pk).exists()
    assert "live campaigns send to it" in page and "“Weekly” (active)" in page
    assert not AuditEvent.objects.filter(action="audience.deleted").exists()


def test_delete_is_refused_for_an_audience_of_a_draft_naming_it(client, personas, pros, configuration):
    campaign_for(pros, personas, configuration, name="Someday")
    response = logged_in(client, personas, "ada").post(
        reverse("audiences:audience_delete", args=[pros.pk]), follow=True
    )
    assert Audience.objects.filter(pk=pros.pk).exists()
    assert "“Someday” (draft)" in response.content.decode()


def test_the_database_refusal_is_caught_and_named(personas, pros, configuration, monkeypatch):
    from audiences.services import audiences as audience_services

    campaign_for(pros, personas, configuration, name="Raced")
    # As if the campaign got this audience between the check and the delete.
    monkeypatch.setattr(audience_services, "deletion_refusal", lambda audience: None)
    with pytest.raises(audience_services.AudienceInUse, match="“Raced”"):
        audience_services.audience_delete(actor=personas["ada"], audience=pros)
    assert Audience.objects.filter(pk=pros.pk).exists()
    assert not AuditEvent.objects.filter(action="audience.deleted").exists()


def test_delete_is_refused_while_another_audience_includes_it(client, personas, pros):
    Audience.objects.create(name="Wider", kind=Audience.Kind.RULE, rule={"any": [{"member_of": pros.pk}]})
    response = logged_in(client, personas, "ada").post(
        reverse("audiences:audience_delete", args=[pros.pk]), follow=True
    )
    assert Audience.objects.filter(pk=pros.pk).exists()
    assert "the rules of “Wider” include it" in response.content.decode()


def test_delete_of_an_unused_audience_is_audited(client, personas, pros):
    client = logged_in(client, personas, "ada")
    assert (
        "Delete audience</button>" in client.get(reverse("audiences:audience_delete", args=[pros.pk])).content.decode()
    )

    response = client.post(reverse("audiences:audience_delete", args=[pros.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("audiences:audience_list")
    assert not Audience.objects.filter(pk=pros.pk).exists()
    event = AuditEvent.objects.get(action="audience.deleted")
    assert event.object_id == str(pros.pk) and event.before["rule"] == PRO_IN_FR_DE and event.actor == personas["ada"]


# Who may do what --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "view", "edit", "delete"),
    [
        ("ada", True, True, True),
        ("april", True, False, False),
        ("manny", True, True, False),
        ("vera", False, False, False),
    ],
)
def test_each_persona_sees_the_buttons_it_may_use(client, personas, pros, username, view, edit, delete):
    client = logged_in(client, personas, username)
    response = client.get(reverse("audiences:audience_detail", args=[pros.pk]))
    assert (response.status_code == 200) == view
    page = response.content.decode()
    assert (reverse("audiences:audience_edit", args=[pros.pk]) in page) == edit
    assert (reverse("audiences:audience_delete", args=[pros.pk]) in page) == delete
    nav = client.get(reverse("campaigns:list")).content.decode()
    assert (f'href="{reverse("audiences:audience_list")}"' in nav) == view


def test_approver_may_not_use_the_builder_or_the_estimate(client, personas, pros):
    client = logged_in(client, personas, "april")
    assert client.post(reverse("audiences:rule_builder"), {}).status_code == 403
    assert client.post(reverse("audiences:rule_estimate"), {"kind": "all"}).status_code == 403
    assert client.post(reverse("audiences:audience_edit", args=[pros.pk]), {"name": "x"}).status_code == 403
    pros.refresh_from_db()
    assert pros.name == "Pros in FR and DE"


def test_manager_may_not_delete(client, personas, pros):
    assert logged_in(client, personas).post(reverse("audiences:audience_delete", args=[pros.pk])).status_code == 403
    assert Audience.objects.filter(pk=pros.pk).exists()


def test_a_builder_request_of_an_expired_session_sends_the_page_to_log_in(client, db):
    response = client.post(reverse("audiences:rule_builder"), {}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Redirect"].startswith(reverse("login"))


def test_consent_and_membership_conditions_work_end_to_end(client, personas, people, pros):
    Consent.objects.create(profile=people[1], channel="email", state=Consent.State.OPTED_IN)
    rule = {"all": [{"member_of": pros.pk}, {"consent": {"channel": "email", "state": "opted_in"}}]}
    client = logged_in(client, personas)
    state = {"name": "Reachable pros", "kind": "rule", "rule_mode": "json", "rule_json": json.dumps(rule)}

    estimate = client.post(reverse("audiences:rule_estimate"), state).content.decode()
    client.post(reverse("audiences:audience_create"), state)

    assert '<span class="estimate-number">1</span>' in estimate and "bob@example.com" in estimate
    created = Audience.objects.get(name="Reachable pros")
    detail = client.get(reverse("audiences:audience_detail", args=[created.pk])).content.decode()
    assert "member of “Pros in FR and DE” AND Email consent is opted in" in detail
