"""The rule builder's form state and the rule JSON, both ways, without a database."""

import pytest

from audiences.rules import builder
from audiences.rules.words import rule_in_words

SCHEMA = builder.Schema(
    declared={
        "plan": "string",
        "country": "string",
        "age": "number",
        "vip": "boolean",
        "signup_date": "date",
        "last_seen": "datetime",
        "tags": "string_list",
    }
)


def as_post(root: builder.Node) -> dict[str, str]:
    """The inputs the builder's templates render for a tree, as the browser posts them."""
    data = {}
    for node in root.walk():
        prefix = f"rule[{node.path}]"
        if node.is_group:
            data[f"{prefix}[kind]"] = "group"
            data[f"{prefix}[combinator]"] = node.combinator
            continue
        data[f"{prefix}[kind]"] = "condition"
        data[f"{prefix}[subject]"] = node.subject_choice
        for name in ("op", "value", "value_to", "amount", "unit", "channel", "state", "audience"):
            data[f"{prefix}[{name}]"] = getattr(node, name)
    return data


def round_trip(rule):
    tree = builder.tree_from_rule(rule, SCHEMA)
    posted = builder.tree_from_post(as_post(tree))
    return builder.tree_to_rule(posted, SCHEMA)[0]


def cmp(attribute, op, value=None):
    comparison = {"attribute": attribute, "op": op}
    if op != "exists":
        comparison["value"] = value
    return comparison


EVERY_NODE = [
    # strings
    cmp("plan", "equals", "pro"),
    cmp("plan", "not_equals", " spaced "),
    cmp("country", "in", ["FR", "DE", "Paris, France", 'say "hi"', ""]),
    cmp("country", "not_in", ["FR"]),
    cmp("plan", "contains", "ro"),
    cmp("plan", "starts_with", "ent"),
    cmp("plan", "exists"),
    cmp("email", "equals", "a@example.com"),
    # numbers
    cmp("age", "equals", 30),
    cmp("age", "not_equals", 2.5),
    cmp("age", "in", [18, 21.5]),
    cmp("age", "not_in", [0]),
    cmp("age", "gt", 20),
    cmp("age", "gte", -1),
    cmp("age", "lt", 1e-05),
    cmp("age", "lte", 100),
    cmp("age", "between", [18, 65]),
    cmp("age", "exists"),
    # booleans
    cmp("vip", "equals", True),
    cmp("vip", "not_equals", False),
    cmp("vip", "exists"),
    # dates and date-times
    cmp("signup_date", "equals", "2026-01-31"),
    cmp("signup_date", "before", "2026-01-01"),
    cmp("signup_date", "after", "2025-06-30"),
    cmp("signup_date", "between", ["2025-01-01", "2025-12-31"]),
    cmp("signup_date", "in_last", {"amount": 30, "unit": "days"}),
    cmp("signup_date", "more_than_ago", {"amount": 2, "unit": "months"}),
    cmp("last_seen", "after", "2026-01-31T09:00:00Z"),
    cmp("last_seen", "between", ["2026-01-01T00:00:00Z", "2026-01-31T23:59:59Z"]),
    cmp("created_at", "in_last", {"amount": 12, "unit": "hours"}),
    cmp("created_at", "more_than_ago", {"amount": 1, "unit": "weeks"}),
    cmp("last_seen", "exists"),
    # lists of strings
    cmp("tags", "contains", "beta"),
    cmp("tags", "contains_any", ["beta", "early adopter"]),
    cmp("tags", "exists"),
    # consent and membership
    {"consent": {"channel": "email", "state": "opted_in"}},
    {"consent": {"channel": "sms", "state": "unknown"}},
    {"member_of": 12},
]


@pytest.mark.parametrize("node", EVERY_NODE, ids=lambda node: str(node)[:60])
def test_every_condition_round_trips_alone_and_in_a_group(node):
    assert round_trip(node) == node
    assert round_trip({"all": [node]}) == {"all": [node]}


