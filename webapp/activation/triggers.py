"""Triggers: on entry into (or exit from) a segment, run steps after delays.

Events are the entry/exit log (`segment_change`), written by full runs and
real-time re-checks. Each trigger keeps a cursor, the last log id it has
read. `consume()` turns newer entries (or exits) of the trigger's segment
into `trigger_execution` rows - unique per trigger and log row, so a trigger
fires once per event however often this runs - with the first step due at
event time + its delay.

The cursor only moves past ids that can no longer appear: on PostgreSQL a
long transaction (a full run) may commit log rows with ids lower than ones
already visible. `safe_change_id()` takes a SHARE lock on `segment_change`
without waiting (NOWAIT); when it gets it, no writer is in flight and MAX(id)
is final. When it does not, the visible rows are still turned into
executions (idempotently) but the cursor stays, to look again. SQLite has one
writer at a time, so ids appear in order there.

`run_due()` claims due executions (a lease, like mailing recipients), checks
"still in the segment" - no opposite change logged after this event - for
steps that require it (a customer who left stops the chain), runs the step's
action and moves to the next step in ONE transaction, which also checks the
claim: a step runs exactly once. Actions: an email or SMS (a recipient row of
the step's own mailing, sent by the mailing senders), a task for the
customer's manager or a chosen user, a notification, a webhook call (queued
here, made by `call_webhooks()` with retries), clearing a consent.
"""

import datetime
import json
import secrets
import uuid

import peewee as pw

from .. import settings
from ..audit import service as audit
from ..db import database, is_postgres
from ..i18n import _
from ..models import (
    CHANNELS,
    STEP_ACTIONS,
    TRIGGER_EVENTS,
    Customer,
    Mailing,
    MailingRecipient,
    MessageEvent,
    Notification,
    Segment,
    SegmentChange,
    SegmentMember,
    Task,
    Trigger,
    TriggerExecution,
    TriggerStep,
    User,
    WebhookCall,
    utcnow,
)
from ..segments import changes
from ..sql import bind, param, skip_locked
from ..text import fold
from . import delivery, limits
from .recipients import recipient_case
from .templating import MessageTemplate, TemplateProblem, check, context_for

CONSUME_CHUNK = 100_000  # log ids per statement
CLAIM = 200
UNITS = {"minutes": 60, "hours": 3600, "days": 86400, "seconds": 1}


class TriggerError(ValueError):
    def __init__(self, errors):
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


# --- editing -------------------------------------------------------------------


def _int(value, default=None):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def clean_step(raw, index, errors):
    """A step dict from form data; problems go to errors['steps-<i>-<field>']."""

    def err(field, message):
        errors.setdefault(f"steps-{index}-{field}", []).append(message)

    action = raw.get("action")
    if action not in STEP_ACTIONS:
        err("action", _("Choose what the step does."))
        action = "notify"
    amount = _int(raw.get("delay_value"), 0)
    unit = raw.get("delay_unit") if raw.get("delay_unit") in UNITS else "days"
    if amount is None or amount < 0 or amount > 10**7:
        err("delay_value", _("The delay is a whole number, 0 or more."))
        amount = 0
    step = {
        "id": _int(raw.get("id")),
        "action": action,
        "delay_seconds": amount * UNITS[unit],
        "only_members": bool(raw.get("only_members")),
        "user_id": _int(raw.get("user_id")),
        "config": {},
    }
    if action == "email":
        subject, body = (raw.get("subject") or "").strip()[:500], (raw.get("body") or "").replace("\x00", "")
        if not subject:
            err("subject", _("An email needs a subject."))
        elif problem := check(subject):
            err("subject", problem)
        if not body.strip():
            err("body", _("Write the message."))
        elif problem := check(body, html_body=True):
            err("body", problem)
        step.update(subject=subject, body=body)
    elif action == "sms":
        text = (raw.get("text") or "").replace("\x00", "").strip()
        if not text:
            err("text", _("Write the message."))
        elif problem := check(text):
            err("text", problem)
        step.update(subject=None, body=text)
    elif action in ("task", "notify"):
        text = " ".join((raw.get("text") or "").split())[:250]
        if not text:
            err("text", _("Write what the task is.") if action == "task" else _("Write the notification."))
        elif problem := check(text):
            err("text", problem)
        step["config"]["text"] = text
        if action == "task":
            due = _int(raw.get("due_days"), 0)
            step["config"]["due_days"] = min(max(due or 0, 0), 3650)
        if step["user_id"] is not None and User.get_or_none(User.id == step["user_id"], User.active == True) is None:  # noqa: E712
            err("user_id", _("Choose an active user."))
        if action == "notify" and step["user_id"] is None:
            err("user_id", _("Choose whom to notify."))
    elif action == "webhook":
        url = (raw.get("url") or "").strip()[:2000]
        problem = delivery.webhook_url_problem(url)
        if problem:
            err("url", problem)
        step["config"].update(url=url, secret=(raw.get("secret") or "").strip()[:200] or secrets.token_urlsafe(24))
    elif action == "unsubscribe":
        channel = raw.get("channel") if raw.get("channel") in CHANNELS else "email"
        step["config"]["channel"] = channel
    if action not in ("task", "notify"):
        step["user_id"] = None
    return step


