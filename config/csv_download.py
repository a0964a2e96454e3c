"""Streamed CSV downloads (audit log, suppression list, import error reports): one row at a time, never the
whole file in memory, with cells that a spreadsheet would run as formulas made inert."""

import csv
import re

from django.http import StreamingHttpResponse

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A phone number or a signed number: a spreadsheet may compute it, but it can call nothing. Kept as written,
# so an exported "+33 6 12 34 56 78" imports again as the same number.
_PLAIN_NUMBER = re.compile(r"[+-][0-9 ().\-/]*\Z")


class _Echo:
    """A file-like object whose write returns the line, so csv.writer feeds a streaming response."""

    def write(self, value):
        return value


def inert_cell(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in _FORMULA_STARTS and not _PLAIN_NUMBER.match(text) else text


def csv_download(*, header: list[str], rows, filename: str) -> StreamingHttpResponse:
    """A streamed CSV attachment of `header` then `rows` (an iterable of sequences), never cached."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([inert_cell(value) for value in row])

    response = StreamingHttpResponse(
        lines(), content_type="text/csv; charset=utf-8", headers={"Cache-Control": "no-store"}
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
