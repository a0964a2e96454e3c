"""Reading import files: the format of a CSV (encoding, delimiter, header), a sample of its values, its records
streamed from a byte offset, and each record turned into a ProfileInput.

Files are read as bytes, line by line, and decoded here: the byte offset after each record is then exact, so
an import resumes with a seek. Nothing reads a whole file: memory stays flat whatever its size.
"""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from audiences.attributes import list_items
from audiences.models import AttributeDefinition, Channel, IdentityNamespace

BOM = codecs.BOM_UTF8
SNIFF_BYTES = 1024
CHECK_BYTES = 64 * 1024  # checked as UTF-8 at upload; a bad line further on rejects that row only
MAX_FIELD = 1024 * 1024  # a field larger than this rejects its row
MAX_LINE_BYTES = 4 * 1024 * 1024  # a physical line longer than this rejects its row unread
DELIMITERS = ",;\t"

# Targets a column can fill. Keyed ones are written "identity:crm_id", "attribute:city", "consent:email".
SIMPLE_TARGETS = {
    "email": "Primary email",
    "phone": "Primary phone",
    "country": "Country of the phone numbers (ISO code)",
    "timezone": "Time zone",
    "locale": "Locale",
    "ignore": "Ignore this column",
}
KEYED_TARGETS = ("identity", "attribute", "consent")
LIST_SEPARATORS = ("|", ";", ",")

_CONSENT_WORDS = {
    "opted_in": {"opted_in", "opted in", "opt-in", "optin", "in", "yes", "y", "true", "1", "subscribed"},
    "opted_out": {"opted_out", "opted out", "opt-out", "optout", "out", "no", "n", "false", "0", "unsubscribed"},
    "unknown": {"unknown", "?"},
}
CONSENT_VALUES = {word: state for state, words in _CONSENT_WORDS.items() for word in words}


class FileFormatError(ValueError):
    """A file we cannot read as CSV; the message says what to do about it."""


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str
    header: list[str]


@dataclass(frozen=True)
class Record:
    """One record of the file: its first physical line, and its values (None when it was unreadable, with
    `problem` saying why)."""

    line: int
    values: list[str] | None
    problem: str = ""


# The format ---------------------------------------------------------------------------------------------


def detect_format(binary) -> CsvFormat:
    """The delimiter (comma, semicolon or tab, sniffed on the first KB) and the header of a UTF-8 CSV file,
    with or without a BOM. Other encodings are refused with a FileFormatError."""
    head = binary.read(CHECK_BYTES)
    if not head.strip():
        raise FileFormatError("The file is empty.")
    if head.startswith(BOM):
        head = head[len(BOM) :]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < CHECK_BYTES - len(BOM))
    except UnicodeDecodeError as error:
        raise FileFormatError(
            f"The file is not UTF-8 text (byte {head[error.start]:#04x} at position {error.start}). "
            "Save it as “CSV UTF-8” from your spreadsheet and upload it again."
        ) from None
    if "\x00" in text:
        raise FileFormatError("The file looks binary (it contains NUL characters), not CSV text.")
    delimiter = _sniff_delimiter(text[:SNIFF_BYTES])
    csv.field_size_limit(MAX_FIELD)
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (StopIteration, csv.Error):
        raise FileFormatError("The file has no header line.") from None
    header = unique_header(header)
    if not any(header):
        raise FileFormatError("The file has no header line.")
    return CsvFormat(delimiter=delimiter, header=header)


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column, or a sample the sniffer cannot decide on: the delimiter most used in the first line wins.
        first_line = sample.splitlines()[0] if sample else ""
        counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def unique_header(names: list[str]) -> list[str]:
    """Column names as shown and used in mappings: stripped, blanks named by position, repeats numbered."""
    header, seen = [], set()
    for position, name in enumerate(names, start=1):
        name = name.strip() or f"column {position}"
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name} ({n})", n + 1
        seen.add(candidate)
        header.append(candidate)
    return header


def sample_columns(binary, fmt: CsvFormat, *, rows: int = 1000) -> list[list[str]]:
    """Up to `rows` non-empty values of each column, from the start of the file, to guess attribute types."""
    samples: list[list[str]] = [[] for _ in fmt.header]
    records = read_records(binary, delimiter=fmt.delimiter)
    next(records, None)  # the header
    for count, record in enumerate(records):
        if count >= rows:
            break
        if record.values is None or len(record.values) != len(fmt.header):
            continue
        for column, value in enumerate(record.values):
            if value.strip():
                samples[column].append(value.strip())
    return samples


