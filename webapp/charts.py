"""Inline SVG charts: the geometry, computed here (no Flask); templates/_charts.html draws it.

Two charts and a sparkline, all with a y axis from 0 (values are counts, sizes,
money in cents, shares: never negative) up to a "nice" tick.

Line chart: several series over time on one shared y axis::

    from webapp import charts
    chart = charts.line_chart(
        [("VIP", [(date(2024, 5, 6), 120), (date(2024, 5, 13), 131)]),
         ("New", [(date(2024, 5, 6), 40), (date(2024, 5, 13), None)])],   # None: a gap
        value_label=lambda v: f"{v:,}")
    {% from "_charts.html" import line_chart %}
    {{ line_chart(chart, _("Size by week")) }}

  x values are `datetime.date`s (labelled as given, by `x_label`, default
  YYYY-MM-DD; every distinct date gets a tick while they fit, then every n-th)
  or naive UTC `datetime`s (five evenly spaced ticks, in the time zone `tz`).
  Series n is drawn with the CSS class `series-{n % PALETTE}` (colours in
  static/app.css), gets a legend entry, and one dot per point with a <title>
  "name · x: value" (up to `max_dots` points per series). `area=True` fills
  under a single series (the segment page's size chart).

Bar chart: one bar per label, optionally a link per bar::

    chart = charts.bar_chart([charts.Bar("05-01", 12, href="/events/3?day=2024-05-01"), ...],
                             value_label=lambda v: f"{v:,}")
    {% from "_charts.html" import bar_chart %}
    {{ bar_chart(chart, _("Occurrences per day")) }}

  `Bar(label, value, href=None, index=None, title=None)`: `index` colours the
  bar like line series `index` (so a bar per segment matches that segment's
  line); `title` replaces the tooltip "label: value". Labels that do not fit
  their bar are shortened (the full label stays in the tooltip), and when the
  bars are too narrow only every n-th is labelled.

`value_label` formats y ticks and tooltips (e.g. cents as money); geometry is
in SVG user units of a `width` × `height` viewBox, drawn at 100% width, so pick
`width` close to the space the chart gets on the page to keep text at its size.
"""

import datetime
import math
from dataclasses import dataclass, field

from . import formats

PALETTE = 8  # classes series-0 … series-7 in static/app.css
CHAR_WIDTH = 6.6  # an 11px tick label's average character width, for fitting labels


def _plain(value):
    return formats.thousands(value) if isinstance(value, int) else formats.fixed(value, 2)