@pytest.mark.parametrize(
    "rule",
    [
        {"all": []},
        {"all": [cmp("plan", "equals", "pro"), {"any": [cmp("country", "equals", "FR"), cmp("age", "lt", 20)]}]},
        {"any": [cmp("plan", "equals", "pro")]},
        {"not": cmp("vip", "equals", True)},
        {"not": {"any": [cmp("plan", "equals", "pro"), cmp("plan", "equals", "free")]}},
        {"not": {"any": [cmp("plan", "equals", "pro")]}},
        {"not": {"all": [cmp("plan", "equals", "pro"), cmp("country", "equals", "FR")]}},
        {"not": {"not": {"member_of": 3}}},
        {
            "all": [
                {"consent": {"channel": "email", "state": "opted_in"}},
                {"not": {"member_of": 7}},
                {"any": [{"all": [cmp("age", "between", [18, 30]), cmp("tags", "contains_any", ["a", "b"])]}]},
            ]
        },
    ],
    ids=str,
)
def test_groups_nested_and_negated_round_trip_exactly(rule):
    assert round_trip(rule) == rule


def test_an_empty_rule_opens_as_an_empty_all_group():
    tree = builder.tree_from_rule({}, SCHEMA)
    assert tree.is_group and tree.combinator == "all" and tree.children == []
    assert builder.tree_to_rule(tree, SCHEMA)[0] == {"all": []}


def test_none_of_is_written_as_not():
    tree = builder.new_group(combinator="none")
    tree.children = [builder.new_condition("", SCHEMA), builder.new_condition("", SCHEMA)]
    builder.renumber(tree)
    rule = builder.tree_to_rule(tree, SCHEMA)[0]
    assert list(rule) == ["not"] and len(rule["not"]["any"]) == 2


def test_values_are_typed_by_the_attribute():
    posted = {
        "rule[r][kind]": "group",
        "rule[r][combinator]": "all",
        "rule[r.0][kind]": "condition",
        "rule[r.0][subject]": "attribute:age",
        "rule[r.0][op]": "in",
        "rule[r.0][value]": "1, 2.5,3",
        "rule[r.1][kind]": "condition",
        "rule[r.1][subject]": "attribute:vip",
        "rule[r.1][op]": "equals",
        "rule[r.1][value]": "false",
        "rule[r.2][kind]": "condition",
        "rule[r.2][subject]": "attribute:last_seen",
        "rule[r.2][op]": "before",
        "rule[r.2][value]": "2026-03-01T08:30",  # a datetime-local input's value, read as UTC
        "rule[r.3][kind]": "condition",
        "rule[r.3][subject]": "attribute:age",
        "rule[r.3][op]": "gt",
        "rule[r.3][value]": "lots",  # passed on as typed: the rule language says what is wrong
    }
    rule = builder.tree_to_rule(builder.tree_from_post(posted), SCHEMA)[0]
    assert rule == {
        "all": [
            cmp("age", "in", [1, 2.5, 3]),
            cmp("vip", "equals", False),
            cmp("last_seen", "before", "2026-03-01T08:30:00Z"),
            cmp("age", "gt", "lots"),
        ]
    }


def test_datetimes_with_an_offset_open_in_utc():
    tree = builder.tree_from_rule(cmp("last_seen", "after", "2026-01-31T10:00:00+01:00"), SCHEMA)
    assert tree.value == "2026-01-31T09:00:00"
    assert builder.tree_to_rule(tree, SCHEMA)[0]["value"] == "2026-01-31T09:00:00Z"


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:00-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_datetime_with_no_utc_equivalent_is_kept_as_written_both_ways(moment):
    """Past year 9999 (or before year 1) once in UTC: converting it overflowed, a server error on the page."""
    tree = builder.tree_from_rule(cmp("last_seen", "after", moment), SCHEMA)
    assert tree.value == moment
    assert builder.tree_to_rule(tree, SCHEMA)[0]["value"] == moment


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("FR, DE", ["FR", "DE"]),
        ("FR,DE,", ["FR", "DE"]),
        ('"Paris, France", Lyon', ["Paris, France", "Lyon"]),
        ('"say ""hi"""', ['say "hi"']),
        ('" padded ", ""', [" padded ", ""]),
        ("", []),
        ("  a  ,, b ", ["a", "b"]),
    ],
)
def test_lists_are_comma_separated_with_quotes_for_commas(text, items):
    assert builder.split_list(text) == items
    assert builder.split_list(builder.join_list(items)) == items


