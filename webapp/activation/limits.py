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
one's rows: no interleaving lets a customer past the cap. A channel with no
cap logs its messages all the same (no lock needed), so a cap set later counts
what was sent before it. A claimed message that is not sent after all gives its
`contact_log` row back (`release()`). Rows older than any cap can count are
deleted hourly (`prune_contact_log()`).

The caps, quiet hours and the global control group's share are the account's
limits (`account_limits()`): saved on the Campaign limits page (table
`account_setting`), else the environment variables of the same names.
"""

import datetime
import time
import zoneinfo

from .. import settings
from ..db import database, is_postgres
from ..i18n import _, ngettext
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


def global_percent(values=None):
    """The global control group's share (0 when off)."""
    return parse_percent((values or account_limits())["GLOBAL_CONTROL_PERCENT"]) or 0


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


# --- the account's limits ---------------------------------------------------------

# The account-wide limits: an admin's saved value (table `account_setting`,
# the Campaign limits page or the API) wins over the environment variable of the
# same name, which applies until one is saved. Read from the database at every
# decision (one primary-key read per claimed batch): a change reaches every web
# process and worker at its next send, with no restart and no cache to expire.
ACCOUNT_LIMITS = (
    "FREQUENCY_CAP_EMAIL",
    "FREQUENCY_CAP_SMS",
    "QUIET_HOURS_EMAIL",
    "QUIET_HOURS_SMS",
    "GLOBAL_CONTROL_PERCENT",
)
CAP_NAMES = {"email": "FREQUENCY_CAP_EMAIL", "sms": "FREQUENCY_CAP_SMS"}
QUIET_NAMES = {"email": "QUIET_HOURS_EMAIL", "sms": "QUIET_HOURS_SMS"}
MAX_CAP_MESSAGES = 1000
MAX_CAP_DAYS = 365


def environment_limits():
    """The limits as the environment sets them (text, the variables' formats)."""
    return {name: "" if getattr(settings, name) is None else str(getattr(settings, name)) for name in ACCOUNT_LIMITS}


def account_limits():
    """The limits in force, as text in the variables' formats ("2/7",
    "21:00-09:00", "10"): saved values over the environment's."""
    from ..models import AccountSetting

    values = environment_limits()
    values.update(
        AccountSetting.select(AccountSetting.name, AccountSetting.value)
        .where(AccountSetting.name.in_(ACCOUNT_LIMITS))
        .tuples()
    )
    return values


def parse_cap(raw):
    """(messages, days) from "2/7", or None (empty or not a cap)."""
    try:
        count, days = (int(v) for v in (raw or "").replace(" ", "").split("/"))
    except ValueError:
        return None
    return (count, days) if count >= 0 and days > 0 else None


def parse_quiet(raw):
    """(start, end) datetime.time from "21:00-09:00", or None."""
    try:
        start, end = (datetime.time.fromisoformat(v.strip()) for v in (raw or "").split("-"))
    except ValueError:
        return None
    return (start, end) if start != end else None


def parse_percent(raw):
    try:
        return min(max(int(str(raw or "0").strip() or 0), 0), MAX_HOLDOUT)
    except ValueError:
        return None


def cap(channel, values=None):
    """(messages, days) of the channel's frequency cap, or None."""
    return parse_cap((values or account_limits())[CAP_NAMES.get(channel, "FREQUENCY_CAP_SMS")])


def quiet_hours(channel, values=None):
    """(start, end) datetime.time of the channel's quiet hours, or None."""
    return parse_quiet((values or account_limits())[QUIET_NAMES.get(channel, "QUIET_HOURS_SMS")])


def longest_window(values=None):
    """Days of the longest frequency cap in force (0 without caps)."""
    values = values or account_limits()
    return max((limit[1] for channel in CAP_NAMES if (limit := cap(channel, values))), default=0)


def describe(channel, values=None):
    """The channel's cap and quiet hours as sentences, for the pages."""
    values = values or account_limits()
    out = []
    if limit := cap(channel, values):
        out.append(
            _(
                "At most %(messages)s in %(days)s per customer.",
                messages=ngettext("%(num)s message", "%(num)s messages", limit[0]),
                days=ngettext("%(num)s day", "%(num)s days", limit[1]),
            )
        )
    if window := quiet_hours(channel, values):
        out.append(
            _(
                "Quiet hours %(start)s–%(end)s in the customer's time zone.",
                start=window[0].strftime("%H:%M"),
                end=window[1].strftime("%H:%M"),
            )
        )
    return out


