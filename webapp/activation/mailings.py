"""Mailings: campaigns to a segment's members, and the messages of trigger steps.

Exactly one message per recipient, however workers die:

1. Recipients are materialised when the campaign starts, set-based in SQL:
   INSERT ... SELECT from `segment_member` joined to `customer`, one
   `mailing_recipient` row per member, `pending`, or `skipped` with the
   reason (no consent for the channel, no address). The insert is (on SQLite
   chunked by customer id and) idempotent (unique mailing + customer + execution, ON
   CONFLICT DO NOTHING); the mailing moves from `queued` to `sending` after
   the last chunk, so a start that dies is simply run again.
2. Senders (MAILING_SENDERS jobs on any workers) claim batches: one UPDATE
   moves pending rows to `sending` with a fresh claim token (PostgreSQL: FOR
   UPDATE SKIP LOCKED, so senders never wait on each other). Rows left in
   `sending` by a sender that stopped for MAILING_LEASE_SECONDS are claimed
   again by the next sender.
3. Email over SMTP goes out in groups through `delivery.SmtpGroup`: each
   message's content is on the wire, then ONE transaction marks the group
   `sent` - only rows this claim still holds - with their `sent` message
   events, and only then does each connection get the final "." that makes
   the server accept. Dying before that commit leaves the server with
   unfinished messages it discards: the rows are claimed and sent again.
   Dying after the "."s are written, the messages are accepted (the kernel
   still delivers a killed process's socket buffers) and the rows say sent.
   The one window left is between the commit and writing the "."s - a loop
   of 5-byte writes, microseconds - where a death loses (never repeats) the
   group's messages: at most once there, exactly once everywhere else,
   where "commit after the server's 250" would repeat a whole group's
   messages whenever a worker dies waiting for the server's replies.
   A sender that lost its claim to another
   (a stall longer than the lease) finds its rows not marked and closes
   those connections without the ".". Each message carries a Message-ID
   stable per recipient, so even a repeat from outside (a relay retrying)
   is recognisable.
4. To the outbox (no SMTP / no SMS gateway), the outbox rows are written in
   the marking transaction: exactly once.
5. SMS through a gateway: HTTP has no "final dot". A sender posts a group
   of SMS_CONCURRENCY messages at once (`delivery.SmsGateway`: kept-alive
   connections, one request on each), then ONE transaction marks the ones
   the gateway took as sent. Every request carries an Idempotency-Key stable
   per recipient (`segmento-<mailing>-<recipient>`), so a gateway that
   honours it drops the repeats a crash between its answers and our commit
   can cause: at most the group in flight, SMS_CONCURRENCY messages (with one
   request at a time it was one message; set SMS_CONCURRENCY=1 for a gateway
   that does not honour the key and where that matters more than speed).

Consent is checked again when a message is rendered: a customer who
unsubscribed while a long mailing ran is skipped.

Control groups, frequency caps and quiet hours (`limits`): the control group
is held out when recipients are materialised; caps and quiet hours are
decided in each claim's transaction.
"""

import datetime
import logging
import time
import uuid
from collections import defaultdict

import peewee as pw

from .. import settings
from ..audit import service as audit
from ..db import database, is_postgres
from ..engine import entities_read
from ..i18n import _, ngettext
from ..models import (
    CHANNELS,
    RECIPIENT_STATUSES,
    Customer,
    Mailing,
    MailingRecipient,
    MessageEvent,
    OutboxEmail,
    OutboxSms,
    Segment,
    utcnow,
)
from ..segments import changes
from ..sql import bind, param, placeholders, skip_locked
from ..text import fold
from . import delivery, limits
from .recipients import recipient_case
from .templating import NAME_VARIABLES, MessageTemplate, TemplateProblem, check, contexts_for, without_name

log = logging.getLogger(__name__)

BATCH = 200  # rows a sender claims at once
MAX_ATTEMPTS = 5
# Customer ids per materialising statement: SQLite has one writer, so a
# chunk holds the write lock for a second, not for the whole million;
# PostgreSQL writes concurrently and a single statement is faster.
SQLITE_CHUNK = 100_000
SKIP_REASONS = {
    "no_consent": lambda: _("No consent for this channel"),
    "no_address": lambda: _("No address"),
    "bounced": lambda: _("The address bounced"),
    "cancelled": lambda: _("Mailing cancelled"),
    "control": lambda: _("Control group of this mailing"),
    "global_control": lambda: _("Global control group"),
    "frequency_cap": lambda: _("Over the frequency cap"),
}


