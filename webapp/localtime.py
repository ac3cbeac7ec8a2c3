"""Days of the account time zone (the TZ setting) against naive UTC instants.

Everything is stored in naive UTC; people think in local days. A local day is
[day_start(day), day_start(day + 1)) in UTC, which is 23 or 25 hours long on
the days clocks change. To group rows by local day in SQL, group them by
`quarter_hours(column)` (quarter-hours since 1970: every zone's offset is a
multiple of 15 minutes, so no bucket straddles two local days) and fold the
buckets into days with `day_of_quarter()`: exact on both databases and
whatever the offset was at the time, unlike shifting by today's offset.
Flask-free.
"""

import datetime
import zoneinfo

import peewee as pw

from .db import is_postgres

UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def zone(tz, strict=False):
    """The zone named `tz` (a tzinfo passes through; none: UTC). An unknown
    name is UTC, or with `strict` a ValueError."""
    if isinstance(tz, datetime.tzinfo):
        return tz
    try:
        return zoneinfo.ZoneInfo(tz or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if strict:
            raise ValueError(f"unknown time zone {tz!r}") from None
        return UTC


def day_start(day, tz):
    """Naive UTC instant at which the local date `day` starts in `tz`."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zone(tz))
    return start.astimezone(UTC).replace(tzinfo=None)


def day_bounds(day, tz):
    """Naive UTC [start, end) of the local date `day` in `tz`."""
    return day_start(day, tz), day_start(day + datetime.timedelta(days=1), tz)


def today(tz, now=None):
    """The local date in `tz` at `now` (aware; default: now)."""
    return (now or datetime.datetime.now(UTC)).astimezone(zone(tz)).date()


def quarter_hours(column):
    """SQL: quarter-hours since 1970 of a naive UTC datetime column (whole
    seconds, no floating point, so an instant on a bucket's edge stays in it)."""
    if is_postgres():
        return pw.Cast(pw.fn.floor(pw.fn.date_part("epoch", column) / 900), "BIGINT")
    return pw.Cast(pw.fn.strftime("%s", column), "INTEGER") / 900


def day_of_quarter(quarter, tz):
    """The local date in `tz` of a `quarter_hours()` bucket."""
    return (_EPOCH + datetime.timedelta(minutes=15 * int(quarter))).astimezone(zone(tz)).date()
