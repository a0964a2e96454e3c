"""The charts of the campaign reports, drawn on the server as inline SVG.

Readable without colour: each series of a line chart has a dash pattern and a point marker of its own and its name
written at the end of its line; each series of a bar chart a fill pattern of its own, and each bar its value at its
end; both have a legend drawn the same way. Text takes the page's font and colour (`currentColor`); every label is
escaped, since domains and URLs are recipients' and marketers' content. The `<title>` and `<desc>` name the chart and
summarise its numbers for screen readers. No script, no external resource: a template puts the markup inline
(`{{ chart }}`), next to a table of the same numbers.
"""

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

WIDTH = 760
FONT_SIZE = 12
LABEL_LIMIT = 60  # characters of a bar chart's row label (a link URL); the whole label is its tooltip
DIRECT_LABEL_LIMIT = 20  # characters of a series name written at the end of its line
AXIS_LABEL_LIMIT = 16  # characters of a category under the x axis
MAX_X_LABELS = 8
MARK_EVERY_POINT_UP_TO = 60  # points of a line; a longer line has a marker every Nth point
MARKS_ON_A_LONG_LINE = 24

# Okabe and Ito's palette, told apart by most colour-blind readers; colour is only a help, never the only cue.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8a7500", "#666666")
DASHES = ("none", "8 4", "2 3", "12 3 2 3", "16 5", "5 2", "10 2 2 2 2 2", "1 5")
MARKERS = ("circle", "square", "triangle", "diamond", "open-circle", "open-square", "open-triangle", "open-diamond")
PATTERNS = ("solid", "hatched", "dotted", "cross-hatched", "striped", "checked")
MAX_SERIES = len(MARKERS)

NO_DATA = "No data yet"
# Spacings of the labelled times of a time axis: fractions of a day, or days counted from a Monday.
_NICE_TICKS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720)) + tuple(
    timedelta(days=d) for d in (1, 2, 7, 14, 28)
)
_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Characters XML 1.0 does not allow: a label holding one would make the whole chart unreadable to an XML parser.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Series:
    """One line (or one kind of bar): its name and its values, one per bucket or label, in order."""

    name: str
    values: list[float]


def timeline_chart(
    *,
    title: str,
    buckets: list[datetime],
    series: list[Series],
    unit_label: str = "messages",
    chart_id: str | None = None,
) -> SafeString:
    """A line chart over time. `buckets` are the starts of evenly spaced periods (minutes, hours or days), read on
    their own wall clock (convert them to the reader's zone first); each series has one count per bucket. The axis
    labels follow the spacing ("14:05", "3 Dec 14:00", "3 Dec"); the description gives each series' total and peak."""
    _check_series(series, len(buckets))
    cid = _chart_id(chart_id, title, buckets, series)
    if not buckets or not series:
        return _empty_chart(cid, title)
    label = _bucket_format(buckets)
    step = buckets[1] - buckets[0] if len(buckets) > 1 else None
    per = f" per {_period(step)}" if step else ""
    with_time = step < timedelta(days=1) if step else (buckets[0].hour, buckets[0].minute) != (0, 0)

    def whole(moment: datetime) -> str:
        return f"{_day(moment)} {moment.year}" + (f" {moment:%H:%M}" if with_time else "")

    span = whole(buckets[0]) if len(buckets) == 1 else f"from {whole(buckets[0])} to {whole(buckets[-1])}"
    summaries = []
    for line in series:
        total = sum(line.values)
        summary = f"{line.name}: {_number(total)} total"
        if total:
            peak = max(range(len(buckets)), key=line.values.__getitem__)
            summary += f", peak {_number(line.values[peak])} at {label(buckets[peak])}"
        summaries.append(summary)
    desc = f"{unit_label.capitalize()}{per}, {span}. " + "; ".join(summaries) + "."
    return _line_chart(
        cid=cid,
        title=title,
        desc=desc,
        caption=f"{unit_label}{per}",
        x_labels=[label(bucket) for bucket in buckets],
        x_ticks=lambda fit: _time_ticks(buckets, fit),
        series=series,
        integer=True,
        value_format=_tick_number,
    )


def trend_chart(
    *, title: str, labels: list[str], series: list[Series], percent: bool = True, chart_id: str | None = None
) -> SafeString:
    """A line chart over categories, in order: the rates of each occurrence of a recurring campaign. With `percent`,
    values are percentages (23.4 for 23.4%); otherwise counts."""
    _check_series(series, len(labels))
    cid = _chart_id(chart_id, title, labels, series)
    if not labels or not series:
        return _empty_chart(cid, title)

    def value(number: float) -> str:
        return f"{_number(number, places=1)}%" if percent else _number(number)

    summaries = []
    for line in series:
        peak = max(range(len(labels)), key=line.values.__getitem__)
        low = min(range(len(labels)), key=line.values.__getitem__)
        summaries.append(
            f"{line.name}: latest {value(line.values[-1])} ({labels[-1]}), peak {value(line.values[peak])} "
            f"({labels[peak]}), lowest {value(line.values[low])} ({labels[low]})"
        )
    desc = (
        f"1 occurrence, {labels[0]}. "
        if len(labels) == 1
        else f"{len(labels)} occurrences, {labels[0]} to {labels[-1]}. "
    )
    return _line_chart(
        cid=cid,
        title=title,
        desc=desc + "; ".join(summaries) + ".",
        caption="percent" if percent else "",
        x_labels=[truncate_label(label, AXIS_LABEL_LIMIT) for label in labels],
        x_ticks=lambda fit: list(range(0, len(labels), math.ceil(len(labels) / fit))),
        series=series,
        integer=not percent,
        value_format=(lambda tick: f"{_number(tick, places=2)}%") if percent else _tick_number,
    )


def bar_chart(
    *, title: str, rows: list[tuple[str, list[int]]], series_names: list[str], chart_id: str | None = None
) -> SafeString:
    """Horizontal grouped bars: one group per row label (a domain, a link, an occurrence), one bar per series, each
    filled with a pattern of its own and its value written at its end. A label longer than `LABEL_LIMIT` characters
    is cut with an ellipsis, the whole label in its tooltip."""
    if not 0 < len(series_names) <= len(PATTERNS):
        raise ValueError(f"A bar chart draws 1 to {len(PATTERNS)} series, not {len(series_names)}.")
    for label, values in rows:
        if len(values) != len(series_names):
            raise ValueError(f"Row {label!r} has {len(values)} values for {len(series_names)} series.")
    cid = _chart_id(chart_id, title, rows, series_names)
    if not rows:
        return _empty_chart(cid, title)

    summaries = []
    for index, name in enumerate(series_names):
        column = [values[index] for _label, values in rows]
        top = max(range(len(rows)), key=column.__getitem__)
        summary = f"{name}: {_number(sum(column))} total"
        if column[top]:
            summary += f", highest {_number(column[top])} ({truncate_label(rows[top][0])})"
        summaries.append(summary)
    desc = f"{len(rows)} row{'s' if len(rows) != 1 else ''}. " + "; ".join(summaries) + "."

    shown = [truncate_label(label) for label, _values in rows]
    ticks = nice_ticks(max(max(values) for _label, values in rows))
    value_width = max(_text_width(_number(value)) for _label, values in rows for value in values) + 8
    label_width = min(max(_text_width(label, 11) for label in shown), _text_width("x" * LABEL_LIMIT, 11))
    left, right = max(label_width, 40) + 16, WIDTH - max(value_width, _text_width(_tick_number(ticks[-1])) / 2) - 8
    bar, gap, group_gap = 12, 2, 14
    group = len(series_names) * (bar + gap) - gap
    legend, legend_height = _legend(cid, series_names, 8, 44, WIDTH - 8, _bar_swatch)
    top = 44 + legend_height + 8
    bottom = top + len(rows) * (group + group_gap) - group_gap
    height = bottom + 30

    def x(value: float) -> float:
        return left + (right - left) * value / ticks[-1]

    parts = [_svg_open(cid, title, desc, height), "<defs>", *_patterns(cid, len(series_names)), "</defs>"]
    parts.append(_title_text(title))
    parts.extend(legend)
    parts.append('<g class="chart-grid" stroke="currentColor" stroke-opacity="0.15">')
    parts.extend(f'<line x1="{_n(x(tick))}" y1="{top - 4}" x2="{_n(x(tick))}" y2="{bottom + 4}"/>' for tick in ticks)
    parts.append('</g><g class="chart-x-axis" text-anchor="middle">')
    parts.extend(f'<text x="{_n(x(tick))}" y="{bottom + 20}">{_tick_number(tick)}</text>' for tick in ticks)
    parts.append("</g>")
    for row, ((label, values), short) in enumerate(zip(rows, shown, strict=True)):
        y = top + row * (group + group_gap)
        tooltip = f"<title>{_escape(label)}</title>" if short != label else ""
        parts.append(
            f'<g class="chart-row">{tooltip}<text class="chart-label" x="{_n(left - 8)}" y="{_n(y + group / 2)}" '
            f'dy="0.35em" text-anchor="end" font-size="11">{_escape(short)}</text>'
        )
        for index, value in enumerate(values):
            bar_y = y + index * (bar + gap)
            end = x(value)
            if value:
                parts.append(
                    f'<rect x="{_n(left)}" y="{_n(bar_y)}" width="{_n(end - left)}" height="{bar}" '
                    f'fill="url(#{cid}-pattern-{index})" stroke="{PALETTE[index]}"/>'
                )
            parts.append(
                f'<text class="chart-value" x="{_n(end + 4)}" y="{_n(bar_y + bar / 2)}" dy="0.35em" '
                f'font-size="11">{_number(value)}</text>'
            )
        parts.append("</g>")
    parts.append(f'<line x1="{_n(left)}" y1="{top - 4}" x2="{_n(left)}" y2="{bottom + 4}" stroke="currentColor"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label went through _escape


def nice_ticks(maximum: float, *, integer: bool = True, intervals: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least `maximum`: steps of 1, 2, 2.5 or 5 times a power of ten, about
    `intervals` of them (fewer for small counts: a count has no fraction)."""
    maximum = max(maximum, 0)
    if maximum == 0:
        return [0, 1] if integer else [0, 0.25, 0.5, 0.75, 1]
    raw = maximum / intervals
    power = 10 ** math.floor(math.log10(raw))
    steps = (power * m for m in (1, 2, 2.5, 5, 10))
    # A count has no fraction: no step of 2.5 or 0.5, none below 1.
    step = 1 if integer and raw <= 1 else next(s for s in steps if s >= raw and (not integer or s % 1 == 0))
    count = math.ceil(maximum / step - 1e-9)
    return [round(step * i, 10) if not integer else int(step * i) for i in range(count + 1)]


def truncate_label(label: str, limit: int = LABEL_LIMIT) -> str:
    """The label cut to `limit` characters, the last one an ellipsis, when it is longer."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _line_chart(
    *,
    cid: str,
    title: str,
    desc: str,
    caption: str,
    x_labels: list[str],
    x_ticks: Callable[[int], list[int]],
    series: list[Series],
    integer: bool,
    value_format: Callable[[float], str],
) -> SafeString:
    """What a timeline and a trend chart share: the lines over evenly spaced points with their labels."""
    count = len(x_labels)
    ticks = nice_ticks(max(max(line.values) for line in series), integer=integer)
    names = [truncate_label(line.name, DIRECT_LABEL_LIMIT) for line in series]
    left = max(_text_width(value_format(tick)) for tick in ticks) + 18
    right = WIDTH - max(_text_width(name) for name in names) - 14
    top, bottom = 56, 276

    def x(index: int) -> float:
        return (left + right) / 2 if count == 1 else left + (right - left) * index / (count - 1)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / ticks[-1]

    legend, legend_height = _legend(cid, names, left, bottom + 34, WIDTH - 8, _line_swatch)
    parts = [_svg_open(cid, title, desc, bottom + 34 + legend_height + 4), _title_text(title)]
    if caption:
        parts.append(f'<text class="chart-unit" x="{_n(left)}" y="{top - 12}" font-size="11">{_escape(caption)}</text>')
    parts.append('<g class="chart-grid" stroke="currentColor" stroke-opacity="0.15">')
    parts.extend(f'<line x1="{_n(left)}" y1="{_n(y(t))}" x2="{_n(right)}" y2="{_n(y(t))}"/>' for t in ticks[1:])
    parts.append('</g><g class="chart-y-axis" text-anchor="end">')
    parts.extend(f'<text x="{_n(left - 8)}" y="{_n(y(t))}" dy="0.35em">{value_format(t)}</text>' for t in ticks)
    parts.append(f'</g><line x1="{_n(left)}" y1="{bottom}" x2="{_n(right)}" y2="{bottom}" stroke="currentColor"/>')

    label_width = max(_text_width(label) for label in x_labels) + 12
    fit = max(1, min(MAX_X_LABELS, int((right - left) / label_width) + 1))
    parts.append('<g class="chart-x-axis" text-anchor="middle">')
    for index in x_ticks(fit):
        half = _text_width(x_labels[index]) / 2
        position = min(max(x(index), half + 2), WIDTH - half - 2)
        parts.append(
            f'<line x1="{_n(x(index))}" y1="{bottom}" x2="{_n(x(index))}" y2="{bottom + 4}" stroke="currentColor"/>'
            f'<text x="{_n(position)}" y="{bottom + 18}">{_escape(x_labels[index])}</text>'
        )
    parts.append("</g>")

    marks_every = 1 if count <= MARK_EVERY_POINT_UP_TO else math.ceil(count / MARKS_ON_A_LONG_LINE)
    xs = [_n(x(index)) for index in range(count)]
    for number, line in enumerate(series):
        colour = PALETTE[number]
        ys = [_n(y(value)) for value in line.values]
        points = " ".join(f"{px},{py}" for px, py in zip(xs, ys, strict=True))
        first_mark = number * marks_every // len(series)  # markers of long lines take turns, not one spot
        marked = range(min(first_mark, count - 1), count, marks_every)
        marks = "".join(_marker_path(MARKERS[number], x(i), y(line.values[i])) for i in marked)
        parts.append(
            f'<g class="chart-series" data-series="{_escape(line.name)}" data-dash="{DASHES[number]}" '
            f'data-marker="{MARKERS[number]}"><polyline points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="{DASHES[number]}" stroke-linejoin="round"/>'
            f"{_marker(MARKERS[number], colour, marks)}</g>"
        )

    ends = _spread([y(line.values[-1]) for line in series], FONT_SIZE + 1, top, bottom)
    parts.append('<g class="chart-direct-labels">')
    parts.extend(
        f'<text x="{_n(x(count - 1) + 8)}" y="{_n(end)}" dy="0.35em">{_escape(name)}</text>'
        for name, end in zip(names, ends, strict=True)
    )
    parts.append("</g>")
    parts.extend(legend)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label went through _escape


def _empty_chart(cid: str, title: str) -> SafeString:
    parts = [
        _svg_open(cid, title, f"{NO_DATA}.", 180),
        _title_text(title),
        f'<rect x="8" y="34" width="{WIDTH - 16}" height="138" fill="none" stroke="currentColor" '
        'stroke-opacity="0.3" stroke-dasharray="4 4"/>',
        f'<text class="chart-empty" x="{WIDTH / 2:g}" y="103" dy="0.35em" text-anchor="middle">{NO_DATA}</text>',
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - the title went through _escape


def _svg_open(cid: str, title: str, desc: str, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" viewBox="0 0 {WIDTH} {_n(height)}" width="100%" '
        f'font-family="inherit" font-size="{FONT_SIZE}" fill="currentColor">'
        f'<title id="{cid}-title">{_escape(title)}</title><desc id="{cid}-desc">{_escape(desc)}</desc>'
    )


def _title_text(title: str) -> str:
    return f'<text class="chart-title" x="8" y="20" font-size="14" font-weight="600">{_escape(title)}</text>'


def _legend(
    cid: str,
    names: Sequence[str],
    left: float,
    top: float,
    right: float,
    swatch: Callable[[str, int, float, float], str],
) -> tuple[list[str], float]:
    """The legend's markup, in rows that wrap at `right`, and its height."""
    parts, x, y = ['<g class="chart-legend">'], left, top
    for number, name in enumerate(names):
        width = 34 + _text_width(name)
        if x > left and x + width > right:
            x, y = left, y + 20
        parts.append(swatch(cid, number, x, y))
        parts.append(f'<text x="{_n(x + 34)}" y="{_n(y)}" dy="0.35em">{_escape(name)}</text>')
        x += width + 18
    parts.append("</g>")
    return parts, y - top + 20


def _line_swatch(_cid: str, number: int, x: float, y: float) -> str:
    marker = MARKERS[number]
    return (
        f'<g data-dash="{DASHES[number]}" data-marker="{marker}"><line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 28)}" '
        f'y2="{_n(y)}" stroke="{PALETTE[number]}" stroke-width="2" stroke-dasharray="{DASHES[number]}"/>'
        f"{_marker(marker, PALETTE[number], _marker_path(marker, x + 14, y))}</g>"
    )


def _bar_swatch(cid: str, number: int, x: float, y: float) -> str:
    return (
        f'<rect x="{_n(x)}" y="{_n(y - 6)}" width="26" height="12" fill="url(#{cid}-pattern-{number})" '
        f'stroke="{PALETTE[number]}" data-pattern="{PATTERNS[number]}"/>'
    )


def _patterns(cid: str, count: int) -> list[str]:
    """One fill per series, told apart without colour: solid, hatched, dotted, cross-hatched, striped, checked."""
    marks = {
        "solid": '<rect width="8" height="8" fill="{c}"/>',
        "hatched": '<path d="M-2,2l4,-4M0,8l8,-8M6,10l4,-4" stroke="{c}" stroke-width="1.5"/>',
        "dotted": '<circle cx="2" cy="2" r="1.3" fill="{c}"/><circle cx="6" cy="6" r="1.3" fill="{c}"/>',
        "cross-hatched": '<path d="M0,0l8,8M8,0l-8,8" stroke="{c}" stroke-width="1"/>',
        "striped": '<path d="M0,2h8M0,6h8" stroke="{c}" stroke-width="1.5"/>',
        "checked": '<rect width="4" height="4" fill="{c}"/><rect x="4" y="4" width="4" height="4" fill="{c}"/>',
    }
    return [
        f'<pattern id="{cid}-pattern-{number}" data-pattern="{PATTERNS[number]}" patternUnits="userSpaceOnUse" '
        f'width="8" height="8"><rect width="8" height="8" fill="{PALETTE[number]}" fill-opacity="0.12"/>'
        + marks[PATTERNS[number]].format(c=PALETTE[number])
        + "</pattern>"
        for number in range(count)
    ]


def _marker(kind: str, colour: str, path: str) -> str:
    if kind.startswith("open-"):
        return f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
    return f'<path d="{path}" fill="{colour}"/>'


def _marker_path(kind: str, x: float, y: float) -> str:
    """One marker as a sub-path, so all the markers of a line are one `<path>`."""
    shape = kind.removeprefix("open-")
    if shape == "circle":
        return f"M{_n(x - 3.5)},{_n(y)}a3.5,3.5 0 1,0 7,0a3.5,3.5 0 1,0 -7,0z"
    if shape == "square":
        return f"M{_n(x - 3.2)},{_n(y - 3.2)}h6.4v6.4h-6.4z"
    if shape == "triangle":
        return f"M{_n(x)},{_n(y - 4.2)}l4,7h-8z"
    return f"M{_n(x)},{_n(y - 4.5)}l4.5,4.5l-4.5,4.5l-4.5,-4.5z"  # diamond


def _spread(positions: list[float], gap: float, low: float, high: float) -> list[float]:
    """The positions moved apart by at least `gap`, as little as possible and within [low, high]: direct labels
    of lines that end close together do not overlap."""
    order = sorted(range(len(positions)), key=positions.__getitem__)
    placed = list(positions)
    floor = low
    for index in order:
        placed[index] = floor = max(placed[index], floor)
        floor += gap
    ceiling = high
    for index in reversed(order):
        placed[index] = ceiling = min(placed[index], ceiling)
        ceiling -= gap
    return placed


def _bucket_format(buckets: list[datetime]) -> Callable[[datetime], str]:
    """How a bucket is named on the axis, from the spacing: "14:05" for minutes of one day, "3 Dec 14:00" for
    hours (or minutes over several days), "3 Dec" for days ("3 Dec 2025" over several years)."""
    first, last = buckets[0], buckets[-1]
    step = buckets[1] - first if len(buckets) > 1 else None
    if step is None:
        has_time = (first.hour, first.minute) != (0, 0)
        return (lambda moment: f"{_day(moment)} {moment:%H:%M}") if has_time else _day
    if step < timedelta(days=1):
        if step < timedelta(hours=1) and first.date() == last.date():
            return lambda moment: f"{moment:%H:%M}"
        return lambda moment: f"{_day(moment)} {moment:%H:%M}"
    if first.year != last.year:
        return lambda moment: f"{_day(moment)} {moment.year}"
    return _day


def _time_ticks(buckets: list[datetime], fit: int) -> list[int]:
    """The buckets to label, at most `fit`: those on a round time (every 15 minutes, 3 hours, 7 days from a
    Monday...) when the spacing allows, else every Nth."""
    every = math.ceil(len(buckets) / fit)
    if len(buckets) == 1:
        return [0]
    step = buckets[1] - buckets[0]
    for nice in _NICE_TICKS:
        if nice >= step * every and nice % step == timedelta(0):
            if nice < timedelta(days=1):
                seconds = nice.total_seconds()
                on_tick = [
                    i for i, b in enumerate(buckets) if (b.hour * 3600 + b.minute * 60 + b.second) % seconds == 0
                ]
            else:
                # Days counted from a Monday (ordinal 1 is Monday 1 January of year 1), so weeks start on Mondays.
                on_tick = [
                    i for i, b in enumerate(buckets) if b.time() == time() and (b.toordinal() - 1) % nice.days == 0
                ]
            if not on_tick:
                break  # buckets off round times (14:05:30): none would be labelled at a larger spacing either
            if len(on_tick) <= fit:
                return on_tick
    return list(range(0, len(buckets), every))


def _day(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]}"


def _period(step: timedelta) -> str:
    """The spacing in words: "minute", "5 minutes", "hour", "day"."""
    seconds = round(step.total_seconds())
    unit, size = next((unit, size) for unit, size in _UNITS if seconds % size == 0)
    return unit if seconds == size else f"{seconds // size} {unit}s"


def _check_series(series: list[Series], length: int) -> None:
    if len(series) > MAX_SERIES:
        raise ValueError(f"A line chart draws at most {MAX_SERIES} series, not {len(series)}.")
    for line in series:
        if len(line.values) != length:
            raise ValueError(f"Series {line.name!r} has {len(line.values)} values for {length} points.")


def _chart_id(chart_id: str | None, title: str, *data: object) -> str:
    """The id of the chart and the prefix of its parts' ids: `chart_id` if given, else stable for a title and
    its data, so two charts of one page do not share pattern or title ids."""
    if chart_id is not None:
        if not _ID.fullmatch(chart_id):
            raise ValueError("A chart id is a letter then up to 63 letters, digits, '-' or '_'.")
        return chart_id
    digest = hashlib.blake2b(repr((title, data)).encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return f"chart-{slugify(title)[:32].strip('-') or 'untitled'}-{digest}"


def _escape(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text))


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    """SVG text cannot be measured on the server: layouts reserve this much (a little wide on purpose)."""
    return len(text) * 0.62 * size


def _number(value: float, places: int = 0) -> str:
    """1234567 as "1,234,567"; a fraction to `places` decimals without trailing zeros."""
    if places and value != int(value):
        return f"{value:,.{places}f}".rstrip("0").rstrip(".")
    return f"{round(value):,}"


def _tick_number(value: float) -> str:
    """A tick of a count axis: "7,500", "250k", "1.5M"."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return _number(value)


def _n(value: float) -> str:
    """A coordinate to a tenth of a unit, as short as it can be written: points are most of a chart's size."""
    return f"{round(value, 1):g}"
