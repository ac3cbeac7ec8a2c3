"""webapp.charts: tick choice and chart geometry, and the _charts.html macros drawing it."""

import datetime

import pytest
from jinja2 import Environment, FileSystemLoader

from webapp import charts

D = datetime.date


@pytest.mark.parametrize(
    "hi, expected",
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),  # 10 / 4 = 2.5 is not a whole step below 10: 5
        (1000, [0, 250, 500, 750, 1000]),
        (1001, [0, 500, 1000, 1500]),  # 250.25 a step: the next nice step up
        (123456, [0, 50000, 100000, 150000]),
    ],
)
def test_nice_ticks_whole_steps(hi, expected):
    assert charts.nice_ticks(hi) == expected


def test_nice_ticks_fractions():
    assert charts.nice_ticks(0.37, integer=False) == [0, 0.1, 0.2, 0.3, 0.4]
    assert charts.nice_ticks(1.0, integer=False) == [0, 0.25, 0.5, 0.75, 1.0]
    assert charts.nice_ticks(3, integer=False) == [0, 1, 2, 3]
    # all zero (no revenue in the range): one whole unit, not 0.25, 0.5, … shown as 0.00
    assert charts.nice_ticks(0, integer=False) == charts.nice_ticks(0) == [0, 1]


def test_line_chart_shared_axis_positions_and_titles():
    chart = charts.line_chart(
        [
            ("VIP", [(D(2024, 5, 13), 50), (D(2024, 5, 6), 100)]),  # given out of order
            ("New", [(D(2024, 5, 6), 0), (D(2024, 5, 13), None), (D(2024, 5, 20), 25)]),
        ],
        width=600,
        height=200,
    )
    assert [label for _y, label in chart.y_ticks] == ["0", "25", "50", "75", "100"]
    top, bottom = chart.top, chart.bottom
    assert chart.y_ticks[0][0] == bottom and chart.y_ticks[-1][0] == top
    # x: three dates spread from the left edge to the right edge, a day is a day
    xs = {label: x for x, label, _a in chart.x_ticks}
    assert xs["2024-05-06"] == chart.left and xs["2024-05-20"] == chart.right
    assert xs["2024-05-13"] == pytest.approx((chart.left + chart.right) / 2)
    vip, new = chart.series
    assert (vip.css, new.css) == ("series-0", "series-1")
    # sorted by date: 100 at the left, 50 in the middle (half way down the plot)
    assert vip.lines == [f"{chart.left:.1f},{top:.1f} {xs['2024-05-13']:.1f},{(top + bottom) / 2:.1f}"]
    # None is a gap: two runs of one point each, no line through the missing week
    assert len(new.lines) == 2
    assert [title for _x, _y, title in new.dots] == ["New · 2024-05-06: 0", "New · 2024-05-20: 25"]
    assert chart.legend == [("series-0", "VIP"), ("series-1", "New")]


def test_line_chart_labels_and_palette_cycle():
    series = [(f"s{n}", [(D(2024, 1, 1), n * 1050)]) for n in range(10)]
    chart = charts.line_chart(series, value_label=lambda cents: f"{cents / 100:,.2f}")
    assert chart.series[8].css == "series-0" and chart.series[9].css == "series-1"
    assert chart.y_ticks[-1][1] == "100.00"  # 9450 cents → ticks of 25.00 up to 100.00
    assert chart.series[9].dots[0][2] == "s9 · 2024-01-01: 94.50"
    # one date: centred
    assert chart.x_ticks[0][0] == pytest.approx((chart.left + chart.right) / 2)


def test_line_chart_thins_date_ticks_and_dots():
    days = [D(2024, 1, 1) + datetime.timedelta(days=n) for n in range(90)]
    chart = charts.line_chart([("a", [(d, n) for n, d in enumerate(days)])], width=600, max_dots=60)
    labels = [label for _x, label, _a in chart.x_ticks]
    assert 2 <= len(labels) < 10 and labels[0] == "2024-01-01"
    gaps = {days.index(D.fromisoformat(b)) - days.index(D.fromisoformat(a)) for a, b in zip(labels, labels[1:])}
    assert len(gaps) == 1  # every n-th date
    assert chart.series[0].dots == []  # 90 points > max_dots
    assert charts.line_chart([("a", [])]) is None


