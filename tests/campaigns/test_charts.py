"""The report charts (campaigns.charts): inline SVG that parses as XML, names itself for screen readers, tells its
series apart without colour, keeps user labels inert and stays small on long timelines. No database needed."""

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from django.utils.safestring import SafeString

from campaigns.charts import NO_DATA, Series, bar_chart, nice_ticks, timeline_chart, trend_chart

SVG = "http://www.w3.org/2000/svg"
NS = {"svg": SVG}
HOSTILE = '<script>alert(1)</script>&"'
START = datetime(2025, 12, 3, 14, 5)


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def minutes(count: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(count)]


def texts(root: ET.Element, group_class: str) -> list[str]:
    group = root.find(f".//svg:g[@class='{group_class}']", NS)
    return ["".join(text.itertext()) for text in group.iterfind("svg:text", NS)]


def series_groups(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//svg:g[@class='chart-series']", NS)


def all_ids(root: ET.Element) -> list[str]:
    return [element.get("id") for element in root.iter() if element.get("id")]


def engagement(count: int) -> list[Series]:
    names = ["Sent", "Delivered", "Opened", "Clicked", "Bounced"]
    return [Series(name, [(i * (k + 3)) % 97 for i in range(count)]) for k, name in enumerate(names)]


def every_chart(title: str = "Chart") -> list[str]:
    return [
        timeline_chart(title=title, buckets=minutes(10), series=engagement(10)),
        trend_chart(title=title, labels=["1 Dec", "8 Dec"], series=[Series("Open rate", [20.5, 22])]),
        bar_chart(title=title, rows=[("example.com", [3, 1])], series_names=["Sent", "Opened"]),
        timeline_chart(title=title, buckets=[], series=[]),
    ]


@pytest.mark.parametrize("index", range(4))
def test_every_chart_is_an_image_named_by_its_title_and_described(index):
    chart = every_chart("Sends & engagement")[index]
    root = parse(chart)

    assert isinstance(chart, SafeString)  # goes into a template as it is
    assert root.tag == f"{{{SVG}}}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+ \d+(\.\d)?", root.get("viewBox"))
    title_id, desc_id = root.get("aria-labelledby").split()
    elements = {element.get("id"): element for element in root.iter() if element.get("id")}
    assert elements[title_id].tag == f"{{{SVG}}}title" and elements[title_id].text == "Sends & engagement"
    assert elements[desc_id].tag == f"{{{SVG}}}desc" and elements[desc_id].text
    assert len(all_ids(root)) == len(set(all_ids(root)))


@pytest.mark.parametrize("index", range(4))
def test_charts_follow_the_page_font_and_colour_and_need_no_script_style_or_resource(index):
    markup = str(every_chart()[index])
    root = parse(markup)

    assert root.get("font-family") == "inherit"
    assert root.get("fill") == "currentColor"
    assert all(text.get("fill") in (None, "currentColor") for text in root.iter(f"{{{SVG}}}text"))
    assert not [element for element in root.iter() if element.tag.endswith(("script", "foreignObject", "image"))]
    assert not [value for element in root.iter() for name, value in element.items() if name.startswith("on")]
    # The page's CSP allows no inline style: presentation attributes only.
    assert not [element for element in root.iter() if element.tag.endswith("style") or element.get("style")]
    assert re.findall(r"https?://[^\s\"']*", markup) == [SVG]  # the namespace only: no external resource
    assert all(
        re.fullmatch(r"url\(#[\w-]+\)|none|currentColor|#[0-9a-f]{6}", element.get("fill"))
        for element in root.iter()
        if element.get("fill")
    )


def test_hostile_labels_come_out_as_text_only():
    charts = [
        timeline_chart(title=HOSTILE, buckets=minutes(3), series=[Series(HOSTILE, [1, 2, 3])], unit_label=HOSTILE),
        trend_chart(title="Rates", labels=[HOSTILE, "8 Dec"], series=[Series("Open rate", [1, 2])]),
        bar_chart(title="By domain", rows=[(HOSTILE, [5]), (HOSTILE * 10, [2])], series_names=[HOSTILE]),
    ]
    for chart in charts:
        markup = str(chart)
        assert "<script" not in markup and 'alert(1)</script>&"' not in markup
        root = parse(markup)
        assert not [element for element in root.iter() if element.tag.endswith("script")]
        assert any(HOSTILE[:15] in "".join(element.itertext()) for element in root.iter(f"{{{SVG}}}text"))
        assert HOSTILE in root.find("svg:desc", NS).text


