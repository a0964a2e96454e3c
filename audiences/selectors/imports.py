"""Reads of imports: the rows with a problem, as they were in the file, for the report that is fixed and
imported again."""

import itertools
from collections.abc import Iterator

from audiences.models import ProfileImport


def import_rows_to_fix(profile_import: ProfileImport, *, width: int) -> Iterator[list[str]]:
    """One list per line with a problem, in line order: the row's values as read from the file (fitted to the
    header's `width`: missing cells empty, extra cells joined into the last one with the file's delimiter),
    then its line number and its problems ("phone: not a valid number (field left out)"). A row that could not
    be read at all comes with empty values. Streamed: memory does not grow with the report."""
    problems = (
        profile_import.row_errors.order_by("line", "id")
        .values_list("line", "column", "problem", "rejected", "row")
        .iterator(chunk_size=500)
    )
    for line, group in itertools.groupby(problems, key=lambda problem: problem[0]):
        group = list(group)
        values = next((row for *_, row in group if row is not None), None) or []
        words = [
            f"{column or 'row'}: {problem} ({'row rejected' if rejected else 'field left out'})"
            for _, column, problem, rejected, _ in group
        ]
        yield [*_fitted(values, width, profile_import.delimiter), line, "; ".join(words)]


def _fitted(values: list[str], width: int, delimiter: str) -> list[str]:
    if len(values) <= width:
        return [*values, *[""] * (width - len(values))]
    return [*values[: width - 1], delimiter.join(values[width - 1 :])]