def clean(data, *, trigger=None):
    errors = {}
    name = " ".join((data.get("name") or "").split())[:200]
    if not name:
        errors.setdefault("name", []).append(_("Give the trigger a name."))
    segment = Segment.get_or_none(Segment.id == _int(data.get("segment_id"), 0))
    if segment is None:
        errors.setdefault("segment_id", []).append(_("Choose a segment."))
    event = data.get("event") if data.get("event") in TRIGGER_EVENTS else None
    if event is None:
        errors.setdefault("event", []).append(_("Choose entry or exit."))
    steps = [clean_step(raw, i, errors) for i, raw in enumerate(data.get("steps") or [])]
    if not steps:
        errors.setdefault("steps", []).append(_("Add at least one step."))
    extra = limits.clean_settings(data, errors)
    if errors:
        raise TriggerError(errors)
    return {
        "name": name,
        "segment": segment,
        "event": event,
        "active": bool(data.get("active")),
        "steps": steps,
        **extra,
    }


def _max_change_id():
    return SegmentChange.select(pw.fn.MAX(SegmentChange.id)).scalar() or 0


def members_count(segment_id):
    """How many customers are in the segment now (as last computed): those a new entry
    trigger can be started for."""
    return SegmentMember.select().where(SegmentMember.segment == segment_id).count()


def start_for_members(trigger, now=None):
    """Start an entry trigger for the customers already in its segment, as if they entered
    now: one execution each, its first step due after its delay from now. Returns how many.

    An execution names the member's latest logged entry (so "still in the segment" checks
    and re-running this work as for any entry), or minus the customer id for a member
    whose entry is not in the log; a member already started is not started twice.
    """
    now = now or utcnow()
    first = (
        TriggerStep.select(TriggerStep.delay_seconds)
        .where(TriggerStep.trigger == trigger)
        .order_by(TriggerStep.position, TriggerStep.id)
        .scalar()
    )
    if first is None:
        return 0
    p = param()
    return database.execute_sql(
        f"INSERT INTO trigger_execution (trigger_id, change_id, customer_id, event_at, step, due_at, status) "
        f"SELECT {p}, COALESCE((SELECT MAX(sc.id) FROM segment_change sc WHERE sc.segment_id = m.segment_id "
        f"AND sc.customer_id = m.customer_id AND sc.change = 'entered'), -m.customer_id), m.customer_id, {p}, 0, "
        f"{p}, 'active' FROM segment_member m WHERE m.segment_id = {p} "
        f"ON CONFLICT (trigger_id, change_id) DO NOTHING",
        (trigger.id, bind(now), bind(now + datetime.timedelta(seconds=int(first))), trigger.segment_id),
    ).rowcount


