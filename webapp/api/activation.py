"""Mailing and trigger endpoints (issue 17): a mailing's or trigger's control
group, transactional flag, priority and conversion window (read; writable
while a campaign is a draft or scheduled, and on triggers), its recipient
counts (held out, capped, waiting for quiet hours), its recipients one by one
with their status and reason, and the uplift report; the account's campaign
limits (frequency caps, quiet hours, global control group: admins)."""

from flask import g, request

from ..activation import limits, mailings, triggers, uplift
from ..i18n import _
from ..models import RECIPIENT_STATUSES, Mailing, Trigger
from .core import (
    WRITE_ROLES,
    bp,
    cursor_arg,
    iso,
    json_body,
    json_response,
    limit_arg,
    money,
    page,
    require_role,
    require_write,
)
from .errors import bad_request, invalid, not_found


def _settings(record):
    return {key: getattr(record, key) for key in limits.SETTINGS}


def _get(model, record_id, message):
    record = model.get_or_none(model.id == record_id) if record_id < 2**63 else None
    if record is None or (model is Mailing and record.kind not in ("campaign", "trigger")):
        raise not_found(message)
    return record


def _changed_settings(record, editable=True):
    """The record's settings with the request body's changes, validated (422 with each problem)."""
    data = json_body()
    _check_settings(data)
    if not editable:
        raise invalid(_("A mailing that has started cannot be changed."))
    errors = {}
    values = limits.clean_settings({**_settings(record), **data}, errors)
    if errors:
        raise invalid(
            "; ".join(m for ms in errors.values() for m in ms),
            [{"field": field, "message": m} for field, ms in errors.items() for m in ms],
        )
    return values


def _reject_unknown(data, known):
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise invalid(
            _("Unknown fields: %(names)s.", names=", ".join(unknown)),
            [{"field": name, "message": _("unknown field")} for name in unknown],
        )


def _check_settings(data):
    _reject_unknown(data, limits.SETTINGS)
    for key, value in data.items():
        wanted = bool if key == "transactional" else int
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise invalid(_("%(field)s: wrong type", field=key), [{"field": key, "message": _("wrong type")}])


def mailing_json(mailing):
    counts = mailings.counts(mailing.id)
    waiting, until = mailings.waiting(mailing.id)
    return {
        "id": mailing.id,
        "name": mailing.name,
        "kind": mailing.kind,
        "channel": mailing.channel,
        "status": mailing.status,
        "segment": mailing.segment.code if mailing.segment_id else None,
        **_settings(mailing),
        "recipients": {key: counts[key] for key in ("total", "pending", "sending", "sent", "failed", "skipped")}
        | {"held_out": counts["held_out"], "capped": counts["capped"], "waiting": waiting},
        "waiting_until": iso(until),
        "created_at": iso(mailing.created_at),
        "started_at": iso(mailing.started_at),
        "finished_at": iso(mailing.finished_at),
    }


@bp.get("/mailings/<int:mailing_id>")
def get_mailing(mailing_id):
    require_role(*WRITE_ROLES)
    return json_response(mailing_json(_get(Mailing, mailing_id, _("No mailing with the id %(id)s.", id=mailing_id))))


@bp.patch("/mailings/<int:mailing_id>")
def patch_mailing(mailing_id):
    """Change a draft or scheduled campaign's control group, flag, priority or window."""
    require_write()
    mailing = _get(Mailing, mailing_id, _("No mailing with the id %(id)s.", id=mailing_id))
    values = _changed_settings(mailing, mailings.is_editable(mailing))
    Mailing.update(**values).where(Mailing.id == mailing.id).execute()
    return json_response(mailing_json(Mailing.get_by_id(mailing.id)))


def _pair(triple, scale=1.0):
    if triple is None:
        return None
    diff, low, high = triple
    return {"difference": diff * scale, "low": low * scale, "high": high * scale}


def _group(group):
    return {
        "recipients": group.recipients,
        "buyers": group.buyers,
        "orders": group.orders,
        "revenue": money(group.revenue_cents),
        "conversion": group.conversion,
        "revenue_per_recipient": None if group.revenue_per_recipient is None else group.revenue_per_recipient / 100,
        "average_order_value": None if group.average_order is None else group.average_order / 100,
    }