def nice_ticks(hi, count=4, integer=True):
    """0, step, 2·step, … up to the first tick at or above `hi`; steps are 1, 2, 2.5 or 5 × 10^n.

    `integer=True` keeps steps whole (no 2.5 below 10, nothing below 1), for counts.
    """
    if not hi or hi <= 0:
        return [0, 1]  # nothing above zero: one whole step, not fractions of a unit
    raw = hi / count
    if integer:
        raw = max(raw, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer and magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = int(step)
    ticks = [0]
    while ticks[-1] < hi * (1 - 1e-9):
        ticks.append(round(ticks[-1] + step, 10) if not integer else ticks[-1] + step)
    return ticks


def sparkline(sizes, width=96, height=24, pad=2):
    """SVG polyline points for a sparkline of sizes, oldest first (empty when fewer than 2)."""
    if len(sizes) < 2:
        return ""
    lo, hi = min(sizes), max(sizes)
    span = (hi - lo) or 1
    step = (width - 2 * pad) / (len(sizes) - 1)
    coords = []
    for n, size in enumerate(sizes):
        x = pad + n * step
        y = height - pad - (size - lo) / span * (height - 2 * pad) if hi != lo else height / 2
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


@dataclass
class Series:
    index: int
    name: str
    css: str
    lines: list  # polyline "x,y x,y" strings, one per run of points without a gap
    area: str  # polygon points under the line (area charts), else ""
    dots: list  # (x, y, title)


@dataclass
class LineChart:
    width: int
    height: int
    left: float
    right: float  # x of the plot's right edge
    top: float
    bottom: float  # y of the plot's bottom edge (the 0 line)
    y_ticks: list  # (y, label)
    x_ticks: list  # (x, label, anchor)
    series: list = field(default_factory=list)

    @property
    def legend(self):
        """Legend entries (css, name): none for a single unnamed series."""
        return [(s.css, s.name) for s in self.series if s.name]


def _y_axis(values, value_label, integer, top, plot_h):
    ticks = nice_ticks(max(values, default=0), integer=integer)
    hi = ticks[-1]

    def y(v):
        return top + plot_h - v / hi * plot_h

    labels = [value_label(t) for t in ticks]
    return y, [(y(t), text) for t, text in zip(ticks, labels)], labels


def _left_margin(labels):
    return max(40, round(10 + CHAR_WIDTH * max((len(t) for t in labels), default=1)))


def text_of(x, timed, tz, x_label):
    """The label of an x value: a local time, or the date as `x_label` writes it (ISO by default)."""
    if timed:
        local = (x.replace(tzinfo=datetime.UTC) if x.tzinfo is None else x).astimezone(tz)
        return formats.local_time(local.replace(tzinfo=None), "datetime", tz="UTC")
    return x_label(x) if x_label else formats.date(x)


def line_chart(
    series,
    *,
    width=1160,
    height=240,
    value_label=_plain,
    integer=None,
    x_label=None,
    tz=None,
    area=False,
    max_dots=60,
    max_x_ticks=None,
):
    """A LineChart of `series`: [(name, [(x, value or None), …]), …]; None when there is no point at all.

    See the module docstring. `integer` (default: every value is an int) keeps y steps whole;
    `tz` is the zone of datetime labels (default UTC).
    """
    series = [(name, sorted(points, key=lambda p: p[0])) for name, points in series]
    values = [v for _n, points in series for _x, v in points if v is not None]
    xs = sorted({x for _n, points in series for x, _v in points})
    if not xs:
        return None
    if integer is None:
        integer = all(isinstance(v, int) for v in values)
    timed = isinstance(xs[0], datetime.datetime)
    tz = tz or datetime.UTC
    top, bottom_pad = 10, 26
    plot_h = height - top - bottom_pad
    y, y_ticks, labels = _y_axis(values, value_label, integer, top, plot_h)
    left = _left_margin(labels)
    # date ticks are centred on their point: room for half the last label on the right
    right_pad = 16 if timed else max(16, round(CHAR_WIDTH * len(text_of(xs[-1], timed, tz, x_label)) / 2) + 4)
    right = width - right_pad

    def number(x):
        if timed:
            return x.replace(tzinfo=datetime.UTC).timestamp() if x.tzinfo is None else x.timestamp()
        return x.toordinal()

    def text(x):
        return text_of(x, timed, tz, x_label)

    n0, n1 = number(xs[0]), number(xs[-1])
    if n1 == n0:  # one instant: centre it
        half = 43200 if timed else 1
        n0, n1 = n0 - half, n1 + half

    def x_of(x):
        return left + (number(x) - n0) / (n1 - n0) * (right - left)

    x_ticks = []
    if timed:
        style = "date" if n1 - n0 > 3 * 86400 else "datetime"
        for k in range(5):
            t = n0 + (n1 - n0) * k / 4
            local = datetime.datetime.fromtimestamp(t, tz).replace(tzinfo=None)
            label = formats.local_time(local, style, tz="UTC")
            if not x_ticks or x_ticks[-1][1] != label:
                x_ticks.append((left + (right - left) * k / 4, label))
    else:
        longest = max(len(text(x)) for x in xs)
        fit = max_x_ticks or max(2, int((right - left) // (CHAR_WIDTH * longest + 14)))
        every = math.ceil(len(xs) / fit)
        x_ticks = [(x_of(x), text(x)) for x in xs[::every]]
    if timed:  # evenly spaced over the plot: the first and last align with its edges
        x_ticks = [
            (x, label, "start" if x - left < 30 else ("end" if right - x < 30 else "middle")) for x, label in x_ticks
        ]
    else:
        x_ticks = [(x, label, "middle") for x, label in x_ticks]

    chart = LineChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=top + plot_h,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )
    for index, (name, points) in enumerate(series):
        runs, run, dots = [], [], []
        for x, v in points:
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append((x_of(x), y(v)))
            if len(points) <= max_dots:
                dots.append(
                    (x_of(x), y(v), f"{name} · {text(x)}: {value_label(v)}" if name else f"{text(x)}: {value_label(v)}")
                )
        if run:
            runs.append(run)
        lines = [" ".join(f"{a:.1f},{b:.1f}" for a, b in r) for r in runs]
        shade = ""
        if area and runs:
            coords = [c for r in runs for c in r]
            shade = (
                f"{coords[0][0]:.1f},{chart.bottom:.1f} "
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
                + f" {coords[-1][0]:.1f},{chart.bottom:.1f}"
            )
        chart.series.append(
            Series(index=index, name=name, css=f"series-{index % PALETTE}", lines=lines, area=shade, dots=dots)
        )
    return chart


def size_chart(points, tz=None, width=1160, height=220):
    """The segment page's size chart: one unnamed area series of (naive UTC at, size) points."""
    if not points:
        return None
    return line_chart([("", points)], width=width, height=height, tz=tz, area=True, integer=True)


@dataclass
class Bar:
    label: str
    value: float
    href: str = None
    index: int = None  # colour as line series `index`
    title: str = None


@dataclass
class PlacedBar:
    x: float
    y: float
    w: float
    h: float
    label: str  # shown under the bar ("" when thinned out)
    label_x: float
    slot_x: float  # the bar's whole column: the click target of a linked bar
    slot_w: float
    title: str
    href: str
    css: str


@dataclass
class BarChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    y_ticks: list  # (y, label)
    bars: list


def _shorten(label, chars):
    if len(label) <= chars:
        return label
    return label[: max(1, chars - 1)] + "…"


def bar_chart(bars, *, width=1160, height=240, value_label=_plain, integer=None):
    """A BarChart of `bars` (Bar items, drawn in order); None when there are none."""
    bars = list(bars)
    if not bars:
        return None
    values = [b.value or 0 for b in bars]
    if integer is None:
        integer = all(isinstance(v, int) for v in values)
    top, bottom_pad, right_pad = 10, 26, 16
    plot_h = height - top - bottom_pad
    y, y_ticks, labels = _y_axis(values, value_label, integer, top, plot_h)
    left = _left_margin(labels)
    right = width - right_pad
    slot = (right - left) / len(bars)
    bar_w = max(1.0, slot * (0.7 if slot > 8 else 0.9))
    # label every n-th bar so that labels of up to 12 characters never overlap; longer ones are shortened
    widest = max(len(b.label) for b in bars)
    fit_chars = max(5, min(widest, 12))
    every = max(1, math.ceil((CHAR_WIDTH * fit_chars + 10) / slot))
    chars = max(5, int((slot * every - 10) // CHAR_WIDTH))
    placed = []
    for n, (bar, value) in enumerate(zip(bars, values)):
        x = left + n * slot + (slot - bar_w) / 2
        y_top = y(value)
        placed.append(
            PlacedBar(
                x=round(x, 1),
                y=round(y_top, 1),
                w=round(bar_w, 1),
                h=round(top + plot_h - y_top, 1),
                label=_shorten(bar.label, chars) if n % every == 0 else "",
                label_x=round(x + bar_w / 2, 1),
                slot_x=round(left + n * slot, 1),
                slot_w=round(slot, 1),
                title=bar.title or f"{bar.label}: {value_label(value)}",
                href=bar.href,
                css=f"series-{bar.index % PALETTE}" if bar.index is not None else "series-0",
            )
        )
    return BarChart(
        width=width, height=height, left=left, right=right, top=top, bottom=top + plot_h, y_ticks=y_ticks, bars=placed
    )


@dataclass
class Venn:
    width: int
    height: int
    circles: list  # (cx, cy, r, css, name, name_x, name_y)
    labels: list  # (x, y, text, title): one per region, its customers


# Where each region's count goes, as multiples of the radius from the centre,
# by region mask (bit i: inside circle i); the circles' centres likewise.
_VENN_LAYOUT = {
    2: ([(-0.55, 0), (0.55, 0)], {1: (-1.0, 0), 2: (1.0, 0), 3: (0, 0)}),
    3: (
        [(-0.5, -0.35), (0.5, -0.35), (0, 0.5)],
        {
            1: (-0.95, -0.6),
            2: (0.95, -0.6),
            4: (0, 1.05),
            3: (0, -0.65),
            5: (-0.55, 0.35),
            6: (0.55, 0.35),
            7: (0, -0.05),
        },
    ),
}


def venn(names, regions, *, value_label=_plain, width=560, height=360):
    """A Venn picture of 2 or 3 sets (None for other counts): equal circles in
    the classic layout, each region labelled with `regions[mask]` (bit i: in
    set i), so the numbers carry the sizes, not the areas."""
    layout = _VENN_LAYOUT.get(len(names))
    if layout is None:
        return None
    centres, spots = layout
    r = min(width, height) * (0.30 if len(names) == 2 else 0.27)
    ox, oy = width / 2, height / 2 + (12 if len(names) == 3 else 10)
    circles = []
    for n, ((dx, dy), name) in enumerate(zip(centres, names)):
        cx, cy = ox + dx * r, oy + dy * r
        name_y = cy - r - 8 if n < 2 else cy + r + 18
        if len(names) == 3 and n == 2:
            name_y = min(height - 4, name_y)
        circles.append(
            (round(cx, 1), round(cy, 1), round(r, 1), f"series-{n % PALETTE}", name, round(cx, 1), round(name_y, 1))
        )
    labels = []
    for mask, (dx, dy) in spots.items():
        inside = " ∩ ".join(names[i] for i in range(len(names)) if mask >> i & 1)
        value = regions.get(mask, 0)
        labels.append(
            (round(ox + dx * r, 1), round(oy + dy * r + 4, 1), value_label(value), f"{inside}: {value_label(value)}")
        )
    return Venn(width=width, height=height, circles=circles, labels=labels)