def save(data, *, trigger=None, user=None, start_existing=False):
    """Create or update a trigger with its steps (a dict as from the form). A new entry
    trigger with `start_existing` also starts for the segment's current members, in the
    same transaction (see start_for_members); `trigger.started` says for how many."""
    fields = clean(data, trigger=trigger)
    now = utcnow()
    new = trigger is None
    with database.atomic():
        started = None
        if new:
            # Only events from now on: a new trigger does not replay history.
            trigger = Trigger.create(
                name=fields["name"],
                segment=fields["segment"],
                event=fields["event"],
                active=fields["active"],
                created_by=user,
                last_change_id=_max_change_id(),
                **{k: fields[k] for k in limits.SETTINGS},
            )
            audit.record(user, "trigger.create", trigger)
        else:
            starting = fields["active"] and not trigger.active
            moved = trigger.segment_id != fields["segment"].id or trigger.event != fields["event"]
            trigger.name, trigger.segment, trigger.event = fields["name"], fields["segment"], fields["event"]
            trigger.active, trigger.updated_at = fields["active"], now
            for key in limits.SETTINGS:
                setattr(trigger, key, fields[key])
            if starting or moved:
                trigger.last_change_id = _max_change_id()
            trigger.save()
            audit.record(user, "trigger.update", trigger)
        _save_steps(trigger, fields["steps"])
        if start_existing and new and fields["event"] == "entered":
            started = start_for_members(trigger, now)
    trigger.started = started
    return trigger


def _save_steps(trigger, steps):
    existing = {s.id: s for s in TriggerStep.select().where(TriggerStep.trigger == trigger)}
    old_mailings = {s.mailing_id for s in existing.values() if s.mailing_id}
    # Free this trigger's mailing names first: steps may have changed places.
    for mailing_id in old_mailings:
        Mailing.update(name=f"~{mailing_id}", name_ci=f"~{mailing_id}").where(Mailing.id == mailing_id).execute()
    kept, mailings = set(), []
    for position, data in enumerate(steps):
        step = existing.get(data["id"]) or TriggerStep(trigger=trigger)
        step.position, step.action = position, data["action"]
        step.delay_seconds, step.only_members = data["delay_seconds"], data["only_members"]
        step.user = data["user_id"]
        step.config = data["config"] or None
        if data["action"] in ("email", "sms"):
            mailing = Mailing.get_or_none(Mailing.id == step.mailing_id) if step.mailing_id else None
            if mailing is None or mailing.channel != data["action"]:
                mailing = Mailing(
                    kind="trigger", status="active", channel=data["action"], created_by=trigger.created_by_id
                )
            mailing.subject, mailing.body, mailing.updated_at = data.get("subject"), data.get("body"), utcnow()
            mailing.segment = trigger.segment_id
            for key in limits.SETTINGS:
                setattr(mailing, key, getattr(trigger, key))
            mailing.name = f"~new-{uuid.uuid4().hex}"
            mailing.save()
            step.mailing = mailing
            mailings.append((mailing, position))
        else:
            step.mailing = None
        step.save()
        kept.add(step.id)
    for step_id, step in existing.items():
        if step_id not in kept:
            step.delete_instance()
    used = {m.id for m, _pos in mailings}
    for mailing_id in old_mailings - used:
        _retire_mailing(mailing_id)
    for mailing, position in mailings:
        name = f"{trigger.name} · {_('step %(n)s', n=position + 1)}"
        if Mailing.select().where(Mailing.name_ci == fold(name), Mailing.id != mailing.id).exists():
            name = f"{name} (#{mailing.id})"
        mailing.name = name
        mailing.save()


def set_limits(trigger, values):
    """Set a trigger's control group, flag, priority and window, and its steps' mailings'."""
    with database.atomic():
        Trigger.update(**values, updated_at=utcnow()).where(Trigger.id == trigger.id).execute()
        step_mailings = TriggerStep.select(TriggerStep.mailing).where(TriggerStep.trigger == trigger.id)
        Mailing.update(**values).where(Mailing.id.in_(step_mailings)).execute()


