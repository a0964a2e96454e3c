"""Checks for text and JSON that come from outside: API bodies, form fields holding JSON, webhook bodies, CSV cells.

Python's `json` accepts what the rest of the stack cannot store or print, so each way in checks it here first:

- lone surrogates (`"\\ud800"`) decode into a `str` that no page, CSV or SMTP session can encode;
- NUL characters, which PostgreSQL refuses in text and JSONB;
- numbers neither database keeps (`1e999` is infinity, integers past 64 bits); what a field's type allows is
  the field's own check;
- nesting deep enough to exhaust the parser's recursion (`[[[[...`), and bodies of any size.

Every refusal is an `UntrustedInputError` whose message names the place (`attributes.city`, `rule_json`) and the
problem, never echoing more than a few characters of the input.
"""

import json
import math
import re

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 2_000_000
# What both databases keep exactly as a whole number (PostgreSQL bigint, SQLite INTEGER).
MAX_INT = 2**63 - 1

# A string (possessive, and its closing quote optional so an unterminated one is consumed once: linear time
# whatever the input, where a backtracking pattern rescans from every quote), or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)
_BAD_CHARACTER = re.compile(r"[\ud800-\udfff\x00]")


class UntrustedInputError(ValueError):
    """Input refused; `where` names the field or JSON path, `problem` says what is wrong with it."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


def text_problem(value: str) -> str | None:
    """What makes `value` unfit to store and show (a lone surrogate, a NUL character), or None."""
    match = _BAD_CHARACTER.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return f"contains a NUL character (position {match.start() + 1})"
    return f"is not valid Unicode: a lone surrogate U+{ord(match.group()):04X} at position {match.start() + 1}"


def storable(value, limit: int) -> str:
    """What a provider or relay said, made safe to store and show: text, NUL and lone surrogates replaced by
    U+FFFD, at most `limit` characters. For words from outside that are kept, not refused (an answer's detail)."""
    text = value if isinstance(value, str) else str(value)
    return _BAD_CHARACTER.sub("\ufffd", text[:limit])


def check_text(value: str, *, where: str) -> str:
    """`value` unchanged, or UntrustedInputError naming `where`."""
    if (problem := text_problem(value)) is not None:
        raise UntrustedInputError(where, problem)
    return value


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (checked before parsing, which recurses)."""
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def loads(data: bytes | str, *, where: str = "", max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON from outside, refusing what `json.loads` would accept but nothing downstream can handle.

    Raises UntrustedInputError (a ValueError) naming `where` and the JSON path of the first bad value.
    """
    if len(data) > max_bytes:
        raise UntrustedInputError(where, f"is larger than {max_bytes:,} bytes")
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UntrustedInputError(where, f"is not UTF-8 (byte {error.start + 1})") from None
    if json_depth_exceeds(data, max_depth):
        raise UntrustedInputError(where, f"nests deeper than {max_depth} levels")
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        problem = f"is not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        raise UntrustedInputError(where, problem) from None
    except (ValueError, RecursionError) as error:  # an integer of more than 4,300 digits; a constant
        raise UntrustedInputError(where, f"is not JSON: {str(error)[:120]}") from None
    check_json_value(value, where=where)
    return value


def check_json_value(value, *, where: str = "") -> None:
    """Walk parsed JSON (iteratively) and refuse bad text in keys and strings, and out-of-range numbers.

    The path of a value is put into words only when it is refused: most inputs are fine, and this runs on each
    row of an import."""
    stack = [(value, (), 0)]
    while stack:
        item, parts, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise UntrustedInputError(_path(where, parts), f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                raise UntrustedInputError(_path(where, parts) or "value", problem)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                raise UntrustedInputError(
                    _path(where, parts) or "value", "is a whole number too large to store (64 bits at most)"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):  # 1e999 parses as infinity
                raise UntrustedInputError(_path(where, parts) or "value", "is a number out of range (not finite)")
        elif isinstance(item, dict):
            for key, child in item.items():
                if (problem := text_problem(key)) is not None:
                    raise UntrustedInputError(f"{_path(where, parts) or 'object'} key {excerpt(key)!r}", problem)
                stack.append((child, (*parts, key), depth + 1))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((child, (*parts, index), depth + 1))


def _path(where: str, parts: tuple) -> str:
    """The dotted path of a value: keys as excerpts, list positions in brackets ("attributes.tags[2]")."""
    path = where
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{excerpt(part)}" if path else excerpt(part)
    return path


def excerpt(text, limit: int = 40) -> str:
    """At most `limit` characters of `text` (then "…"), printable: what an error may repeat of an input."""
    text = _BAD_CHARACTER.sub("\ufffd", str(text))
    return text if len(text) <= limit else text[:limit] + "…"


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