def test_characters_xml_cannot_hold_do_not_break_the_chart():
    chart = bar_chart(title="Domains\x00", rows=[("bad\x07domain\ud800.com", [4])], series_names=["Sent\x1b"])

    root = parse(chart)

    assert [text.text for text in root.iter(f"{{{SVG}}}text") if text.get("class") == "chart-label"] == [
        "bad\ufffddomain\ufffd.com"
    ]


def test_each_series_has_its_own_dash_marker_and_label_at_the_end_of_its_line():
    series = engagement(20)
    root = parse(timeline_chart(title="Sends", buckets=minutes(20), series=series))

    groups = series_groups(root)
    dashes = [group.find("svg:polyline", NS).get("stroke-dasharray") for group in groups]
    markers = [group.get("data-marker") for group in groups]
    marker_shapes = [
        (re.sub(r"M[-\d.]+,[-\d.]+", "M", path.get("d")), path.get("fill"))
        for path in (group.find("svg:path", NS) for group in groups)
    ]
    assert len(set(dashes)) == len(set(markers)) == len(set(marker_shapes)) == len(series)
    assert [group.get("data-series") for group in groups] == [line.name for line in series]
    assert texts(root, "chart-direct-labels") == [line.name for line in series]
    legend = root.find(".//svg:g[@class='chart-legend']", NS)
    swatches = legend.findall("svg:g", NS)
    assert [(swatch.get("data-dash"), swatch.get("data-marker")) for swatch in swatches] == list(
        zip(dashes, markers, strict=True)
    )
    assert [text.text for text in legend.findall("svg:text", NS)] == [line.name for line in series]


def test_direct_labels_of_lines_ending_together_do_not_overlap():
    series = [Series(name, [0, 0, 0]) for name in ("Sent", "Opened", "Clicked", "Bounced")]
    root = parse(timeline_chart(title="Quiet", buckets=minutes(3), series=series))

    group = root.find(".//svg:g[@class='chart-direct-labels']", NS)
    ys = sorted(float(text.get("y")) for text in group.iterfind("svg:text", NS))
    assert all(lower - upper >= 12 for upper, lower in zip(ys, ys[1:], strict=False))


def test_description_names_each_series_with_its_total_and_peak():
    series = [Series("Sent", [100, 300, 600]), Series("Opened", [0, 0, 0])]
    root = parse(timeline_chart(title="Sends", buckets=minutes(3), series=series))

    assert root.find("svg:desc", NS).text == (
        "Messages per minute, from 3 Dec 2025 14:05 to 3 Dec 2025 14:07. Sent: 1,000 total, peak 600 at 14:07; "
        "Opened: 0 total."
    )


def test_trend_description_gives_latest_peak_and_lowest_rates():
    root = parse(
        trend_chart(title="Rates", labels=["1 Dec", "8 Dec", "15 Dec"], series=[Series("Open rate", [23.4, 30, 25])])
    )

    assert root.find("svg:desc", NS).text == (
        "3 occurrences, 1 Dec to 15 Dec. Open rate: latest 25% (15 Dec), peak 30% (8 Dec), lowest 23.4% (1 Dec)."
    )
    assert texts(root, "chart-y-axis") == ["0%", "10%", "20%", "30%"]
    assert texts(root, "chart-x-axis") == ["1 Dec", "8 Dec", "15 Dec"]


@pytest.mark.parametrize(
    "chart",
    [
        lambda: timeline_chart(title="Sends", buckets=[], series=[]),
        lambda: timeline_chart(title="Sends", buckets=minutes(3), series=[]),
        lambda: trend_chart(title="Rates", labels=[], series=[Series("Open rate", [])]),
        lambda: bar_chart(title="Domains", rows=[], series_names=["Sent"]),
    ],
)
def test_no_data_renders_a_frame_saying_so(chart):
    root = parse(chart())

    assert NO_DATA in ["".join(text.itertext()) for text in root.iter(f"{{{SVG}}}text")]
    assert root.find("svg:desc", NS).text == f"{NO_DATA}."
    assert not series_groups(root)