def _retire_mailing(mailing_id):
    """A step's mailing whose step is gone: its history stays, unsent messages are dropped."""
    (
        MailingRecipient.update(status="skipped", reason="cancelled")
        .where(MailingRecipient.mailing == mailing_id, MailingRecipient.status == "pending")
        .execute()
    )
    mailing = Mailing.get_or_none(Mailing.id == mailing_id)
    if mailing is not None:
        if mailing.name.startswith("~"):
            mailing.name = f"{_('Removed step')} #{mailing.id}"
        mailing.status = "retired"
        mailing.save()


def delete(trigger):
    """Delete a trigger with its steps and executions; its mailings stay for their reports."""
    with database.atomic():
        for step in steps_of(trigger.id):
            if step.mailing_id:
                _retire_mailing(step.mailing_id)
        audit.record(None, "trigger.delete", trigger)
        trigger.delete_instance()


def steps_of(trigger_id):
    return list(
        TriggerStep.select().where(TriggerStep.trigger == trigger_id).order_by(TriggerStep.position, TriggerStep.id)
    )


def stats(trigger_ids):
    """{trigger id: {status: executions}}."""
    out = {t: {} for t in trigger_ids}
    if trigger_ids:
        for trigger_id, status, n in (
            TriggerExecution.select(TriggerExecution.trigger, TriggerExecution.status, pw.fn.COUNT(TriggerExecution.id))
            .where(TriggerExecution.trigger.in_(list(trigger_ids)))
            .group_by(TriggerExecution.trigger, TriggerExecution.status)
            .tuples()
        ):
            out[trigger_id][status] = n
        # A firing whose steps ran but whose webhook is not delivered is not done:
        # retrying while the call waits for another attempt, failed once it gave up.
        for trigger_id, state, n in (
            TriggerExecution.select(
                TriggerExecution.trigger,
                pw.Case(None, [(pw.fn.MAX(_GAVE_UP) == 1, "failed")], "retrying"),
                pw.fn.COUNT(pw.fn.DISTINCT(TriggerExecution.id)),
            )
            .join(WebhookCall, on=(WebhookCall.execution_id == TriggerExecution.id))
            .where(
                TriggerExecution.trigger.in_(list(trigger_ids)),
                TriggerExecution.status == "done",
                WebhookCall.status != "done",
            )
            .group_by(TriggerExecution.trigger, TriggerExecution.id)
            .tuples()
        ):
            counts = out[trigger_id]
            counts["done"] = counts.get("done", 0) - n
            counts[state] = counts.get(state, 0) + n
    return out


_GAVE_UP = pw.Case(None, [(WebhookCall.status == "failed", 1)], 0)


def webhook_states(execution_ids):
    """{execution id: (state, attempts)} for firings whose webhook is not
    delivered: "retrying" (waiting for its next attempt or in a call) or
    "failed" (gave up); `attempts` made so far by its latest call."""
    out = {}
    for execution_id, status, attempts in (
        WebhookCall.select(WebhookCall.execution_id, WebhookCall.status, WebhookCall.attempts)
        .where(WebhookCall.execution_id.in_(list(execution_ids)), WebhookCall.status != "done")
        .order_by(WebhookCall.id)
        .tuples()
    ):
        state = "failed" if status == "failed" else "retrying"
        if out.get(execution_id, ("",))[0] != "failed":
            out[execution_id] = (state, attempts)
    return out


# --- events to executions ------------------------------------------------------


def safe_change_id():
    """The largest segment_change id below which no row can still appear, or None now."""
    if not is_postgres():
        return _max_change_id()
    try:
        with database.atomic():
            database.execute_sql("LOCK TABLE segment_change IN SHARE MODE NOWAIT")
            return _max_change_id()
    except pw.DatabaseError:
        return None