def test_posted_paths_order_children_and_close_gaps():
    posted = {
        "rule[r][kind]": "group",
        "rule[r][combinator]": "any",
        "rule[r.10][kind]": "condition",
        "rule[r.10][subject]": "consent",
        "rule[r.2][kind]": "condition",
        "rule[r.2][subject]": "member",
        "rule[r.2][audience]": "4",
        "rule[r.10][channel]": "sms",
        "rule[r.10][state]": "opted_out",
    }
    tree = builder.tree_from_post(posted)
    assert [child.path for child in tree.children] == ["r.0", "r.1"]
    assert builder.tree_to_rule(tree, SCHEMA)[0] == {
        "any": [{"member_of": 4}, {"consent": {"channel": "sms", "state": "opted_out"}}]
    }


@pytest.mark.parametrize(
    "posted",
    [
        {f"rule[r.{n}][kind]": "condition" for n in range(builder.MAX_NODES + 1)} | {"rule[r][kind]": "group"},
        {"rule[r][kind]": "group", "rule[r.0.1][kind]": "condition"},  # a child whose parent is missing
        {"rule[r][kind]": "condition", "rule[r.0][kind]": "condition"},  # a child of a condition
        {"rule[r][kind]": "group", ("rule[r" + ".0" * (builder.MAX_DEPTH + 1) + "][kind]"): "group"},
    ],
    ids=["too many nodes", "orphan", "child of a condition", "too deep"],
)
def test_a_tampered_form_is_refused(posted):
    with pytest.raises(builder.BuilderError):
        builder.tree_from_post(posted)


def test_names_that_are_not_builder_fields_are_ignored():
    tree = builder.tree_from_post({"name": "x", "rule[r][kind]": "group", "rule[../x][kind]": "group"})
    assert tree.children == []


def test_no_posted_root_is_an_empty_group():
    assert builder.tree_from_post({}).is_group


# Builder actions -------------------------------------------------------------------------------------------


def test_add_condition_and_group_then_remove():
    tree = builder.new_group()
    tree = builder.apply_action(tree, "add-condition:r", SCHEMA)
    tree = builder.apply_action(tree, "add-group:r", SCHEMA)
    assert [child.path for child in tree.children] == ["r.0", "r.1"]
    group = tree.children[1]
    assert group.is_group and group.combinator == "any" and [c.path for c in group.children] == ["r.1.0"]
    # A new condition starts on the first declared attribute with its type's first operator.
    assert (tree.children[0].attribute, tree.children[0].op) == ("age", "equals")

    tree = builder.apply_action(tree, "add-condition:r.1", SCHEMA)
    tree = builder.apply_action(tree, "remove:r.0", SCHEMA)
    assert [child.path for child in tree.children] == ["r.0"]
    assert [child.path for child in tree.children[0].children] == ["r.0.0", "r.0.1"]


def test_adding_to_a_single_condition_root_wraps_it_in_a_group():
    tree = builder.tree_from_rule(cmp("plan", "equals", "pro"), SCHEMA)
    tree = builder.apply_action(tree, "add-condition:r", SCHEMA)
    assert tree.is_group and len(tree.children) == 2
    assert builder.tree_to_rule(tree, SCHEMA)[0]["all"][0] == cmp("plan", "equals", "pro")


@pytest.mark.parametrize("action", ["remove:r", "remove:r.9", "add-condition:x", "explode:r", ""])
def test_unknown_actions_and_paths_change_nothing(action):
    rule = {"all": [cmp("plan", "equals", "pro")]}
    tree = builder.apply_action(builder.tree_from_rule(rule, SCHEMA), action, SCHEMA)
    assert builder.tree_to_rule(tree, SCHEMA)[0] == rule


def test_groups_stop_nesting_at_the_page_limit():
    tree = builder.new_group()
    path = "r"
    for _ in range(builder.MAX_GROUP_DEPTH + 2):
        tree = builder.apply_action(tree, f"add-group:{path}", SCHEMA)
        deeper = [child for child in builder.find(tree, path).children if child.is_group]
        if not deeper:
            break
        path = deeper[-1].path
    assert max(node.depth for node in tree.walk() if node.is_group) == builder.MAX_GROUP_DEPTH


