"""Control groups, frequency caps and quiet hours: who of a mailing's
recipients gets the message, and when.

Control groups. A recipient is held out when a hash of (campaign or trigger,
customer) falls below the share: `bucket()` in Python and `bucket_sql()` in
SQL compute the same number 0-9999 on SQLite and PostgreSQL (64-bit integer
arithmetic that never overflows: two rounds of x -> x*x + c modulo 2^31 - 1),
so a re-run, a retry after a crash or a second worker never moves a customer
between groups. A trigger's steps share the trigger's split. The account-wide
control group (GLOBAL_CONTROL_PERCENT) is the same hash under its own key.
Only reachable recipients are split (consent and address), so both groups
are alike; held-out rows are `held_out` with `sent_at` = when they were held
out, the moment the uplift report counts orders from.

Caps and quiet hours are decided when a sender claims a batch, in the claim's
transaction (`apply()`): rows due inside quiet hours go back to `pending`
with `not_before` = the window's end in the customer's zone; then, for a
capped channel, each customer's `contact_lock` row is locked (PostgreSQL:
FOR UPDATE, in customer order; SQLite has one writer), the `contact_log`
rows in the window are counted, and the rows over the cap become `capped`;
the others get their `contact_log` row before the transaction ends. A second
sender deciding the same customer waits for the lock and then counts this
one's rows: no interleaving lets a customer past the cap. A claimed message
that is not sent after all gives its `contact_log` row back (`release()`).
"""

import datetime
import time
import zoneinfo

from .. import settings
from ..db import database, is_postgres
from ..i18n import _
from ..models import utcnow
from ..sql import bind, escape_percent, param, placeholders

PRIME = 2147483647  # 2^31 - 1: every product below stays under 2^62
BUCKETS = 10_000  # a share in hundredths of a percent
KIND_KEYS = {"campaign": 1, "trigger": 2, "global": 3}
MAX_HOLDOUT = 50


def seed(kind, key_id):
    return (KIND_KEYS[kind] * 1_000_003 + int(key_id) * 7919 + 40503) % PRIME


def bucket(customer_id, seed_):
    x = ((int(customer_id) % PRIME) * 48271 + seed_) % PRIME
    x = (x * x + 12345) % PRIME
    x = (x * x + 67890) % PRIME
    return x % BUCKETS


def bucket_sql(column):
    """SQL for `bucket(column, seed)` with the seed as its one parameter."""
    p, mod = param(), escape_percent("%")
    x = f"((CAST({column} AS BIGINT) {mod} {PRIME}) * 48271 + {p}) {mod} {PRIME}"
    x = f"((({x}) * ({x}) + 12345) {mod} {PRIME})"
    return f"((({x}) * ({x}) + 67890) {mod} {PRIME}) {mod} {BUCKETS}", 4


def global_percent():
    return min(max(int(settings.GLOBAL_CONTROL_PERCENT or 0), 0), MAX_HOLDOUT)


def in_global_control(customer_id):
    return bucket(customer_id, seed("global", 0)) < global_percent() * 100


def hold_out(percent, key, mailing_id, where, args, now):
    """Move the mailing's pending rows matching `where` (SQL on
    `mailing_recipient`, with `args`) that fall in the control groups to
    `held_out`: `percent` % by the hash under `key` (("campaign", mailing id)
    or ("trigger", trigger id)), and the global control group. Run in the
    transaction that inserted them; idempotent (the hash decides)."""
    percent = min(max(int(percent or 0), 0), MAX_HOLDOUT)
    glob = global_percent()
    if not percent and not glob:
        return 0
    p = param()
    expr, uses = bucket_sql("customer_id")
    kind, key_id = key
    held = f"({expr} < {p} OR {expr} < {p})"
    held_args = [seed("global", 0)] * uses + [glob * 100] + [seed(kind, key_id)] * uses + [percent * 100]
    reason = f"CASE WHEN {expr} < {p} THEN 'global_control' ELSE 'control' END"
    return database.execute_sql(
        f"UPDATE mailing_recipient SET status = 'held_out', reason = {reason}, sent_at = {p} "
        f"WHERE mailing_id = {p} AND status = 'pending' AND {where} AND {held}",
        [seed("global", 0)] * uses + [glob * 100, bind(now), mailing_id, *args, *held_args],
    ).rowcount


# --- settings --------------------------------------------------------------------