def _due_sql(p):
    if is_postgres():
        return f"sc.\"at\" + ({p} * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', sc.\"at\", '+' || {p} || ' seconds')"


def consume():
    """New entry/exit events of every active trigger's segment become executions
    (not the quiet ones: logged for an import run without triggers)."""
    safe = safe_change_id()
    visible = safe if safe is not None else _max_change_id()
    created = 0
    p = param()
    for trigger in list(Trigger.select().where(Trigger.active == True)):  # noqa: E712
        first = (
            TriggerStep.select(TriggerStep.delay_seconds)
            .where(TriggerStep.trigger == trigger)
            .order_by(TriggerStep.position, TriggerStep.id)
            .scalar()
        )
        cursor = trigger.last_change_id
        for low in range(cursor, visible, CONSUME_CHUNK):
            high = min(low + CONSUME_CHUNK, visible)
            with database.atomic():
                if first is not None:
                    created += database.execute_sql(
                        f"INSERT INTO trigger_execution (trigger_id, change_id, customer_id, event_at, step, due_at, "
                        f"status) SELECT {p}, sc.id, sc.customer_id, sc.\"at\", 0, {_due_sql(p)}, 'active' "
                        f"FROM segment_change sc WHERE sc.segment_id = {p} AND sc.change = {p} "
                        f"AND sc.id > {p} AND sc.id <= {p} AND sc.quiet IS NULL "
                        f"ON CONFLICT (trigger_id, change_id) DO NOTHING",
                        (trigger.id, int(first), trigger.segment_id, trigger.event, low, high),
                    ).rowcount
                if safe is not None:
                    (
                        Trigger.update(last_change_id=high)
                        .where(Trigger.id == trigger.id, Trigger.last_change_id < high)
                        .execute()
                    )
    return created


# --- running steps -------------------------------------------------------------


def _claim_due(token, now, limit=CLAIM):
    stale = now - datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS)
    p = param()
    lock = skip_locked()
    with database.atomic():
        return [
            row[0]
            for row in database.execute_sql(
                f"UPDATE trigger_execution SET claim = {p}, claimed_at = {p} WHERE id IN (SELECT e.id FROM "
                f"trigger_execution e WHERE e.status = 'active' AND e.due_at <= {p} "
                f"AND (e.claim IS NULL OR e.claimed_at < {p}) "
                f'AND e.trigger_id IN (SELECT t.id FROM "trigger" t WHERE t.active = {p}) LIMIT {p}{lock}) RETURNING id',
                (token, bind(now), bind(now), bind(stale), True, limit),
            ).fetchall()
        ]


def _left(executions, trigger):
    """Ids of executions whose customer has since left (entry trigger) or come
    back (exit trigger): an opposite change logged after the event."""
    opposite = "exited" if trigger.event == "entered" else "entered"
    latest = {
        customer_id: (last_id, last_at)
        for customer_id, last_id, last_at in SegmentChange.select(
            SegmentChange.customer, pw.fn.MAX(SegmentChange.id), pw.fn.MAX(SegmentChange.at)
        )
        .where(
            SegmentChange.segment == trigger.segment_id,
            SegmentChange.change == opposite,
            SegmentChange.customer.in_([e.customer_id for e in executions]),
        )
        .group_by(SegmentChange.customer)
        .tuples()
    }

    def left(e):
        if e.customer_id not in latest:
            return False
        last_id, last_at = latest[e.customer_id]
        if e.change_id < 0:  # started for a member whose entry is not logged: changes since the start
            return _as_datetime(last_at) > e.event_at
        return last_id > e.change_id

    return {e.id for e in executions if left(e)}


def _as_datetime(value):
    # MAX() over a datetime column comes back as text on SQLite
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


class ClaimLost(Exception):
    pass