def test_changing_the_attribute_keeps_operators_that_fit_and_resets_others():
    tree = builder.tree_from_rule({"all": [cmp("plan", "starts_with", "p"), cmp("plan", "equals", "x")]}, SCHEMA)
    tree.children[0].attribute = "age"  # no starts_with for numbers
    tree.children[1].attribute = "age"  # equals fits
    builder.fit_to_schema(tree, SCHEMA)
    assert (tree.children[0].op, tree.children[0].value) == ("equals", "")
    assert (tree.children[1].op, tree.children[1].value) == ("equals", "x")


def test_hours_are_offered_for_date_times_only():
    tree = builder.tree_from_rule(
        {"all": [cmp("signup_date", "in_last", {"amount": 2, "unit": "days"}), cmp("created_at", "exists")]}, SCHEMA
    )
    builder.annotate(tree, SCHEMA)
    date, datetime_ = tree.children
    assert "hours" not in date.period_units and "hours" in datetime_.period_units

    date.unit = "hours"
    builder.fit_to_schema(tree, SCHEMA)
    assert date.unit == "days"


def test_annotate_gives_each_condition_its_type_and_operators():
    tree = builder.tree_from_rule({"all": [cmp("vip", "exists"), cmp("gone", "equals", "x")]}, SCHEMA)
    builder.annotate(tree, SCHEMA)
    vip, gone = tree.children
    assert vip.type == "boolean" and [op for op, _ in vip.operator_choices] == ["equals", "not_equals", "exists"]
    assert gone.type is None and not gone.known and "between" in dict(gone.operator_choices)


# Errors of the rule language on the nodes ------------------------------------------------------------------


def test_errors_land_on_the_node_their_path_names():
    rule = {
        "all": [
            cmp("plan", "equals", "pro"),
            {"not": {"any": [cmp("age", "gt", "x"), cmp("age", "lt", 3)]}},
            {"any": [{"member_of": 3}]},
        ]
    }
    tree = builder.tree_from_rule(rule, SCHEMA)
    _, locations = builder.tree_to_rule(tree, SCHEMA)
    unplaced = builder.attach_errors(
        tree,
        [
            "all[1].not.any[0].value: expected a number",
            "all[1].not.any[1].value[1]: expected a number",
            "all[2].any[0].member_of: an audience cannot include itself",
            "all[2]: something about the group",
            "rule: something about the whole rule",
            "elsewhere[9]: nobody's",
        ],
        locations,
    )
    assert builder.find(tree, "r.1.0").errors == ["value: expected a number"]
    assert builder.find(tree, "r.1.1").errors == ["value[1]: expected a number"]
    assert builder.find(tree, "r.2.0").errors == ["member_of: an audience cannot include itself"]
    assert builder.find(tree, "r.2").errors == ["something about the group"]
    assert tree.errors == ["something about the whole rule"]
    assert unplaced == ["elsewhere[9]: nobody's"]
    assert builder.find(tree, "r.1.0").error_pairs == [("value", "expected a number")]


# In words --------------------------------------------------------------------------------------------------


def test_a_rule_reads_as_a_sentence():
    rule = {
        "all": [
            cmp("plan", "equals", "pro"),
            {"any": [cmp("country", "in", ["FR", "DE"]), cmp("age", "between", [18, 30])]},
            {"not": cmp("vip", "equals", True)},
            {"consent": {"channel": "email", "state": "opted_in"}},
            {"member_of": 4},
            cmp("signup_date", "in_last", {"amount": 30, "unit": "days"}),
            cmp("tags", "exists"),
        ]
    }
    assert rule_in_words(rule, {4: "Newsletter"}) == (
        "plan is pro AND (country is one of FR, DE OR age is between 18 and 30) AND NOT (vip is yes) AND "
        "Email consent is opted in AND member of “Newsletter” AND signup_date is in the last 30 days AND "
        "tags is set"
    )
    assert rule_in_words({}) == "every profile"
    assert rule_in_words({"member_of": 9}) == "member of audience #9"
    assert rule_in_words({"not": {"all": [cmp("a", "gt", 1), cmp("b", "lt", 2)]}}) == (
        "NOT (a is more than 1 AND b is less than 2)"
    )


def test_a_profile_field_wins_over_a_declared_attribute_of_its_name():
    schema = builder.Schema(declared={"email": "number", "plan": "string"})
    assert [attribute.name for attribute in schema.declared] == ["plan"]
    assert schema.get("email").type == "string" and schema.get("email").builtin
