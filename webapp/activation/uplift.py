"""The uplift report of a mailing with a control group: did the message make
anyone buy who would not have bought anyway?

Two groups of recipient rows: `sent` (from `sent_at`) and `held_out` (the
control group, from the moment it was held out, also `sent_at`). A recipient
converted when the customer ordered within `conversion_days` after that
moment. Computed in one SQL statement over the real orders: per recipient its
orders and revenue in the window and the day of its first order, then per
group and day. From those sums:

- conversion: the difference of the two shares with a 95 % two-proportion
  (Wald) interval, diff ± 1.96 · sqrt(p1(1-p1)/n1 + p0(1-p0)/n0);
- revenue per recipient: the difference of the means with a 95 % Welch
  interval (unequal variances, Welch-Satterthwaite degrees of freedom);
- average order value per group.

Not enough data yet (ENOUGH_RECIPIENTS, ENOUGH_BUYERS): until each group has
at least 100 recipients and the two together at least 10 buyers, the
normal approximations behind the intervals do not hold; the figures are
shown, the differences are not.
"""

import dataclasses
import datetime
import math

import scipy  # scipy.stats loads on first use: the app starts without it

from ..db import database, is_postgres
from ..sql import param

ENOUGH_RECIPIENTS = 100
ENOUGH_BUYERS = 10
Z95 = 1.959963984540054


@dataclasses.dataclass
class Group:
    recipients: int = 0
    buyers: int = 0
    orders: int = 0
    revenue_cents: int = 0
    revenue_squares: float = 0.0  # sum over recipients of (revenue in cents)^2
    buyers_by_day: dict = dataclasses.field(default_factory=dict)  # day after -> new buyers

    @property
    def conversion(self):
        return self.buyers / self.recipients if self.recipients else None

    @property
    def revenue_per_recipient(self):
        return self.revenue_cents / self.recipients if self.recipients else None

    @property
    def average_order(self):
        return self.revenue_cents / self.orders if self.orders else None

    def revenue_variance(self):
        n = self.recipients
        if n < 2:
            return 0.0
        mean = self.revenue_cents / n
        return max(self.revenue_squares - n * mean * mean, 0.0) / (n - 1)

    def cumulative(self, days):
        """[(day, share of recipients who bought by the end of that day)] for days 1..days."""
        out, total = [], 0
        for day in range(days):
            total += self.buyers_by_day.get(day, 0)
            out.append((day + 1, total / self.recipients if self.recipients else 0.0))
        return out


@dataclasses.dataclass
class Uplift:
    days: int
    sent: Group
    control: Group

    @property
    def enough(self):
        return (
            min(self.sent.recipients, self.control.recipients) >= ENOUGH_RECIPIENTS
            and self.sent.buyers + self.control.buyers >= ENOUGH_BUYERS
        )

    @property
    def conversion_diff(self):
        """(difference, low, high) of the conversion shares (sent - control), or None."""
        a, b = self.sent, self.control
        if not a.recipients or not b.recipients:
            return None
        p1, p0 = a.conversion, b.conversion
        se = math.sqrt(p1 * (1 - p1) / a.recipients + p0 * (1 - p0) / b.recipients)
        diff = p1 - p0
        return diff, diff - Z95 * se, diff + Z95 * se

    @property
    def revenue_diff(self):
        """(difference, low, high) of revenue per recipient in cents (Welch), or None."""
        a, b = self.sent, self.control
        if a.recipients < 2 or b.recipients < 2:
            return None
        va, vb = a.revenue_variance() / a.recipients, b.revenue_variance() / b.recipients
        diff = a.revenue_per_recipient - b.revenue_per_recipient
        if va + vb == 0:
            return diff, diff, diff
        df = (va + vb) ** 2 / (va**2 / (a.recipients - 1) + vb**2 / (b.recipients - 1))
        half = scipy.stats.t.ppf(0.975, df) * math.sqrt(va + vb)
        return diff, diff - half, diff + half


def _window_end(p):
    if is_postgres():
        return f"r.sent_at + ({p} * INTERVAL '1 day')"
    return f"strftime('%Y-%m-%d %H:%M:%f', r.sent_at, '+' || {p} || ' days')"


def _first_day():
    if is_postgres():
        return "FLOOR(EXTRACT(EPOCH FROM (MIN(o.ordered_at) - r.sent_at)) / 86400)"
    return "CAST(julianday(MIN(o.ordered_at)) - julianday(r.sent_at) AS INTEGER)"


def has_control(mailing_id):
    p = param()
    return bool(
        database.execute_sql(
            f"SELECT 1 FROM mailing_recipient WHERE mailing_id = {p} AND status = 'held_out' LIMIT 1", (mailing_id,)
        ).fetchone()
    )


def report(mailing_id, days=7):
    """The Uplift of a mailing over `days` after each send or hold-out."""
    p = param()
    rows = database.execute_sql(
        f"SELECT status, first_day, COUNT(*), SUM(CASE WHEN orders > 0 THEN 1 ELSE 0 END), SUM(orders), "
        f"SUM(revenue), SUM(revenue * 1.0 * revenue) FROM ("
        f"SELECT r.id, r.status, COUNT(o.id) AS orders, COALESCE(SUM(o.total_cents), 0) AS revenue, "
        f"{_first_day()} AS first_day FROM mailing_recipient r "
        f"LEFT JOIN orders o ON o.customer_id = r.customer_id AND o.ordered_at > r.sent_at "
        f"AND o.ordered_at <= {_window_end(p)} "
        f"WHERE r.mailing_id = {p} AND r.status IN ('sent', 'held_out') AND r.sent_at IS NOT NULL "
        f"GROUP BY r.id, r.status) per_recipient GROUP BY status, first_day",
        (int(days), mailing_id),
    ).fetchall()
    groups = {"sent": Group(), "held_out": Group()}
    for status, first_day, n, buyers, orders, revenue, squares in rows:
        g = groups[status]
        g.recipients += n
        g.buyers += int(buyers or 0)
        g.orders += int(orders or 0)
        g.revenue_cents += int(revenue or 0)
        g.revenue_squares += float(squares or 0)
        if first_day is not None:
            day = min(max(int(first_day), 0), days - 1)
            g.buyers_by_day[day] = g.buyers_by_day.get(day, 0) + int(buyers or 0)
    return Uplift(days=int(days), sent=groups["sent"], control=groups["held_out"])


def chart_points(uplift, names):
    """Series for `charts.line_chart`: cumulative conversion (percent) by day
    after the message, one per group; x values are dates standing for days
    (`day_date`), labelled by the caller."""
    return [
        (name, [(day_date(day), round(100 * share, 2)) for day, share in group.cumulative(uplift.days)])
        for name, group in zip(names, (uplift.sent, uplift.control), strict=True)
    ]


EPOCH = datetime.date(2000, 1, 1)


def day_date(day):
    return EPOCH + datetime.timedelta(days=day)


def day_of(date):
    return (date - EPOCH).days