class MailingError(ValueError):
    """Problems with a mailing's form: {field: [messages]}."""

    def __init__(self, errors):
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


def reason_label(reason):
    label = SKIP_REASONS.get(reason)
    return label() if label else reason


# --- the form ------------------------------------------------------------------


def clean(data, *, mailing=None):
    """Validated fields from a dict (name, channel, segment_id, subject, body)."""
    errors = {}
    name = " ".join((data.get("name") or "").split())[:200]
    channel = data.get("channel") or "email"
    subject = (data.get("subject") or "").strip()[:500]
    body = (data.get("body") or "").replace("\x00", "")
    if not name:
        errors.setdefault("name", []).append(_("Give the mailing a name."))
    else:
        taken = Mailing.select().where(Mailing.name_ci == fold(name))
        if mailing is not None:
            taken = taken.where(Mailing.id != mailing.id)
        if taken.exists():
            errors.setdefault("name", []).append(_("A mailing with this name exists."))
    if channel not in CHANNELS:
        errors.setdefault("channel", []).append(_("Choose email or SMS."))
    segment = None
    if "segment_id" in data:
        try:
            segment = Segment.get_or_none(Segment.id == int(data.get("segment_id") or 0))
        except (TypeError, ValueError):
            segment = None
        if segment is None:
            errors.setdefault("segment_id", []).append(_("Choose a segment."))
    if channel == "email":
        if not subject:
            errors.setdefault("subject", []).append(_("An email needs a subject."))
        elif problem := check(subject):
            errors.setdefault("subject", []).append(problem)
    if not body.strip():
        errors.setdefault("body", []).append(_("Write the message."))
    elif problem := check(body, html_body=channel == "email"):
        errors.setdefault("body", []).append(problem)
    extra = limits.clean_settings(data, errors)
    if errors:
        raise MailingError(errors)
    return {
        "name": name,
        "channel": channel,
        "subject": subject if channel == "email" else None,
        "body": body,
        "segment": segment,
        **extra,
    }


def create_campaign(data, *, user=None):
    fields = clean(data)
    now = utcnow()
    mailing = Mailing.create(kind="campaign", status="draft", created_by=user, updated_at=now, **fields)
    audit.record(user, "mailing.create", mailing)
    return mailing


def update_campaign(mailing, data):
    if mailing.status not in ("draft", "scheduled"):
        raise MailingError({"name": [_("A mailing that has started cannot be changed.")]})
    fields = clean(data, mailing=mailing)
    for key, value in fields.items():
        setattr(mailing, key, value)
    mailing.updated_at = utcnow()
    mailing.save()
    audit.record(None, "mailing.update", mailing)
    return mailing


def is_editable(mailing):
    return mailing.kind == "campaign" and mailing.status in ("draft", "scheduled")


# --- audience ------------------------------------------------------------------


def audience(segment_id, channel):
    """{"members", "pending" (would be sent), "no_consent", "no_address", "bounced"} now."""
    status, reason = recipient_case(channel)
    p = param()
    rows = database.execute_sql(
        f"SELECT {reason} AS r, COUNT(*) FROM segment_member m JOIN customer c ON c.id = m.customer_id "
        f"WHERE m.segment_id = {p} GROUP BY r",
        (segment_id,),
    ).fetchall()
    out = {"members": 0, "pending": 0, "no_consent": 0, "no_address": 0, "bounced": 0}
    for reason_, count in rows:
        out["members"] += count
        out[reason_ or "pending"] += count
    return out


# --- starting, scheduling, cancelling ----------------------------------------


def send_now(mailing):
    """Mark the campaign `queued` for its start job (recipients, then senders). Returns it.

    Its start job is queued here through `queueing`, which queues jobs by
    name: this module does not import the jobs, which import it.
    """
    if not is_editable(mailing) or mailing.segment_id is None:
        raise MailingError({"segment_id": [_("This mailing cannot be sent.")]})
    (
        Mailing.update(status="queued", scheduled_at=None, updated_at=utcnow())
        .where(Mailing.id == mailing.id, Mailing.status.in_(("draft", "scheduled")))
        .execute()
    )
    from .queueing import ensure_start

    audit.record(None, "mailing.send", mailing)
    ensure_start(mailing.id)
    return Mailing.get_by_id(mailing.id)