def test_size_chart_times_in_zone_with_area():
    at = datetime.datetime(2024, 3, 1, 22, 0)  # naive UTC
    chart = charts.size_chart(
        [(at, 10), (at + datetime.timedelta(days=10), 30)], tz=datetime.timezone(datetime.timedelta(hours=3))
    )
    (series,) = chart.series
    assert series.name == "" and chart.legend == []
    assert series.area.startswith(f"{chart.left:.1f},{chart.bottom:.1f} ")
    assert [t for _x, _y, t in series.dots] == ["2024-03-02 01:00: 10", "2024-03-12 01:00: 30"]
    assert chart.x_ticks[0][1] == "2024-03-02" and chart.x_ticks[-1][1] == "2024-03-12"
    assert charts.size_chart([]) is None


def test_bar_chart_geometry_links_and_labels():
    bars = [
        charts.Bar("Champions of the month", 40, href="/a?x=1&y=2", index=2),
        charts.Bar("Lost", 0, index=3),
        charts.Bar("New", 10),
    ]
    chart = charts.bar_chart(bars, width=400, height=200)
    assert [t for _y, t in chart.y_ticks] == ["0", "10", "20", "30", "40"]
    first, lost, new = chart.bars
    plot = chart.bottom - chart.top
    assert first.h == pytest.approx(plot, abs=0.1) and lost.h == 0 and new.h == pytest.approx(plot / 4, abs=0.1)
    assert first.y + first.h == pytest.approx(chart.bottom, abs=0.1)
    assert (first.css, lost.css, new.css) == ("series-2", "series-3", "series-0")
    assert first.href == "/a?x=1&y=2" and lost.href is None
    assert first.title == "Champions of the month: 40"
    slot = (chart.right - chart.left) / 3
    assert first.slot_w == pytest.approx(slot, abs=0.1) and new.slot_x == pytest.approx(chart.left + 2 * slot, abs=0.1)
    # the long name is shortened to its column, the tooltip keeps it whole
    assert first.label.endswith("…") and len(first.label) * charts.CHAR_WIDTH <= slot
    assert lost.label == "Lost"
    assert charts.bar_chart([]) is None


def test_bar_chart_labels_every_nth_when_crowded():
    bars = [charts.Bar((D(2024, 1, 1) + datetime.timedelta(days=n)).isoformat(), n) for n in range(90)]
    chart = charts.bar_chart(bars, width=1160)
    shown = [n for n, b in enumerate(chart.bars) if b.label]
    step = shown[1] - shown[0]
    assert step > 1 and shown == list(range(0, 90, step))
    assert all(b.title for b in chart.bars)


def _env():
    env = Environment(loader=FileSystemLoader("templates"), autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_null_translations(newstyle=True)
    return env


def test_macros_draw_series_legend_and_linked_bars():
    env = _env()
    line = charts.line_chart([("<VIP>", [(D(2024, 1, 1), 1), (D(2024, 1, 8), 2)]), ("B", [(D(2024, 1, 1), 3)])])
    html = env.from_string(
        '{% from "_charts.html" import line_chart %}{{ line_chart(c, "Size & co", css="x") }}'
    ).render(c=line)
    assert '<svg class="x chart line-chart"' in html and 'role="img"' in html and 'aria-label="Size &amp; co"' in html
    assert html.count('<g class="series series-0">') == 1 and html.count("<polyline") == 2
    assert html.count("<circle") == 3 and "<title>&lt;VIP&gt; · 2024-01-08: 2</title>" in html
    assert '<span class="swatch series-1" aria-hidden="true"></span>B' in html and "&lt;VIP&gt;" in html
    bar = charts.bar_chart([charts.Bar("a", 1, href="/e?day=1&x=2"), charts.Bar("b", 2)])
    html = env.from_string('{% from "_charts.html" import bar_chart %}{{ bar_chart(c, "Per day") }}').render(c=bar)
    assert html.count("<a ") == 1 and 'href="/e?day=1&amp;x=2"' in html
    assert html.count('class="bar"') == 2 and html.count('class="bar-hit"') == 1
    assert "<title>b: 2</title>" in html