def test_one_bucket_shows_its_point():
    root = parse(timeline_chart(title="Sends", buckets=[START], series=[Series("Sent", [42])]))

    (group,) = series_groups(root)
    assert group.find("svg:path", NS).get("d").count("M") == 1
    assert texts(root, "chart-x-axis") == ["3 Dec 14:05"]
    assert "Sent: 42 total, peak 42 at 3 Dec 14:05" in root.find("svg:desc", NS).text


def test_all_zero_series_sit_on_the_axis():
    root = parse(timeline_chart(title="Sends", buckets=minutes(5), series=[Series("Sent", [0] * 5)]))

    (group,) = series_groups(root)
    points = group.find("svg:polyline", NS).get("points").split()
    assert len({point.split(",")[1] for point in points}) == 1
    assert texts(root, "chart-y-axis") == ["0", "1"]


def test_a_long_timeline_stays_small_with_markers_on_some_points():
    count = 2_000
    series = [Series(line.name, [value * 20_000 for value in line.values]) for line in engagement(count)]

    markup = str(timeline_chart(title="Sends", buckets=minutes(count), series=series))

    assert len(markup.encode()) < 200_000
    root = parse(markup)
    for group in series_groups(root):
        assert len(group.find("svg:polyline", NS).get("points").split()) == count
        assert 10 <= group.find("svg:path", NS).get("d").count("M") <= 60
    assert len(texts(root, "chart-x-axis")) <= 8


def test_nice_ticks_are_round_and_cover_the_data():
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(1_234_567) == [0, 500_000, 1_000_000, 1_500_000]
    assert nice_ticks(1_000) == [0, 250, 500, 750, 1_000]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]  # a count has no fraction
    assert nice_ticks(10) == [0, 5, 10]  # not 2.5 apart
    assert nice_ticks(95, integer=False) == [0, 25, 50, 75, 100]
    assert nice_ticks(0.4, integer=False) == [0, 0.1, 0.2, 0.3, 0.4]


def test_huge_values_are_written_short_on_the_axis():
    root = parse(timeline_chart(title="Sends", buckets=minutes(2), series=[Series("Sent", [1_234_567, 10])]))

    assert texts(root, "chart-y-axis") == ["0", "500k", "1M", "1.5M"]
    assert "Sent: 1,234,577 total, peak 1,234,567 at 14:05" in root.find("svg:desc", NS).text


@pytest.mark.parametrize(
    ("buckets", "labels"),
    [
        (minutes(4), ["14:05", "14:06", "14:07", "14:08"]),
        (
            [datetime(2025, 12, 3, 14) + timedelta(hours=i) for i in range(3)],
            ["3 Dec 14:00", "3 Dec 15:00", "3 Dec 16:00"],
        ),
        ([datetime(2025, 12, 3) + timedelta(days=i) for i in range(3)], ["3 Dec", "4 Dec", "5 Dec"]),
        ([datetime(2025, 12, 31) + timedelta(days=i) for i in range(2)], ["31 Dec 2025", "1 Jan 2026"]),
        (minutes(3, datetime(2025, 12, 3, 23, 59)), ["3 Dec 23:59", "4 Dec 00:00", "4 Dec 00:01"]),
    ],
)
def test_axis_labels_follow_the_spacing_of_buckets(buckets, labels):
    root = parse(timeline_chart(title="Sends", buckets=buckets, series=[Series("Sent", [1] * len(buckets))]))

    assert texts(root, "chart-x-axis") == labels


def test_long_time_axes_are_labelled_on_round_times():
    day_of_minutes = minutes(24 * 60)  # from 14:05
    root = parse(timeline_chart(title="Sends", buckets=day_of_minutes, series=engagement(len(day_of_minutes))))

    assert texts(root, "chart-x-axis") == [
        "3 Dec 16:00",
        "3 Dec 20:00",
        "4 Dec 00:00",
        "4 Dec 04:00",
        "4 Dec 08:00",
        "4 Dec 12:00",
    ]
    days = [datetime(2025, 12, 3) + timedelta(days=i) for i in range(90)]
    root = parse(timeline_chart(title="Sends", buckets=days, series=[Series("Sent", [1] * 90)]))

    assert texts(root, "chart-x-axis")[:3] == ["8 Dec 2025", "22 Dec 2025", "5 Jan 2026"]  # Mondays, two weeks apart