def schedule(mailing, at):
    """Send at `at` (naive UTC), which must be in the future."""
    if not is_editable(mailing) or mailing.segment_id is None:
        raise MailingError({"scheduled_at": [_("This mailing cannot be scheduled.")]})
    if at <= utcnow():
        raise MailingError({"scheduled_at": [_("Choose a time in the future.")]})
    (
        Mailing.update(status="scheduled", scheduled_at=at, updated_at=utcnow())
        .where(Mailing.id == mailing.id, Mailing.status.in_(("draft", "scheduled")))
        .execute()
    )
    audit.record(None, "mailing.schedule", mailing, {"at": at})
    return Mailing.get_by_id(mailing.id)


def unschedule(mailing):
    (
        Mailing.update(status="draft", scheduled_at=None, updated_at=utcnow())
        .where(Mailing.id == mailing.id, Mailing.status == "scheduled")
        .execute()
    )
    audit.record(None, "mailing.unschedule", mailing)
    return Mailing.get_by_id(mailing.id)


def due_scheduled(now=None):
    """Move scheduled campaigns whose time has come to `queued`; their ids."""
    now = now or utcnow()
    ids = [
        m
        for (m,) in Mailing.select(Mailing.id)
        .where(Mailing.kind == "campaign", Mailing.status == "scheduled", Mailing.scheduled_at <= now)
        .tuples()
    ]
    started = []
    for mailing_id in ids:
        if (
            Mailing.update(status="queued", updated_at=now)
            .where(Mailing.id == mailing_id, Mailing.status == "scheduled")
            .execute()
        ):
            started.append(mailing_id)
    return started


def cancel(mailing):
    """Stop a queued or sending campaign: recipients not yet sent are skipped."""
    with database.atomic():
        changed = (
            Mailing.update(status="cancelled", finished_at=utcnow(), updated_at=utcnow())
            .where(
                Mailing.id == mailing.id,
                Mailing.kind == "campaign",
                Mailing.status.in_(("queued", "sending", "scheduled")),
            )
            .execute()
        )
        if changed:
            audit.record(None, "mailing.cancel", mailing)
            (
                MailingRecipient.update(status="skipped", reason="cancelled")
                .where(MailingRecipient.mailing == mailing.id, MailingRecipient.status == "pending")
                .execute()
            )
    return Mailing.get_by_id(mailing.id)


def materialise(mailing_id):
    """The start job's work: recipients from the segment's members now, then
    `sending`. Idempotent; returns the number of recipient rows, or None if
    the mailing is not waiting to start."""
    mailing = Mailing.get_or_none(Mailing.id == mailing_id)
    if mailing is None or mailing.kind != "campaign" or mailing.status != "queued":
        return None
    p = param()
    status, reason = recipient_case(mailing.channel)
    segment_id = mailing.segment_id
    if segment_id is not None:
        low, high = database.execute_sql(
            f"SELECT MIN(customer_id), MAX(customer_id) FROM segment_member WHERE segment_id = {p}", (segment_id,)
        ).fetchone()
        if low is not None:
            chunk = high - low + 1 if is_postgres() else SQLITE_CHUNK
            for start in range(low - 1, high, chunk):
                with database.atomic():
                    if Mailing.get_by_id(mailing_id).status != "queued":
                        return None  # cancelled meanwhile
                    database.execute_sql(
                        f"INSERT INTO mailing_recipient (mailing_id, customer_id, execution_id, status, reason, "
                        f"attempts) SELECT {p}, c.id, 0, {status}, {reason}, 0 "
                        f"FROM segment_member m JOIN customer c ON c.id = m.customer_id "
                        f"WHERE m.segment_id = {p} AND m.customer_id > {p} AND m.customer_id <= {p} "
                        f"AND c.id > {p} AND c.id <= {p} ON CONFLICT DO NOTHING",  # both ranges: index seeks
                        (mailing_id, segment_id, start, start + chunk, start, start + chunk),
                    )
                    limits.hold_out(
                        mailing.holdout_percent,
                        ("campaign", mailing_id),
                        mailing_id,
                        f"customer_id > {p} AND customer_id <= {p} AND execution_id = 0",
                        [start, start + chunk],
                        utcnow(),
                    )
    now = utcnow()
    (
        Mailing.update(status="sending", started_at=now, updated_at=now)
        .where(Mailing.id == mailing_id, Mailing.status == "queued")
        .execute()
    )
    return MailingRecipient.select().where(MailingRecipient.mailing == mailing_id).count()


def has_work(mailing_id):
    return (
        MailingRecipient.select()
        .where(MailingRecipient.mailing == mailing_id, MailingRecipient.status.in_(("pending", "sending")))
        .exists()
    )


def has_due_work(mailing_id, now=None):
    """Work a sender can do now: not only messages waiting for quiet hours to end."""
    r = MailingRecipient
    due = (r.status == "sending") | (
        (r.status == "pending") & (r.not_before.is_null() | (r.not_before <= (now or utcnow())))
    )
    return r.select().where(r.mailing == mailing_id, due).exists()