def cap(channel):
    """(messages, days) of the channel's frequency cap, or None."""
    raw = (settings.FREQUENCY_CAP_EMAIL if channel == "email" else settings.FREQUENCY_CAP_SMS) or ""
    try:
        count, days = (int(v) for v in raw.replace(" ", "").split("/"))
    except ValueError:
        return None
    return (count, days) if count >= 0 and days > 0 else None


def quiet_hours(channel):
    """(start, end) datetime.time of the channel's quiet hours, or None."""
    raw = (settings.QUIET_HOURS_EMAIL if channel == "email" else settings.QUIET_HOURS_SMS) or ""
    try:
        start, end = (datetime.time.fromisoformat(v.strip()) for v in raw.split("-"))
    except ValueError:
        return None
    return (start, end) if start != end else None


def describe(channel):
    """The channel's cap and quiet hours as sentences, for the pages."""
    out = []
    if limit := cap(channel):
        out.append(_("At most %(count)s messages in %(days)s days per customer.", count=limit[0], days=limit[1]))
    if window := quiet_hours(channel):
        out.append(
            _(
                "Quiet hours %(start)s–%(end)s in the customer's time zone.",
                start=window[0].strftime("%H:%M"),
                end=window[1].strftime("%H:%M"),
            )
        )
    return out


# --- quiet hours -----------------------------------------------------------------


def zone(name):
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def quiet_until(now, zone_, window):
    """The naive UTC end of the quiet hours `now` (naive UTC) falls in, in
    `zone_`, or None when `now` is outside them."""
    start, end = window
    local = now.replace(tzinfo=datetime.UTC).astimezone(zone_)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside, day = start <= t < end, local.date()
    else:  # across midnight
        inside = t >= start or t < end
        day = local.date() + datetime.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    until = datetime.datetime.combine(day, end).replace(tzinfo=zone_)
    return until.astimezone(datetime.UTC).replace(tzinfo=None)


def _time_zones(customer_ids):
    ids = sorted(set(customer_ids))
    return dict(
        database.execute_sql(
            f"SELECT id, time_zone FROM customer WHERE id IN ({placeholders(len(ids))}) AND time_zone IS NOT NULL",
            ids,
        ).fetchall()
    )


# --- at claim time ---------------------------------------------------------------


def apply(mailing, rows, now, retaken=()):
    """Of claimed rows [(id, customer_id)], the ones to send now; the others
    are put back to wait for quiet hours' end or marked `capped`. `retaken`:
    ids among them taken over from a sender that stopped. Call inside the
    claim's transaction."""
    if not rows or mailing.transactional:
        return rows
    release(retaken)  # rows taken over from a stopped sender: decided again
    window = quiet_hours(mailing.channel)
    if window:
        rows = _wait_quiet(rows, now, window)
    limit = cap(mailing.channel)
    if limit and rows:
        rows = _cap(mailing.channel, rows, now, limit)
    return rows


def _wait_quiet(rows, now, window):
    zones = _time_zones([c for _r, c in rows])
    account = zone(settings.tz()) or datetime.UTC
    waiting, ready = {}, []
    cache = {}
    for recipient_id, customer_id in rows:
        name = zones.get(customer_id) or ""
        if name not in cache:
            cache[name] = quiet_until(now, zone(name) or account, window)
        until = cache[name]
        if until is None:
            ready.append((recipient_id, customer_id))
        else:
            waiting.setdefault(until, []).append(recipient_id)
    p = param()
    for until, ids in waiting.items():
        database.execute_sql(
            f"UPDATE mailing_recipient SET status = 'pending', claim = NULL, attempts = attempts - 1, "
            f"not_before = {p} WHERE id IN ({placeholders(len(ids))})",
            [bind(until), *ids],
        )
    return ready


def _cap(channel, rows, now, limit):
    count, days = limit
    p = param()
    customers = sorted({c for _r, c in rows})
    marks = placeholders(len(customers))
    if is_postgres():
        # One statement locks every customer's row, in customer order (no
        # deadlock between senders): new rows by the insert, existing ones
        # by the update, which waits for a sender holding one.
        database.execute_sql(
            f"INSERT INTO contact_lock (customer_id, channel) SELECT x, {p} FROM unnest({p}::bigint[]) AS x "
            f"ORDER BY x ON CONFLICT (customer_id, channel) DO UPDATE SET channel = EXCLUDED.channel",
            [channel, customers],
        )
    seen = dict(
        database.execute_sql(
            f"SELECT customer_id, COUNT(*) FROM contact_log WHERE channel = {p} AND at > {p} "
            f"AND customer_id IN ({marks}) GROUP BY customer_id",
            [channel, bind(now - datetime.timedelta(days=days)), *customers],
        ).fetchall()
    )
    if settings.FAULT_PAUSE_IN_CAP:
        time.sleep(settings.FAULT_PAUSE_IN_CAP)
    ready, capped = [], []
    for recipient_id, customer_id in rows:
        if seen.get(customer_id, 0) >= count:
            capped.append(recipient_id)
        else:
            seen[customer_id] = seen.get(customer_id, 0) + 1
            ready.append((recipient_id, customer_id))
    if capped:
        database.execute_sql(
            f"UPDATE mailing_recipient SET status = 'capped', reason = 'frequency_cap', claim = NULL "
            f"WHERE id IN ({placeholders(len(capped))})",
            capped,
        )
    if ready:
        row = f"({p}, {p}, {p}, {p})"
        database.execute_sql(
            "INSERT INTO contact_log (customer_id, channel, at, recipient_id) VALUES " + ", ".join([row] * len(ready)),
            [v for r, c in ready for v in (c, channel, bind(now), r)],
        )
    return ready


def release(recipient_ids):
    """Claimed messages not sent after all no longer count against a cap."""
    ids = list(recipient_ids)
    if ids:
        database.execute_sql(
            f"DELETE FROM contact_log WHERE recipient_id IN ({placeholders(len(ids))})",
            ids,
        )


# --- a mailing's or trigger's settings -------------------------------------------

SETTINGS = ("holdout_percent", "transactional", "priority", "conversion_days")


def _whole(value, default):
    if value is None or str(value).strip() == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def clean_settings(data, errors):
    """The control group share, transactional flag, priority and conversion
    window from form or API data; problems go to `errors` by field."""
    out = {
        "holdout_percent": _whole(data.get("holdout_percent"), 0),
        "transactional": str(data.get("transactional") or "").lower() in ("1", "true", "on", "yes", "y"),
        "priority": _whole(data.get("priority"), 0),
        "conversion_days": _whole(data.get("conversion_days"), 7),
    }
    if data.get("transactional") is True:
        out["transactional"] = True
    if out["holdout_percent"] is None or not 0 <= out["holdout_percent"] <= MAX_HOLDOUT:
        errors.setdefault("holdout_percent", []).append(
            _("The control group is a whole percentage from 0 to %(max)s.", max=MAX_HOLDOUT)
        )
    if out["priority"] is None or not -100 <= out["priority"] <= 100:
        errors.setdefault("priority", []).append(_("The priority is a whole number from -100 to 100."))
    if out["conversion_days"] is None or not 1 <= out["conversion_days"] <= 365:
        errors.setdefault("conversion_days", []).append(_("The conversion window is from 1 to 365 days."))
    return out


# --- the global control group as a system segment --------------------------------

GLOBAL_SEGMENT = "system_global_control"


def sync_global_control(now=None):
    """Keep the system segment "Global control group" equal to the customers the
    hash puts in it (GLOBAL_CONTROL_PERCENT; empty when off). Set-based; returns its size."""
    from ..models import Segment

    now = now or utcnow()
    segment = Segment.get_or_none(Segment.code == GLOBAL_SEGMENT)
    if segment is None:
        segment = Segment.create(
            code=GLOBAL_SEGMENT,
            name="Global control group (gets no campaign or trigger message)",
            type="static",
            source="list",
            system=True,
            active=True,
            definition={"version": 1, "match": "all", "blocks": []},
        )
    p = param()
    expr, uses = bucket_sql("c.id")
    share = [seed("global", 0)] * uses + [global_percent() * 100]
    with database.atomic():
        database.execute_sql(
            f"DELETE FROM segment_member WHERE segment_id = {p} AND customer_id NOT IN "
            f"(SELECT c.id FROM customer c WHERE {expr} < {p})",
            [segment.id, *share],
        )
        database.execute_sql(
            f"INSERT INTO segment_member (segment_id, customer_id, since) SELECT {p}, c.id, {p} FROM customer c "
            f"WHERE {expr} < {p} AND NOT EXISTS (SELECT 1 FROM segment_member m "
            f"WHERE m.segment_id = {p} AND m.customer_id = c.id)",
            [segment.id, bind(now), *share, segment.id],
        )
        size = database.execute_sql(
            f"SELECT COUNT(*) FROM segment_member WHERE segment_id = {p}", [segment.id]
        ).fetchone()[0]
        Segment.update(size=size, computed_at=now, updated_at=now).where(Segment.id == segment.id).execute()
    return size