# Records ------------------------------------------------------------------------------------------------


class _Oversized(Exception):
    """A physical line longer than MAX_LINE_BYTES: it was skipped, not read."""


class _Lines:
    """The decoded physical lines of a binary file from `offset`, counting bytes and lines as csv reads them,
    and the quote characters of the record being read (to find where a broken quoted field ends)."""

    def __init__(self, binary, *, offset: int, line: int):
        self.binary = binary
        self.offset = offset
        self.line = line
        self.quotes = 0
        self.undecodable = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        at_start = self.offset == 0
        raw = self.binary.readline(MAX_LINE_BYTES)
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.line += 1
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            self.quotes += raw.count(b'"')
            while raw and not raw.endswith(b"\n"):
                raw = self.binary.readline(MAX_LINE_BYTES)
                self.offset += len(raw)
                self.quotes += raw.count(b'"')
            raise _Oversized
        if at_start and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        self.quotes += raw.count(b'"')
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable = True
            return raw.decode("utf-8", "replace")

    def skip_open_quotes(self) -> None:
        """After a broken record: while a quoted field is open (an odd number of quotes), skip its lines."""
        while self.quotes % 2:
            try:
                next(self)
            except _Oversized:
                continue
            except StopIteration:
                return


class RecordReader:
    """Records of a CSV file, streamed from byte `offset` (a record boundary; `line` physical lines lie before
    it). After each record, `offset` and `line` say where the next one starts. Blank lines are skipped.

    A record with a field over MAX_FIELD, a line over MAX_LINE_BYTES or bytes that are not UTF-8 comes back
    with values None and the problem: one bad row never stops the file.
    """

    def __init__(self, binary, *, delimiter: str, offset: int = 0, line: int = 0):
        csv.field_size_limit(MAX_FIELD)
        self._lines = _Lines(binary, offset=offset, line=line)
        self._reader = csv.reader(self._lines, delimiter=delimiter, strict=False)

    @property
    def offset(self) -> int:
        return self._lines.offset

    @property
    def line(self) -> int:
        return self._lines.line

    def __iter__(self) -> Iterator[Record]:
        lines = self._lines
        while True:
            start = lines.line + 1
            lines.quotes = 0
            lines.undecodable = False
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except _Oversized:
                lines.skip_open_quotes()
                yield Record(start, None, f"the row is larger than {MAX_LINE_BYTES // (1024 * 1024)} MB")
                continue
            except csv.Error as error:
                lines.skip_open_quotes()
                if "field limit" in str(error):
                    yield Record(start, None, f"a field is larger than {MAX_FIELD // (1024 * 1024)} MB")
                else:
                    yield Record(start, None, f"unreadable CSV: {error}")
                continue
            if lines.undecodable:
                yield Record(start, None, "the row is not UTF-8 text")
            elif values and any(value.strip() for value in values):
                yield Record(start, values)


def read_records(binary, *, delimiter: str, offset: int = 0, line: int = 0) -> Iterator[Record]:
    return iter(RecordReader(binary, delimiter=delimiter, offset=offset, line=line))


def count_lines(binary, end: int) -> int:
    """The number of physical lines in the first `end` bytes (where a resumed import starts counting)."""
    binary.seek(0)
    lines, left = 0, end
    while left > 0:
        block = binary.read(min(left, 1024 * 1024))
        if not block:
            break
        lines += block.count(b"\n")
        left -= len(block)
    return lines


# From a record to a ProfileInput ------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    """How one column fills a ProfileInput: `field` is the input's field path ("email", "attributes.city")."""

    index: int
    column: str
    field: str


class MappingError(ValueError):
    pass


def target_choices() -> list[tuple[str, str]]:
    """Every target a column may be mapped to now, as (value, label)."""
    choices = [("ignore", SIMPLE_TARGETS["ignore"])]
    choices += [(name, label) for name, label in SIMPLE_TARGETS.items() if name != "ignore"]
    for name, label in IdentityNamespace.objects.values_list("name", "label"):
        choices.append((f"identity:{name}", f"Identity: {label} ({name})"))
    for name, type_ in AttributeDefinition.objects.values_list("name", "type"):
        choices.append((f"attribute:{name}", f"Attribute: {name} ({AttributeDefinition.Type(type_).label})"))
    for channel in Channel:
        choices.append((f"consent:{channel.value}", f"Consent: {channel.label}"))
    return choices


