import pytest

from audiences.attributes import AttributeValueError, coerce, infer_type


@pytest.mark.parametrize(
    ("type_", "raw", "stored"),
    [
        ("string", "Zoë", "Zoë"),
        ("string", 42, "42"),
        ("number", "42", 42),
        ("number", " 3.50 ", 3.5),
        ("number", 7.0, 7),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", False, False),
        ("date", "2026-01-31", "2026-01-31"),
        ("datetime", "2026-01-31T10:00:00+01:00", "2026-01-31T09:00:00Z"),
        ("datetime", "2026-01-31T09:00:00Z", "2026-01-31T09:00:00Z"),
        ("string_list", "red| green |red", ["red", "green"]),
        ("string_list", ["a", "b"], ["a", "b"]),
        ("number", None, None),
    ],
)
def test_values_take_the_one_stored_form_of_their_type(type_, raw, stored):
    assert coerce(type_, raw) == stored


@pytest.mark.parametrize(
    ("type_", "raw", "message"),
    [
        ("number", "12abc", "expected a number"),
        ("number", True, "got a boolean"),
        ("number", "nan", "finite"),
        ("boolean", "maybe", "expected yes/no"),
        ("date", "31/01/2026", "YYYY-MM-DD"),
        ("date", "2026-01-31garbage", "YYYY-MM-DD"),
        ("datetime", "2026-01-31T09:00:00", "UTC offset"),
        ("string_list", [1, 2], "list of texts"),
        ("string", "x" * 2001, "longer than"),
        ("datetime", "9999-12-31T23:59:00-12:00", "between the years 1 and 9999"),
        ("datetime", "0001-01-01T00:00:00+14:00", "between the years 1 and 9999"),
        ("number", 1e308, "expected a number between"),
        ("number", "-1e308", "expected a number between"),
        ("string", "a\x00b", "NUL"),
        ("string_list", ["ok", "b\ud800"], "not valid Unicode"),
        ("string_list", ["x" * 2001], "longer than"),
    ],
)
def test_values_that_do_not_fit_say_what_was_expected(type_, raw, message):
    with pytest.raises(AttributeValueError, match=message):
        coerce(type_, raw)


@pytest.mark.parametrize(
    ("samples", "guess"),
    [
        (["yes", "no", ""], "boolean"),
        (["1", "2.5", None], "number"),
        (["2026-01-01", "2025-12-31"], "date"),
        (["2026-01-01T10:00:00Z"], "datetime"),
        (["1", "x"], "string"),
        ([], "string"),
    ],
)
def test_type_is_guessed_from_samples(samples, guess):
    assert infer_type(samples) == guess


def test_early_datetimes_keep_four_year_digits_so_they_sort():
    assert coerce("datetime", "0999-12-31T23:59:59Z") == "0999-12-31T23:59:59Z"
    assert coerce("datetime", "0999-12-31T23:59:59Z") < coerce("datetime", "1000-01-01T00:00:00Z")