@bp.get("/mailings/<int:mailing_id>/uplift")
def get_uplift(mailing_id):
    """The uplift report over `days` (default: the mailing's conversion window)."""
    require_role(*WRITE_ROLES)
    mailing = _get(Mailing, mailing_id, _("No mailing with the id %(id)s.", id=mailing_id))
    days = request.args.get("days", mailing.conversion_days or 7)
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= 365:
        raise invalid(
            _("days: a whole number from 1 to 365"), [{"field": "days", "message": _("a whole number from 1 to 365")}]
        )
    report = uplift.report(mailing.id, days)
    return json_response(
        {
            "mailing_id": mailing.id,
            "days": days,
            "enough_data": report.enough,
            "sent": _group(report.sent),
            "control": _group(report.control),
            "conversion_difference": _pair(report.conversion_diff) if report.enough else None,
            "revenue_per_recipient_difference": _pair(report.revenue_diff, 0.01) if report.enough else None,
            "cumulative_conversion": {
                "sent": [share for _day, share in report.sent.cumulative(days)],
                "control": [share for _day, share in report.control.cumulative(days)],
            },
        }
    )


def trigger_json(trigger):
    return {
        "id": trigger.id,
        "name": trigger.name,
        "segment": trigger.segment.code,
        "event": trigger.event,
        "active": trigger.active,
        **_settings(trigger),
        "steps": [
            {
                "position": s.position + 1,
                "action": s.action,
                "delay_seconds": s.delay_seconds,
                "mailing_id": s.mailing_id,
            }
            for s in triggers.steps_of(trigger.id)
        ],
    }


@bp.get("/triggers/<int:trigger_id>")
def get_trigger(trigger_id):
    require_role(*WRITE_ROLES)
    return json_response(trigger_json(_get(Trigger, trigger_id, _("No trigger with the id %(id)s.", id=trigger_id))))


@bp.patch("/triggers/<int:trigger_id>")
def patch_trigger(trigger_id):
    """Change a trigger's control group, flag, priority or window (copied to its steps' mailings)."""
    require_write()
    trigger = _get(Trigger, trigger_id, _("No trigger with the id %(id)s.", id=trigger_id))
    triggers.set_limits(trigger, _changed_settings(trigger))
    return json_response(trigger_json(Trigger.get_by_id(trigger.id)))


@bp.get("/mailings/<int:mailing_id>/recipients")
def get_recipients(mailing_id):
    """The mailing's recipients by id, with status and reason; `status` filters."""
    require_role(*WRITE_ROLES)
    mailing = _get(Mailing, mailing_id, _("No mailing with the id %(id)s.", id=mailing_id))
    status = request.args.get("status") or None
    if status is not None and status not in RECIPIENT_STATUSES:
        raise bad_request(
            _("“status” must be one of: %(names)s.", names=", ".join(RECIPIENT_STATUSES)), {"parameter": "status"}
        )
    limit = limit_arg()
    rows = mailings.recipients(mailing.id, status, 0, limit + 1, after=cursor_arg())
    rows, next_cursor = page(rows, limit, lambda r: r.id)
    return json_response(
        {
            "items": [
                {
                    "id": r.id,
                    "customer_external_id": r.customer.external_id,
                    "status": r.status,
                    "reason": r.reason,
                    "reason_text": mailings.reason_label(r.reason) if r.reason else None,
                    "sent_at": iso(r.sent_at),
                    "waiting_until": iso(r.not_before) if r.status == "pending" else None,
                }
                for r in rows
            ],
            "next_cursor": next_cursor,
        }
    )


# --- the account's campaign limits (admins) --------------------------------------

# The fields that are whole numbers in JSON; the others are "HH:MM" text.
NUMBER_FIELDS = {f"{c}_cap_{f}" for c in limits.CAP_NAMES for f in ("messages", "days")} | {"global_control_percent"}


def limits_json(values=None):
    fields = limits.limit_fields(values)
    saved = limits.saved_at()
    out = {
        name: (int(value) if value else None) if name in NUMBER_FIELDS else (value or None)
        for name, value in fields.items()
    }
    return out | {"saved": saved is not None, "updated_at": iso(saved[0]) if saved else None}


@bp.get("/settings/campaign-limits")
def get_campaign_limits():
    require_role("admin")
    return json_response(limits_json())


@bp.patch("/settings/campaign-limits")
def patch_campaign_limits():
    """Change any of the limits; the others stay (null: none)."""
    require_role("admin")
    data = json_body()
    _reject_unknown(data, limits.LIMIT_FIELDS)
    for key, value in data.items():
        if key == "global_control_percent":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif key in NUMBER_FIELDS:
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        else:
            ok = value is None or isinstance(value, str)
        if not ok:
            raise invalid(_("%(field)s: wrong type", field=key), [{"field": key, "message": _("wrong type")}])
    try:
        values = limits.save_account_limits({**limits.limit_fields(), **data}, user=g.user)
    except limits.LimitsError as exc:
        raise invalid(
            str(exc), [{"field": field, "message": m} for field, ms in exc.errors.items() for m in ms]
        ) from None
    return json_response(limits_json(values))