def plan_columns(header: list[str], mapping: dict[str, str], *, valid_targets: set[str]) -> list[ColumnPlan]:
    """The columns to read and what each fills; a MappingError for an unknown column or target, or two columns
    filling the same thing."""
    plans, filled = [], {}
    for column, target in mapping.items():
        if column not in header:
            raise MappingError(f"there is no column {column!r} in the file")
        if target == "ignore":
            continue
        if target not in valid_targets:
            raise MappingError(f"column {column!r}: unknown target {target!r}")
        if target in filled:
            raise MappingError(f"columns {filled[target]!r} and {column!r} both fill {target}")
        filled[target] = column
        kind, _, key = target.partition(":")
        field = {"identity": "identities", "attribute": "attributes", "consent": "consent"}.get(kind, kind)
        plans.append(ColumnPlan(header.index(column), column, f"{field}.{key}" if key else field))
    if not any(plan.field.split(".")[0] in ("email", "phone", "identities") for plan in plans):
        raise MappingError("map at least one column to an identity, the primary email or the primary phone")
    return sorted(plans, key=lambda plan: plan.index)


def identity_namespace(plan: ColumnPlan) -> str | None:
    """The identity namespace a column fills ("email" for the primary email), or None."""
    field, _, key = plan.field.partition(".")
    if field in ("email", "phone"):
        return field
    return key if field == "identities" else None


def identity_namespaces(plans: list[ColumnPlan]) -> list[str]:
    """The identity namespaces the columns fill, in column order."""
    return [namespace for plan in plans if (namespace := identity_namespace(plan))]


def default_match_on(plans: list[ColumnPlan]) -> str:
    """Email when a column fills it, else the first column's identity namespace."""
    mapped = identity_namespaces(plans)
    return "email" if "email" in mapped else mapped[0]


def check_match_on(match_on: str, plans: list[ColumnPlan]) -> None:
    """A MappingError unless a column fills the identity namespace rows are matched on."""
    mapped = identity_namespaces(plans)
    if match_on not in mapped:
        raise MappingError(
            f"rows are matched on {match_on!r}, but no column fills it: choose one of {', '.join(mapped)}"
        )


def record_to_data(
    values: list[str], plans: list[ColumnPlan], *, list_fields: frozenset[str] = frozenset(), separator: str = "|"
) -> dict:
    """The ProfileInput data of one record. Empty cells are left out: they change nothing. The cells of
    `list_fields` ("attributes.tags") are split on `separator` into their items."""
    data: dict = {}
    for plan in plans:
        value = values[plan.index].strip()
        if not value:
            continue
        field, _, key = plan.field.partition(".")
        if field == "consent":
            value = CONSENT_VALUES.get(value.lower(), value)
        elif plan.field in list_fields:
            value = list_items(value, separator)
        if key:
            data.setdefault(field, {})[key] = value
        else:
            data[field] = value
    return data


def plan_field(field: str, plans: list[ColumnPlan]) -> str:
    """The field of the column an error's `field` is about: itself, or the list it points into
    ("attributes.tags[2]" -> "attributes.tags"), or the field whose long name it cut short ("attributes.a_very…");
    `field` unchanged when no column fills it."""
    fields = [plan.field for plan in plans]
    if field in fields:
        return field
    whole = field.split("[", 1)[0]
    if whole in fields:
        return whole
    if whole.endswith("…"):
        matches = [candidate for candidate in fields if candidate.startswith(whole[:-1])]
        if len(matches) == 1:
            return matches[0]
    return field


def without_field(data: dict, field: str) -> bool:
    """Remove `field` ("email", "attributes.city") from record data; False when it was not there."""
    name, _, key = field.partition(".")
    if key:
        return data.get(name, {}).pop(key, None) is not None
    return data.pop(name, None) is not None


def cell(values: list[str], field: str, plans: list[ColumnPlan]) -> str:
    """The cell of the column that fills `field`, as written in the file ("" when no column does)."""
    for plan in plans:
        if plan.field == field:
            return values[plan.index]
    return ""


def column_of(field: str, plans: list[ColumnPlan]) -> str:
    """The column an error on `field` is about ("" when it is about the row)."""
    for plan in plans:
        if plan.field == field:
            return plan.column
    if field == "identities":
        return ", ".join(p.column for p in plans if p.field.split(".")[0] in ("identities", "email", "phone"))
    return ""