def waiting(mailing_id, now=None):
    """(messages waiting for quiet hours to end, the last of their times) now."""
    r = MailingRecipient
    n, until = (
        r.select(pw.fn.COUNT(r.id), pw.fn.MAX(r.not_before))
        .where(r.mailing == mailing_id, r.status == "pending", r.not_before > (now or utcnow()))
        .tuples()
        .get()
    )
    if isinstance(until, str):
        until = datetime.datetime.fromisoformat(until)
    return n or 0, until


def finish_if_done(mailing_id):
    """Mark a sending campaign sent when no recipient is pending or in flight."""
    if has_work(mailing_id):
        return False
    now = utcnow()
    return bool(
        Mailing.update(status="sent", finished_at=now, updated_at=now)
        .where(Mailing.id == mailing_id, Mailing.kind == "campaign", Mailing.status == "sending")
        .execute()
    )


# --- sending -------------------------------------------------------------------


def claim(mailing_id, token, limit=BATCH, *, now=None, mailing=None):
    """Claim up to `limit` rows of the mailing to send now: [(id, customer_id)].

    Rows inside quiet hours or over a cap are set aside in the same
    transaction (`limits.apply`); a batch that they empty is followed by the
    next one, so [] means nothing is left to claim now."""
    now = now or utcnow()
    mailing = mailing or Mailing.get_by_id(mailing_id)
    while True:
        claimed, rows = _claim(mailing, token, limit, now)
        if rows or not claimed:
            return rows


def _claim(mailing, token, limit, now):
    mailing_id = mailing.id
    stale = now - datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS)
    p = param()
    lock = skip_locked()
    rows = []
    with database.atomic():
        # Rows whose sender stopped: give up on ones that keep failing, take over the rest.
        database.execute_sql(
            f"UPDATE mailing_recipient SET status = 'failed', reason = {p} WHERE id IN (SELECT id FROM "
            f"mailing_recipient WHERE mailing_id = {p} AND status = 'sending' AND claimed_at < {p} "
            f"AND attempts >= {p}{lock})",
            (
                ngettext("Gave up after %(num)s attempt.", "Gave up after %(num)s attempts.", MAX_ATTEMPTS),
                mailing_id,
                bind(stale),
                MAX_ATTEMPTS,
            ),
        )
        retaken = []
        for condition, args in (
            (f"status = 'sending' AND claimed_at < {p}", [bind(stale)]),
            (f"status = 'pending' AND (not_before IS NULL OR not_before <= {p})", [bind(now)]),
        ):
            if len(rows) >= limit:
                break
            cursor = database.execute_sql(
                f"UPDATE mailing_recipient SET status = 'sending', claim = {p}, claimed_at = {p}, "
                f"attempts = attempts + 1 WHERE id IN (SELECT id FROM mailing_recipient "
                f"WHERE mailing_id = {p} AND {condition} LIMIT {p}{lock}) RETURNING id, customer_id",
                [token, bind(now), mailing_id, *args, limit - len(rows)],
            )
            found = cursor.fetchall()
            if condition.startswith("status = 'sending'"):
                retaken = [r for r, _c in found]
            rows.extend(found)
        ready = limits.apply(mailing, rows, now, retaken)
        if ready:
            # The lease starts when the claim is decided, not when it was asked for: waiting
            # for the write lock and the cap's per-customer locks can take longer than the
            # lease, and rows stamped with the earlier time would look abandoned to the next
            # sender while this one sends them.
            database.execute_sql(
                f"UPDATE mailing_recipient SET claimed_at = {p} WHERE id IN ({placeholders(len(ready))})",
                [bind(utcnow()), *(r for r, _c in ready)],
            )
        return bool(rows), ready


def _settle(ids, token, **fields):
    """Set `fields` (and no claim) on the rows of `ids` this claim still holds, and
    give their places under the caps back; returns those rows' ids.

    Only those: a row another sender took over (this one stalled past the lease)
    is that sender's now, and its `contact_log` row, written by that sender's
    claim, is what keeps the customer under the cap while it sends. Releasing
    it here let a third campaign's sender pass the cap (a customer got two).
    """
    if not ids:
        return []
    with database.atomic():
        held = [
            r
            for (r,) in MailingRecipient.update(claim=None, **fields)
            .where(MailingRecipient.id.in_(ids), MailingRecipient.claim == token)
            .returning(MailingRecipient.id)
            .tuples()
            .execute()
        ]
        limits.release(held)
    return held


def _mark(ids, token, status, reason=None):
    _settle(ids, token, status=status, reason=reason and str(reason)[:250])


def segments_read_messages():
    """Whether an active dynamic segment has a message block: only then do
    sent messages mark their customers changed for the real-time update (a
    large mailing would otherwise queue every recipient for a re-check that
    cannot change anything; scheduled runs see the events anyway)."""
    return any(
        "message" in entities_read(definition)
        for (definition,) in Segment.evaluated().select(Segment.definition).tuples()
    )


def _mark_sent(mailing, token, group, now, outbox=None, mark=True):
    """In one transaction: rows of `group` [(recipient id, customer id, address, rendered)]
    still held by `token` become sent, with their message events (and outbox
    rows). Returns the recipient ids marked."""
    if not group:
        return set()
    p = param()
    ids = [g[0] for g in group]
    if is_postgres() and not outbox and not mark:
        # One statement (PostgreSQL's data-modifying WITH), so one round trip
        # instead of BEGIN, UPDATE, INSERT, COMMIT: on a busy machine each
        # round trip waits for the server's process to be scheduled.
        return {
            row[0]
            for row in database.execute_sql(
                f"WITH sent AS (UPDATE mailing_recipient SET status = 'sent', sent_at = {p}, reason = NULL "
                f"WHERE id IN ({placeholders(len(ids))}) AND claim = {p} AND status = 'sending' "
                f"RETURNING id, customer_id), event AS (INSERT INTO message_event (customer_id, channel, kind, "
                f"mailing_id, occurred_at) SELECT customer_id, {p}, 'sent', {p}, {p} FROM sent) SELECT id FROM sent",
                [now, *ids, token, mailing.channel, mailing.id, now],
            ).fetchall()
        }
    with database.atomic():
        marked = {
            row[0]
            for row in database.execute_sql(
                f"UPDATE mailing_recipient SET status = 'sent', sent_at = {p}, reason = NULL "
                f"WHERE id IN ({placeholders(len(ids))}) AND claim = {p} AND status = 'sending' RETURNING id",
                [bind(now), *ids, token],
            ).fetchall()
        }
        done = [g for g in group if g[0] in marked]
        if done:
            row = f"({p}, {p}, 'sent', {p}, {p})"
            database.execute_sql(
                "INSERT INTO message_event (customer_id, channel, kind, mailing_id, occurred_at) VALUES "
                + ", ".join([row] * len(done)),
                [v for g in done for v in (g[1], mailing.channel, mailing.id, bind(now))],
            )
            if outbox == "email":
                OutboxEmail.insert_many(
                    [(g[2], g[3]["subject"][:255], g[3]["text"], now) for g in done],
                    fields=[OutboxEmail.to, OutboxEmail.subject, OutboxEmail.body, OutboxEmail.created_at],
                ).execute()
            elif outbox == "sms":
                OutboxSms.insert_many(
                    [(g[2], g[3]["text"], mailing.id, now) for g in done],
                    fields=[OutboxSms.to, OutboxSms.text, OutboxSms.mailing, OutboxSms.created_at],
                ).execute()
            if mark:
                changes.mark_changed([g[1] for g in done], at=now)
    return marked


def _unmark_sent(mailing, token, failures, sent_at):
    """Rows marked sent whose server refused at the end: failed, and their event removed."""
    with database.atomic():
        for recipient_id, customer_id, reason in failures:
            if (
                MailingRecipient.update(status="failed", reason=str(reason)[:250])
                .where(MailingRecipient.id == recipient_id, MailingRecipient.claim == token)
                .execute()
            ):
                (
                    MessageEvent.delete()
                    .where(
                        MessageEvent.customer == customer_id,
                        MessageEvent.mailing == mailing.id,
                        MessageEvent.kind == "sent",
                        MessageEvent.occurred_at == sent_at,
                    )
                    .execute()
                )
                limits.release([recipient_id])


def _retry_or_fail(rows, token, reasons, failed=()):
    """Rows not sent go back to pending, or fail: those in `failed` (refused for
    good) and those after MAX_ATTEMPTS. `reasons`: {recipient id: why}.

    One statement, whatever the mix: the attempts are compared in SQL, in the
    statement that hands the rows back, and the reasons are grouped (a server
    that stopped answering gives the whole batch the same one).
    """
    if not rows:
        return
    by_reason = defaultdict(list)
    for recipient_id in rows:
        if reason := reasons.get(recipient_id):
            by_reason[str(reason)[:250]].append(recipient_id)
    gives_up = MailingRecipient.attempts >= MAX_ATTEMPTS
    if failed:
        gives_up |= MailingRecipient.id.in_(list(failed))
    reason = pw.Case(None, [(MailingRecipient.id.in_(ids), r) for r, ids in by_reason.items()]) if by_reason else None
    _settle(rows, token, status=pw.Case(None, [(gives_up, "failed")], "pending"), reason=reason)


class Transport:
    """How a mailing's messages leave: SMTP, SMS gateway, or an outbox."""

    def __init__(self, channel):
        self.channel = channel
        if channel == "email":
            self.kind = "smtp" if settings.SMTP_URL else "outbox"
        else:
            self.kind = "gateway" if settings.SMS_GATEWAY_URL else "outbox"
        self.group = delivery.SmtpGroup() if self.kind == "smtp" else None
        self.gateway = delivery.SmsGateway() if self.kind == "gateway" else None
        if self.group:
            self.group_size = self.group.size
        else:
            self.group_size = self.gateway.concurrency if self.gateway else BATCH
        self.mark = segments_read_messages()

    def close(self):
        if self.group is not None:
            self.group.close()
        if self.gateway is not None:
            self.gateway.close()


def _render_rows(mailing, template, rows, links):
    """[(recipient id, customer id, address, rendered)], plus skipped and failed rows."""
    contexts = contexts_for([c for _r, c in rows])
    ready, skipped, failed = [], [], []
    for recipient_id, customer_id in rows:
        ctx = contexts.get(customer_id)
        if ctx is None:
            failed.append((recipient_id, _("The customer was deleted.")))
            continue
        consent = ctx["_email_consent"] if mailing.channel == "email" else ctx["_sms_consent"]
        address = (ctx.get("email") if mailing.channel == "email" else ctx.get("phone")) or ""
        address = address.strip()
        if not consent:
            skipped.append((recipient_id, "no_consent"))
            continue
        if not address or (mailing.channel == "email" and not delivery.usable_address(address)):
            skipped.append((recipient_id, "no_address"))
            continue
        try:
            rendered = template.render(ctx, links=links, mailing_id=mailing.id, customer_id=customer_id)
        except TemplateProblem as exc:
            failed.append((recipient_id, str(exc)))
            continue
        ready.append((recipient_id, customer_id, address, rendered))
    return ready, skipped, failed


def send_batch(mailing, template, transport, token, rows, links):
    """Send one claimed batch. Raises delivery.SmtpUnavailable (rows released)."""
    ready, skipped, failed = _render_rows(mailing, template, rows, links)
    with database.atomic():
        for recipient_id, reason in skipped:
            _mark([recipient_id], token, "skipped", reason)
        for recipient_id, reason in failed:
            _mark([recipient_id], token, "failed", reason)
    size = transport.group_size
    for start in range(0, len(ready), size):
        group = ready[start : start + size]
        if (
            start
            and mailing.kind == "campaign"
            and (Mailing.select(Mailing.status).where(Mailing.id == mailing.id).scalar() != "sending")
        ):
            # Cancelled meanwhile: the rest of the batch is not sent.
            _mark([g[0] for g in ready[start:]], token, "skipped", "cancelled")
            return
        try:
            _send_group(mailing, transport, token, group, links)
        except delivery.SmtpUnavailable:
            # Not sent at all: hand the rest back without counting the attempt.
            _settle([g[0] for g in ready[start:]], token, status="pending", attempts=MailingRecipient.attempts - 1)
            raise


def _send_group(mailing, transport, token, group, links):
    now = utcnow()
    by_id = {g[0]: g for g in group}
    if transport.kind == "outbox":
        _mark_sent(mailing, token, group, now, outbox=transport.channel, mark=transport.mark)
        return
    if transport.kind == "gateway":
        # The Idempotency-Key is stable per recipient (module docstring, 5).
        keys = {f"segmento-{mailing.id}-{g[0]}": g[0] for g in group}
        answers = transport.gateway.send([(k, by_id[r][2], by_id[r][3]["text"]) for k, r in keys.items()])
        results = {keys[k]: answer for k, answer in answers.items()}
        _mark_sent(mailing, token, [g for g in group if results[g[0]][0] == "sent"], utcnow(), mark=transport.mark)
        _settle_unsent(token, results)
        return
    messages = []
    for recipient_id, _customer_id, address, rendered in group:
        unsubscribe = rendered["unsubscribe_url"]
        raw = delivery.build_email(
            address,
            rendered["subject"],
            rendered["html"],
            rendered["text"],
            msg_id=delivery.message_id(mailing.id, recipient_id),
            unsubscribe=unsubscribe,
            one_click=unsubscribe + "/one-click",
        )
        messages.append((recipient_id, address, raw))

    def commit(keys):
        return _mark_sent(mailing, token, [by_id[k] for k in keys], now, mark=transport.mark)

    results = transport.group.deliver(messages, commit)
    post_failures = [
        (recipient_id, by_id[recipient_id][1], detail)
        for recipient_id, (outcome, detail) in results.items()
        if outcome == "refused"
    ]
    if post_failures:
        _unmark_sent(mailing, token, post_failures, now)
    _settle_unsent(token, results)


def _settle_unsent(token, results):
    """Of a group's delivery results {recipient id: (outcome, detail)}, the ones
    not sent: "failed" are marked failed, "retry" go back to pending or fail
    after MAX_ATTEMPTS, in one statement (`_retry_or_fail`)."""
    unsent = {r: detail for r, (outcome, detail) in results.items() if outcome in ("failed", "retry")}
    failed = [r for r, (outcome, _detail) in results.items() if outcome == "failed"]
    _retry_or_fail(list(unsent), token, unsent, failed)


def run_sender(mailing_id, *, links, seconds=20.0, on_progress=None):
    """Send the mailing's pending messages for up to `seconds`.

    Returns "done" (nothing left to claim), "more" (time is up, work left),
    "stopped" (not sending: cancelled, missing) or "unavailable" (the SMTP
    server cannot be reached; rows handed back).
    """
    mailing = Mailing.get_or_none(Mailing.id == mailing_id)
    if mailing is None or (mailing.kind == "campaign" and mailing.status != "sending"):
        return "stopped"
    try:
        template = MessageTemplate(mailing.channel, mailing.subject, mailing.body)
    except TemplateProblem as exc:
        token = uuid.uuid4().hex
        while rows := claim(mailing_id, token, 5000, mailing=mailing):
            _mark([r for r, _c in rows], token, "failed", str(exc))
        finish_if_done(mailing_id)
        return "done"
    deadline = time.monotonic() + seconds
    transport = Transport(mailing.channel)
    token = uuid.uuid4().hex
    try:
        while time.monotonic() < deadline:
            if mailing.kind == "campaign" and (
                Mailing.select(Mailing.status).where(Mailing.id == mailing_id).scalar() != "sending"
            ):
                return "stopped"
            rows = claim(mailing_id, token, mailing=mailing)
            if not rows:
                finish_if_done(mailing_id)
                return "done"
            try:
                send_batch(mailing, template, transport, token, rows, links)
            except delivery.SmtpUnavailable as exc:
                log.warning("mailing %s: SMTP unavailable: %s", mailing_id, exc)
                if on_progress:
                    on_progress(error=str(exc))
                return "unavailable"
            if on_progress:
                on_progress()
        return "more"
    finally:
        transport.close()


# --- previews and test sends --------------------------------------------------


def preview(channel, subject, body, customer_id, links=None, *, nameless=False):
    """The message as this customer would get it (links signed for a test:
    they work but record nothing). Raises TemplateProblem.

    `nameless`: as this customer would get it with no name at all (the
    `default(...)` fallbacks at work), or None when the template shows no name.
    """
    template = MessageTemplate(channel, subject, body)
    if nameless and not template.names & set(NAME_VARIABLES):
        return None
    ctx = contexts_for([customer_id]).get(customer_id) if customer_id else None
    if nameless:
        ctx = without_name(ctx)
    return template.render(ctx or {}, links=links, mailing_id=0, customer_id=0)


def test_send(channel, subject, body, customer_id, to, links):
    """Send the preview for `customer_id` to `to` now. Returns (ok, detail)."""
    rendered = preview(channel, subject, body, customer_id, links=links)
    if channel == "email":
        if not delivery.usable_address(to):
            return False, _("Enter an email address to send the test to.")
        return delivery.send_one_email(to, _("[Test] %(s)s", s=rendered["subject"]), rendered["html"], rendered["text"])
    if not (to or "").strip():
        return False, _("Enter a phone number to send the test to.")
    if not settings.SMS_GATEWAY_URL:
        OutboxSms.create(to=to.strip(), text=rendered["text"])
        return True, _("Put in the SMS outbox (no SMS gateway is configured).")
    outcome, detail = delivery.send_sms(to.strip(), rendered["text"], f"segmento-test-{uuid.uuid4().hex}")
    return outcome == "sent", detail


# --- the report ----------------------------------------------------------------