# --- saving the account's limits (the Campaign limits page, the API) -------------

CHANNEL_FIELDS = ("cap_messages", "cap_days", "quiet_start", "quiet_end")
LIMIT_FIELDS = tuple(f"{c}_{f}" for c in CAP_NAMES for f in CHANNEL_FIELDS) + ("global_control_percent",)


class LimitsError(ValueError):
    """Bad limits: `errors` maps a field of LIMIT_FIELDS to messages naming it."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


def limit_fields(values=None):
    """The limits in force as the page's and the API's fields (text; "" for none)."""
    values = values or account_limits()
    out = {}
    for channel in CAP_NAMES:
        limit, window = cap(channel, values), quiet_hours(channel, values)
        out[f"{channel}_cap_messages"] = str(limit[0]) if limit else ""
        out[f"{channel}_cap_days"] = str(limit[1]) if limit else ""
        out[f"{channel}_quiet_start"] = window[0].strftime("%H:%M") if window else ""
        out[f"{channel}_quiet_end"] = window[1].strftime("%H:%M") if window else ""
    out["global_control_percent"] = str(global_percent(values))
    return out


def _text(value):
    return "" if value is None else str(value).strip()


def _bounded(text, low, high):
    try:
        number = int(text)
    except ValueError:
        return None
    return number if low <= number <= high else None


def clean_account_limits(data):
    """The limits from form or API data (the LIMIT_FIELDS; a channel's cap and
    quiet hours are both empty for none) as {variable name: text}. Raises
    LimitsError with a message per field that names it."""
    errors = {}
    out = {}
    labels = {
        "email": (_("Email frequency cap"), _("Email quiet hours")),
        "sms": (_("SMS frequency cap"), _("SMS quiet hours")),
    }
    for channel, (cap_label, quiet_label) in labels.items():
        out[CAP_NAMES[channel]] = _clean_cap(data, channel, cap_label, errors)
        out[QUIET_NAMES[channel]] = _clean_quiet(data, channel, quiet_label, errors)
    percent = _clean_global_percent(data, errors)
    if percent is not None:
        out["GLOBAL_CONTROL_PERCENT"] = percent
    if errors:
        raise LimitsError(errors)
    return out


def _clean_cap(data, channel, label, errors):
    """A channel's frequency cap as "messages/days", "" for none; a problem goes to `errors`."""
    messages, days = _text(data.get(f"{channel}_cap_messages")), _text(data.get(f"{channel}_cap_days"))
    if not (messages or days):
        return ""
    if not (messages and days):
        field = f"{channel}_cap_days" if messages else f"{channel}_cap_messages"
        errors[field] = [
            _(
                "%(what)s: enter both the number of messages and the days (for example 2 in 7 days), "
                "or leave both empty for no cap.",
                what=label,
            )
        ]
        return ""
    count = _bounded(messages, 1, MAX_CAP_MESSAGES)
    if count is None:
        errors[f"{channel}_cap_messages"] = [
            _(
                "%(what)s: the number of messages is a whole number from 1 to %(max)s, not “%(text)s”.",
                what=label,
                max=MAX_CAP_MESSAGES,
                text=messages,
            )
        ]
        return ""
    span = _bounded(days, 1, MAX_CAP_DAYS)
    if span is None:
        errors[f"{channel}_cap_days"] = [
            _(
                "%(what)s: the days are a whole number from 1 to %(max)s, not “%(text)s”.",
                what=label,
                max=MAX_CAP_DAYS,
                text=days,
            )
        ]
        return ""
    return f"{count}/{span}"


def _clean_quiet(data, channel, label, errors):
    """A channel's quiet hours as "HH:MM-HH:MM", "" for none; problems go to `errors`."""
    texts = {side: _text(data.get(f"{channel}_quiet_{side}")) for side in ("start", "end")}
    if not any(texts.values()):
        return ""
    times = {side: _time_of_day(text, f"{channel}_quiet_{side}", label, errors) for side, text in texts.items()}
    if any(f"{channel}_quiet_{side}" in errors for side in texts):
        return ""
    if not all(texts.values()):
        field = f"{channel}_quiet_end" if texts["start"] else f"{channel}_quiet_start"
        errors[field] = [
            _(
                "%(what)s: enter both the start and the end (for example 21:00–09:00), or leave both empty for none.",
                what=label,
            )
        ]
        return ""
    start, end = (times[side].replace(second=0, microsecond=0) for side in ("start", "end"))
    if start == end:
        errors[f"{channel}_quiet_end"] = [
            _(
                "%(what)s: the start and the end are the same time; leave both empty for none.",
                what=label,
            )
        ]
        return ""
    return f"{start:%H:%M}-{end:%H:%M}"