def run_due(now=None, seconds=20.0):
    """Run every due step (for up to `seconds`); returns the ids of mailings
    that got recipients (the caller makes sure they have senders)."""
    import time

    deadline = time.monotonic() + seconds
    touched = set()
    token = uuid.uuid4().hex
    while time.monotonic() < deadline:
        ids = _claim_due(token, now or utcnow())
        if not ids:
            break
        executions = list(TriggerExecution.select().where(TriggerExecution.id.in_(ids)))
        by_trigger = {}
        for execution in executions:
            by_trigger.setdefault(execution.trigger_id, []).append(execution)
        for trigger_id, group in by_trigger.items():
            trigger = Trigger.get_by_id(trigger_id)
            steps = steps_of(trigger_id)
            left = _left(group, trigger)
            for execution in group:
                _run_one(trigger, steps, execution, execution.id in left, token, touched)
    return touched


def _finish(execution, token, status, error=None):
    (
        TriggerExecution.update(status=status, finished_at=utcnow(), claim=None, error=error)
        .where(TriggerExecution.id == execution.id, TriggerExecution.claim == token)
        .execute()
    )


def _run_one(trigger, steps, execution, left, token, touched):
    if execution.step >= len(steps):
        _finish(execution, token, "done")
        return
    step = steps[execution.step]
    if step.only_members and left:
        _finish(execution, token, "stopped")
        return
    try:
        with database.atomic():
            _act(trigger, step, execution, touched)
            following = execution.step + 1
            if following < len(steps):
                due = execution.event_at + datetime.timedelta(seconds=steps[following].delay_seconds)
                moved = (
                    TriggerExecution.update(step=following, due_at=due, claim=None)
                    .where(
                        TriggerExecution.id == execution.id,
                        TriggerExecution.claim == token,
                        TriggerExecution.step == execution.step,
                    )
                    .execute()
                )
            else:
                moved = (
                    TriggerExecution.update(step=following, status="done", finished_at=utcnow(), claim=None)
                    .where(
                        TriggerExecution.id == execution.id,
                        TriggerExecution.claim == token,
                        TriggerExecution.step == execution.step,
                    )
                    .execute()
                )
            if not moved:
                raise ClaimLost()  # another runner took it over: undo this action
    except ClaimLost:
        return
    except (TemplateProblem, pw.IntegrityError, ValueError) as exc:
        _finish(execution, token, "failed", str(exc)[:1000])


def _text(template, customer_id):
    ctx = context_for(customer_id) or {}
    return MessageTemplate("sms", None, template).render(ctx)["text"]


def _act(trigger, step, execution, touched):
    config = step.config or {}
    customer_id = execution.customer_id
    if step.action in ("email", "sms"):
        if step.mailing_id is None:
            raise ValueError(_("The step has no message."))
        status, reason = recipient_case(step.action)
        p = param()
        database.execute_sql(
            f"INSERT INTO mailing_recipient (mailing_id, customer_id, execution_id, status, reason, attempts) "
            f"SELECT {p}, c.id, {p}, {status}, {reason}, 0 FROM customer c WHERE c.id = {p} "
            f"ON CONFLICT DO NOTHING",
            (step.mailing_id, execution.id, customer_id),
        )
        limits.hold_out(
            trigger.holdout_percent,
            ("trigger", trigger.id),
            step.mailing_id,
            f"customer_id = {p} AND execution_id = {p}",
            [customer_id, execution.id],
            utcnow(),
        )
        touched.add(step.mailing_id)
    elif step.action == "task":
        customer = Customer.get_or_none(Customer.id == customer_id)
        assignee = step.user_id or (customer.manager_id if customer else None) or trigger.created_by_id
        due_days = int(config.get("due_days") or 0)
        Task.create(
            customer=customer_id,
            assignee=assignee,
            title=_text(config.get("text") or "", customer_id)[:250],
            due_on=(utcnow() + datetime.timedelta(days=due_days)).date(),
            trigger=trigger.id,
            created_by=trigger.created_by_id,
        )
    elif step.action == "notify":
        if step.user_id is None:
            raise ValueError(_("Nobody to notify."))
        Notification.create(
            user=step.user_id,
            message=_text(config.get("text") or "", customer_id)[:1000],
            link=f"/customers/{customer_id}",
        )
    elif step.action == "webhook":
        WebhookCall.create(
            step=step.id,
            execution_id=execution.id,
            customer=customer_id,
            url=config.get("url") or "",
            body=json.dumps(_payload(trigger, step, execution), ensure_ascii=False, sort_keys=True),
        )
    elif step.action == "unsubscribe":
        channel = config.get("channel") or "email"
        column = Customer.email_consent if channel == "email" else Customer.sms_consent
        now = utcnow()
        if (
            Customer.update({column: False, Customer.updated_at: now})
            .where(Customer.id == customer_id, column == True)
            .execute()
        ):  # noqa: E712
            MessageEvent.create(customer=customer_id, channel=channel, kind="unsubscribed", occurred_at=now)
            changes.mark_changed([customer_id], at=now)