def counts(mailing_id):
    """{"total", "pending", "sending", "sent", "failed", "skipped", "held_out", "capped"} of the recipients."""
    out = dict.fromkeys(RECIPIENT_STATUSES, 0)
    for status, n in (
        MailingRecipient.select(MailingRecipient.status, pw.fn.COUNT(MailingRecipient.id))
        .where(MailingRecipient.mailing == mailing_id)
        .group_by(MailingRecipient.status)
        .tuples()
    ):
        out[status] = n
    out["total"] = sum(out.values())
    out["done"] = out["sent"] + out["failed"] + out["skipped"] + out["held_out"] + out["capped"]
    return out


def engagement(mailing_id):
    """Customers who opened, clicked, unsubscribed (each counted once)."""
    return {
        kind: (
            MessageEvent.select(pw.fn.COUNT(MessageEvent.customer.distinct()))
            .where(MessageEvent.mailing == mailing_id, MessageEvent.kind == kind)
            .scalar()
            or 0
        )
        for kind in ("opened", "clicked", "unsubscribed")
    }


def report(mailing, engaged=None):
    """Counts, skip and failure reasons, and engagement (`engaged`, if the
    caller has it at hand: the progress partial re-polls every second)."""
    data = counts(mailing.id)
    data["skipped_by"] = [
        (reason_label(r), n)
        for r, n in (
            MailingRecipient.select(MailingRecipient.reason, pw.fn.COUNT(MailingRecipient.id))
            .where(MailingRecipient.mailing == mailing.id, MailingRecipient.status == "skipped")
            .group_by(MailingRecipient.reason)
            .order_by(pw.fn.COUNT(MailingRecipient.id).desc())
            .tuples()
        )
    ]
    data["failed_by"] = list(
        MailingRecipient.select(MailingRecipient.reason, pw.fn.COUNT(MailingRecipient.id))
        .where(MailingRecipient.mailing == mailing.id, MailingRecipient.status == "failed")
        .group_by(MailingRecipient.reason)
        .order_by(pw.fn.COUNT(MailingRecipient.id).desc())
        .limit(5)
        .tuples()
    )
    engaged = engaged if engaged is not None else engagement(mailing.id)
    for kind in ("opened", "clicked", "unsubscribed"):
        data[f"{kind}_customers"] = engaged.get(kind, 0)
        data[f"{kind}_rate"] = (100.0 * engaged.get(kind, 0) / data["sent"]) if data["sent"] else None
    return data


def recipients(mailing_id, status=None, offset=0, limit=50, after=None):
    """A page of the mailing's recipients with their customers, by id (`after`: keyset)."""
    query = (
        MailingRecipient.select(MailingRecipient, Customer).join(Customer).where(MailingRecipient.mailing == mailing_id)
    )
    if status:
        query = query.where(MailingRecipient.status == status)
    if after is not None:
        query = query.where(MailingRecipient.id > after)
    return list(query.order_by(MailingRecipient.id).offset(offset).limit(limit))


def campaigns():
    return (
        Mailing.select(Mailing, Segment)
        .join(Segment, pw.JOIN.LEFT_OUTER, on=(Mailing.segment == Segment.id))
        .where(Mailing.kind == "campaign")
        .order_by(Mailing.id.desc())
    )


def imported():
    """Mailings known only from imported message events (sent by another tool), newest first."""
    return (
        Mailing.select()
        .where(Mailing.kind.is_null() | (Mailing.kind == "imported"))
        .order_by(Mailing.created_at.desc(), Mailing.id.desc())
    )


def event_counts(mailing_ids):
    """{mailing id: {event kind: count, "first_at", "last_at"}} of the mailings'
    message events (one grouped read of the (mailing, kind) index)."""
    if not mailing_ids:
        return {}
    me = MessageEvent
    rows = (
        me.select(me.mailing, me.kind, pw.fn.COUNT(pw.SQL("*")), pw.fn.MIN(me.occurred_at), pw.fn.MAX(me.occurred_at))
        .where(me.mailing.in_(list(mailing_ids)))
        .group_by(me.mailing, me.kind)
        .tuples()
    )
    figures = {}
    for mailing_id, kind, count, first, last in rows:
        item = figures.setdefault(mailing_id, {"first_at": None, "last_at": None})
        item[kind] = count
        first, last = (datetime.datetime.fromisoformat(v) if isinstance(v, str) else v for v in (first, last))
        item["first_at"] = min(filter(None, (item["first_at"], first)), default=None)
        item["last_at"] = max(filter(None, (item["last_at"], last)), default=None)
    return figures