def _time_of_day(text, field, label, errors):
    """The datetime.time of "HH:MM" (None for ""); a problem goes to `errors[field]`."""
    try:
        return datetime.time.fromisoformat(text) if text else None
    except ValueError:
        errors[field] = [
            _(
                "%(what)s: “%(text)s” is not a time of day; use HH:MM (for example 21:00–09:00).",
                what=label,
                text=text,
            )
        ]
        return None


def _clean_global_percent(data, errors):
    """The global control group's share as text, or None with a problem in `errors`."""
    share = _text(data.get("global_control_percent")) or "0"
    percent = _bounded(share, 0, MAX_HOLDOUT)
    if percent is None:
        errors["global_control_percent"] = [
            _(
                "%(what)s: a whole percentage from 0 to %(max)s, not “%(text)s”.",
                what=_("Global control group"),
                max=MAX_HOLDOUT,
                text=share,
            )
        ]
        return None
    return str(percent)


def save_account_limits(data, user=None, now=None):
    """Check and store the limits (all of them: from now on they win over the
    environment); audit-logged; the global control group's system segment
    follows a changed share at once. Returns the limits in force. Raises LimitsError."""
    from ..audit import service as audit
    from ..models import AccountSetting

    values = clean_account_limits(data)
    before = account_limits()
    now = now or utcnow()
    user_id = getattr(user, "id", user)
    with database.atomic():
        for name, value in values.items():
            AccountSetting.insert(name=name, value=value, updated_at=now, updated_by=user_id).on_conflict(
                conflict_target=[AccountSetting.name],
                update={
                    AccountSetting.value: value,
                    AccountSetting.updated_at: now,
                    AccountSetting.updated_by: user_id,
                },
            ).execute()
    changed = {name: [before[name], value] for name, value in values.items() if before[name] != value}
    audit.record(user, "settings.limits", None, {"changed": changed})
    if global_percent(before) != global_percent(values):
        sync_global_control(now, values)
    # `values` names every limit: what is now in force, without reading it back.
    return values


def saved_at():
    """(when, by whom) the limits were last saved, or None while the environment's apply."""
    from ..models import AccountSetting

    row = (
        AccountSetting.select()
        .where(AccountSetting.name.in_(ACCOUNT_LIMITS))
        .order_by(AccountSetting.updated_at.desc())
        .first()
    )
    return (row.updated_at, row.updated_by) if row else None


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
    values = account_limits()
    window = quiet_hours(mailing.channel, values)
    if window:
        rows = _wait_quiet(rows, now, window)
    limit = cap(mailing.channel, values)
    if limit and rows:
        rows = _cap(mailing.channel, rows, now, limit)
    elif rows:
        # Logged without a cap too: a cap set later counts what was sent before it.
        _log(mailing.channel, rows, now)
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
    _log(channel, ready, now)
    return ready


def _log(channel, rows, now):
    """Record the claimed messages [(recipient id, customer id)] a cap counts."""
    if rows:
        p = param()
        row = f"({p}, {p}, {p}, {p})"
        database.execute_sql(
            "INSERT INTO contact_log (customer_id, channel, at, recipient_id) VALUES " + ", ".join([row] * len(rows)),
            [v for r, c in rows for v in (c, channel, bind(now), r)],
        )


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


def sync_global_control(now=None, values=None):
    """Keep the system segment "Global control group" equal to the customers the
    hash puts in it (the share in force, `global_percent(values)`; empty when off).
    Set-based and idempotent; returns its size. Run hourly by the tick job and at
    once when an admin changes the share."""
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
    share = [seed("global", 0)] * uses + [global_percent(values) * 100]
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


# --- keeping contact_log small ---------------------------------------------------

# Rows older than the longest cap in force count no more. A margin is kept (and
# at least a month) so that a cap widened later still sees recent history.
PRUNE_MARGIN_DAYS = 7
PRUNE_MIN_DAYS = 30


def prune_contact_log(now=None):
    """Delete the `contact_log` rows no cap can count any more (older than the
    longest cap window plus a margin). Idempotent; returns the rows deleted."""
    now = now or utcnow()
    keep = max(longest_window(), PRUNE_MIN_DAYS) + PRUNE_MARGIN_DAYS
    return database.execute_sql(
        f"DELETE FROM contact_log WHERE at < {param()}", [bind(now - datetime.timedelta(days=keep))]
    ).rowcount
