"""config/untrusted.py: what every way in applies to JSON and text from outside."""

import subprocess
import sys

import pytest

from config import untrusted
from tests.test_settings import ROOT


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": "\\ud800"}', "a: is not valid Unicode: a lone surrogate U+D800 at position 1"),
        ('{"a": ["x", "\\u0000"]}', "a[1]: contains a NUL character (position 1)"),
        ('{"\\udfff": 1}', "object key '\ufffd': is not valid Unicode"),
        ("[" * 33 + "]" * 33, "nests deeper than 32 levels"),
        ('{"a": 1e999}', "a: is a number out of range (not finite)"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": 9223372036854775808}', "a: is a whole number too large to store"),
        ('{"a": ', "is not JSON: Expecting value"),
        (b'{"a": "\xff"}', "is not UTF-8 (byte 8)"),
    ],
)
def test_what_no_database_or_page_can_take_is_refused_naming_its_path(text, problem):
    with pytest.raises(untrusted.UntrustedInputError) as refused:
        untrusted.loads(text)

    assert problem in str(refused.value)


def test_what_is_ordinary_passes_unchanged():
    text = '{"name": "Zoé ☃ 𝄞", "brackets": "[[[[{{{{", "n": [1, -2.5, 9223372036854775807], "deep": ' + "[" * 31
    text += "]" * 31 + "}"

    value = untrusted.loads(text)

    assert value["name"] == "Zoé ☃ 𝄞" and value["brackets"] == "[[[[{{{{" and value["n"][2] == 2**63 - 1


def test_storable_keeps_what_a_provider_said_without_what_cannot_be_stored():
    assert untrusted.storable("a\x00b\ud800c", 500) == "a\ufffdb\ufffdc"
    assert untrusted.storable("x" * 600, 500) == "x" * 500
    assert untrusted.storable(42, 10) == "42"


def test_adversarial_json_is_checked_in_linear_time():
    """A backtracking pattern rescanned from every quote: 80 KB of `\\"` took 29 s, 2 MB would take hours. The
    check runs in a subprocess bounded at 60 s for 2 MB of each shape (a linear pass takes well under a second)."""
    script = (
        "from config import untrusted\n"
        "for text in ['\"' + '\\\\\"' * 1_000_000, '\"' * 2_000_000, '[\"' * 1_000_000, '\\\\' * 2_000_000]:\n"
        "    try:\n"
        "        untrusted.loads(text, max_bytes=3_000_000)\n"
        "    except untrusted.UntrustedInputError:\n"
        "        pass\n"
        "print('done')\n"
    )

    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr
