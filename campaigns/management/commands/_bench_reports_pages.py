"""`manage.py bench_reports --reports`: the server time of the campaign page's status partial and of the report pages,
against one `SELECT count(*)` over the measured run's deliveries, in the same process and the same run.

The pages are asked through Django's test Client, logged in as a campaign viewer (view_campaign, view_report): the
whole of Django's work on a request (middleware, session, user, view, template), in process, without a network or
a web server. The measures take turns; a round first warms caches and plans, then the median of `repeat` turns."""

import statistics
import time
from collections.abc import Callable

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

COUNT = "count(*) of the run"
# (label, URL name, whether the run's id follows the campaign's)
PAGES = (
    ("status partial", "campaigns:status", False),
    ("campaign report", "campaigns:report", False),
    ("run report", "campaigns:run_report", True),
)
SLOWEST_SHOWN = 3


def page_urls(campaign_id: int, run_id: int, only: tuple[str, ...] | None = None) -> tuple[dict[str, str], list[str]]:
    """The URL of each page (of those named in `only`), and a note for each page whose URL does not resolve (not built
    yet)."""
    urls, notes = {}, []
    for label, name, with_run in PAGES:
        if only is not None and label not in only:
            continue
        try:
            urls[label] = reverse(name, args=[campaign_id, run_id] if with_run else [campaign_id])
        except NoReverseMatch:
            notes.append(f"{label}: the URL name {name!r} does not resolve, not measured")
    return urls, notes


def measure(
    *, campaign_id: int, run_id: int, user, repeat: int, only: tuple[str, ...] | None = None, suffix: str = ""
) -> dict:
    """Median milliseconds of each measure, every turn's, each page's ratio to the count, and each page's queries;
    the pages named in `only` (all by default), their labels followed by `suffix`."""
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    urls, notes = page_urls(campaign_id, run_id, only)
    urls = {f"{label}{suffix}": url for label, url in urls.items()}

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM campaigns_delivery WHERE run_id = %s", [run_id])
            return cursor.fetchone()[0]

    measures: dict[str, Callable] = {COUNT: count}
    for label, url in urls.items():
        problem = _refusal(client, url)
        if problem:
            notes.append(f"{label} ({url}): {problem}, not measured")
        else:
            measures[label] = lambda url=url: client.get(url)
    for measured in measures.values():  # the warm-up round
        measured()
    turns: dict[str, list[float]] = {label: [] for label in measures}
    labels = list(measures)
    for turn in range(repeat):
        # The order turns too, so that a moment of load on the machine falls on each alike.
        for label in labels[turn % len(labels) :] + labels[: turn % len(labels)]:
            started = time.perf_counter()
            measures[label]()
            turns[label].append((time.perf_counter() - started) * 1000)
    medians = {label: statistics.median(times) for label, times in turns.items()}
    return {
        "run_id": run_id,
        "rows_counted": count(),
        "urls": urls,
        "medians_ms": medians,
        "turns_ms": turns,
        "ratios": {label: medians[label] / medians[COUNT] for label in medians if label != COUNT},
        "queries": {label: _queries(client, urls[label]) for label in medians if label != COUNT},
        "notes": notes,
    }


def _refusal(client: Client, url: str) -> str | None:
    try:
        response = client.get(url)
    except Exception as error:  # noqa: BLE001 - a page under construction may fail: say so, measure the rest
        return f"raised {type(error).__name__}: {error}"
    if response.status_code != 200:
        return f"answered {response.status_code}"
    return None


def _queries(client: Client, url: str) -> dict:
    """One more request, its SQL recorded: how many statements, their time, the slowest."""
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    timed = sorted(((float(query["time"]) * 1000, query["sql"]) for query in captured.captured_queries), reverse=True)
    return {
        "count": len(timed),
        "total_ms": sum(ms for ms, _ in timed),
        "slowest": [{"ms": ms, "sql": sql[:400]} for ms, sql in timed[:SLOWEST_SHOWN]],
    }


def merged(first: dict, second: dict) -> dict:
    """The pages measured in `second` (the same data in another state) added to `first`'s measures: the count shown
    stays the first's, and each page's ratio is to the count measured in its own turns."""
    pages_of_second = [label for label in second["medians_ms"] if label != COUNT]
    combined = dict(first)
    for key in ("medians_ms", "turns_ms"):
        combined[key] = {**first[key], **{label: second[key][label] for label in pages_of_second}}
    for key in ("ratios", "queries", "urls"):
        combined[key] = {**first[key], **second[key]}
    combined["notes"] = first["notes"] + second["notes"]
    return combined


def print_sets(write, sets: list[dict], *, goal: float) -> None:
    """The measures of each set (one run, then with past runs) side by side, with the ratios to the count and the
    growth from the first set to the last."""
    if not sets:
        return
    labels = list(sets[0]["medians_ms"])
    heads = [f"{s['runs']} run{'s' if s['runs'] > 1 else ''}, {s['deliveries']:,} deliveries" for s in sets]
    write(f"{'':<30}" + "".join(f"{head:>48}" for head in heads) + (f"{'growth':>10}" if len(sets) > 1 else ""))
    for label in labels:
        cells = []
        for measured in sets:
            ms = measured["medians_ms"].get(label)
            if ms is None:
                cells.append(f"{'-':>48}")
                continue
            turns = "/".join(f"{t:.0f}" for t in measured["turns_ms"][label])
            ratio = "" if label == COUNT else f" = {measured['ratios'][label]:.2f}x"
            cells.append(f"{f'{ms:.1f} ms{ratio} [{turns}]':>48}")
        growth = ""
        first, last = sets[0]["medians_ms"].get(label), sets[-1]["medians_ms"].get(label)
        if len(sets) > 1 and first and last:
            growth = f"{last / first:>9.2f}x"
        write(f"{label:<30}" + "".join(cells) + growth)
    write(
        f"goal: each page <= {goal:g}x the count of the run (its server time, median), and flat as past runs are added "
        "(growth ~1.0x); each turn's figure in brackets"
    )
    for label in labels[1:]:
        verdicts = []
        for measured in sets:
            ratio = measured["ratios"].get(label)
            if ratio is not None:
                verdicts.append(f"{ratio:.2f}x {'met' if ratio <= goal else 'NOT met'}")
        write(f"  {label}: {' | '.join(verdicts)}")
    write("SQL of one request of each page (queries, their time in PostgreSQL, the slowest):")
    for measured in sets:
        for label, queries in measured["queries"].items():
            slowest = "; ".join(f"{q['ms']:.1f} ms {q['sql'][:120]}" for q in queries["slowest"])
            write(
                f"  {measured['runs']} run(s), {label}: {queries['count']} queries, {queries['total_ms']:.1f} ms; "
                f"slowest: {slowest}"
            )
    for measured in sets:
        for note in measured["notes"]:
            write(f"  note ({measured['runs']} run(s)): {note}")