def _payload(trigger, step, execution):
    customer = Customer.get_or_none(Customer.id == execution.customer_id)
    segment = trigger.segment
    return {
        "event": f"segment.{trigger.event}",
        "occurred_at": execution.event_at.isoformat() + "Z",
        "trigger": {"id": trigger.id, "name": trigger.name, "step": step.position + 1},
        "segment": {"code": segment.code, "name": segment.name},
        "customer": None
        if customer is None
        else {
            "id": customer.id,
            "external_id": customer.external_id,
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "company_name": customer.company_name,
        },
        "execution_id": execution.id,
    }


# --- webhooks ------------------------------------------------------------------


def retry_delays():
    return [int(x) for x in settings.WEBHOOK_RETRY_SECONDS.replace(" ", "").split(",") if x.isdigit()]


def call_webhooks(now=None, limit=50):
    """Make due webhook calls; failures are retried after WEBHOOK_RETRY_SECONDS."""
    now = now or utcnow()
    token = uuid.uuid4().hex
    stale = now - datetime.timedelta(seconds=max(settings.MAILING_LEASE_SECONDS, 2 * delivery.HTTP_TIMEOUT))
    p = param()
    lock = skip_locked()
    with database.atomic():
        ids = [
            r[0]
            for r in database.execute_sql(
                f"UPDATE webhook_call SET status = 'sending', claim = {p}, claimed_at = {p} WHERE id IN (SELECT id "
                f"FROM webhook_call WHERE (status = 'pending' AND next_at <= {p}) OR (status = 'sending' AND "
                f"claimed_at < {p}) LIMIT {p}{lock}) RETURNING id",
                (token, bind(now), bind(now), bind(stale), limit),
            ).fetchall()
        ]
    delays = retry_delays()
    done = 0
    for call in WebhookCall.select().where(WebhookCall.id.in_(ids)).order_by(WebhookCall.id):
        step = TriggerStep.get_or_none(TriggerStep.id == call.step_id) if call.step_id else None
        secret = (step.config or {}).get("secret") if step else None
        final = False
        if not secret:
            status, error = None, _("The trigger step was removed.")
            attempts = len(delays) + 1
        else:
            attempts = call.attempts + 1
            try:
                status, error = delivery.post_webhook(call.url, call.body.encode("utf-8"), secret, call.id)
            except delivery.AddressRefused as exc:
                status, error = None, str(exc)
                final = True  # retrying cannot help
        finished = utcnow()
        if error is None:
            changes_ = dict(status="done", response_status=status, error=None, finished_at=finished)
            done += 1
        elif attempts <= len(delays) and not final:
            changes_ = dict(
                status="pending",
                response_status=status,
                error=error,
                next_at=finished + datetime.timedelta(seconds=delays[attempts - 1]),
            )
        else:
            changes_ = dict(status="failed", response_status=status, error=error, finished_at=finished)
        (
            WebhookCall.update(attempts=attempts, claim=None, **changes_)
            .where(WebhookCall.id == call.id, WebhookCall.claim == token)
            .execute()
        )
    return done