def test_bar_chart_writes_each_value_and_fills_each_series_with_its_own_pattern():
    rows = [("example.com", [1_500, 300, 0]), ("example.org", [20, 5, 1])]
    root = parse(bar_chart(title="By domain", rows=rows, series_names=["Sent", "Opened", "Clicked"]))

    values = [text.text for text in root.iter(f"{{{SVG}}}text") if text.get("class") == "chart-value"]
    assert values == ["1,500", "300", "0", "20", "5", "1"]
    labels = [text.text for text in root.iter(f"{{{SVG}}}text") if text.get("class") == "chart-label"]
    assert labels == ["example.com", "example.org"]
    patterns = {pattern.get("id"): pattern.get("data-pattern") for pattern in root.iter(f"{{{SVG}}}pattern")}
    assert sorted(patterns.values()) == ["dotted", "hatched", "solid"]
    bars = root.findall(".//svg:g[@class='chart-row']/svg:rect", NS)
    assert len(bars) == 5  # a zero draws no bar, only its value
    assert {bar.get("fill")[5:-1] for bar in bars} == set(patterns)
    legend = root.find(".//svg:g[@class='chart-legend']", NS)
    assert [swatch.get("data-pattern") for swatch in legend.findall("svg:rect", NS)] == ["solid", "hatched", "dotted"]
    assert [text.text for text in legend.findall("svg:text", NS)] == ["Sent", "Opened", "Clicked"]
    assert root.find("svg:desc", NS).text == (
        "2 rows. Sent: 1,520 total, highest 1,500 (example.com); Opened: 305 total, highest 300 (example.com); "
        "Clicked: 1 total, highest 1 (example.org)."
    )


def test_a_long_url_is_cut_with_the_whole_of_it_in_a_tooltip():
    url = "https://shop.example.com/collections/winter-sale/products/very-long-product-name?utm_source=newsletter"
    root = parse(bar_chart(title="Top links", rows=[(url, [12]), ("https://a.example/", [3])], series_names=["Clicks"]))

    long_row, short_row = root.findall(".//svg:g[@class='chart-row']", NS)
    shown = long_row.find("svg:text", NS).text
    assert len(shown) == 60 and shown.endswith("…") and url.startswith(shown[:-1])
    assert long_row.find("svg:title", NS).text == url
    assert short_row.find("svg:text", NS).text == "https://a.example/"
    assert short_row.find("svg:title", NS) is None


def test_two_charts_on_one_page_share_no_ids():
    rows = [("example.com", [3, 1])]
    first = parse(bar_chart(title="By domain", rows=rows, series_names=["Sent", "Opened"]))
    second = parse(bar_chart(title="Top links", rows=rows, series_names=["Sent", "Opened"]))

    assert not set(all_ids(first)) & set(all_ids(second))
    for root in (first, second):
        own = set(all_ids(root))
        assert {element.get("fill")[5:-1] for element in root.iter() if "url(" in (element.get("fill") or "")} <= own


def test_the_same_chart_keeps_its_id_and_a_given_id_is_used():
    def chart(**kwargs):
        return timeline_chart(title="Sends", buckets=minutes(2), series=[Series("Sent", [1, 2])], **kwargs)

    assert parse(chart()).get("id") == parse(chart()).get("id")
    assert parse(chart(chart_id="run-7-sends")).get("aria-labelledby") == "run-7-sends-title run-7-sends-desc"
    with pytest.raises(ValueError):
        chart(chart_id='x" onload="alert(1)')


def test_data_that_does_not_line_up_is_refused():
    with pytest.raises(ValueError, match="3 values for 2 points"):
        timeline_chart(title="Sends", buckets=minutes(2), series=[Series("Sent", [1, 2, 3])])
    with pytest.raises(ValueError, match="1 values for 2 series"):
        bar_chart(title="Domains", rows=[("example.com", [1])], series_names=["Sent", "Opened"])
