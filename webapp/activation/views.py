"""Pages: mailings (list, editor with preview and test send, report with a
self-replacing progress partial), triggers (list, editor with steps, page),
tasks (mine, due, done), the SMS outbox, and the public tracking endpoints
(open pixel, click redirect, unsubscribe page and RFC 8058 one-click).

Views parse the form, call the services, render. Mailings and triggers are
for admins and marketers; every user has tasks.
"""

import datetime
import zoneinfo

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField

from .. import charts, settings
from ..formats import thousands
from ..i18n import _, language, ngettext
from ..i18n import lazy_gettext as _l
from ..models import (
    CHANNELS,
    RECIPIENT_STATUSES,
    STEP_ACTIONS,
    Customer,
    Mailing,
    OutboxSms,
    Segment,
    SegmentMember,
    Task,
    Trigger,
    TriggerExecution,
    User,
    WebhookCall,
)
from ..pagination import Page, page_of
from ..queue import cached
from ..web import EDITORS, CsrfForm, csrf, get_or_404, int_arg, role_required, safe_path, wants_fragment
from . import jobs, limits, mailings, starters, tasks, tracking, triggers, uplift
from .links import Links, is_loopback
from .templating import VARIABLES, TemplateProblem

mailings_bp = Blueprint("mailings", __name__, url_prefix="/mailings")
triggers_bp = Blueprint("triggers", __name__, url_prefix="/triggers")
tasks_bp = Blueprint("tasks", __name__, url_prefix="/tasks")
limits_bp = Blueprint("limits", __name__, url_prefix="/settings")
track_bp = Blueprint("track", __name__)

PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _links():
    return Links(current_app.config["SECRET_KEY"], settings.PUBLIC_URL)


def _loopback_url():
    """PUBLIC_URL when it names this machine only (the mailing pages warn), else None."""
    return settings.PUBLIC_URL if is_loopback(settings.PUBLIC_URL) else None


def _segments():
    return list(Segment.select(Segment.id, Segment.name, Segment.code, Segment.size).order_by(Segment.name))


def _users():
    return list(User.select().where(User.active == True).order_by(User.name, User.email))  # noqa: E712


def _tz():
    try:
        return zoneinfo.ZoneInfo(settings.tz())
    except (KeyError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _parse_local(value):
    """A datetime-local input in the account time zone -> naive UTC, or None."""
    try:
        local = datetime.datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return local.replace(tzinfo=_tz()).astimezone(datetime.UTC).replace(tzinfo=None)


# --- mailings --------------------------------------------------------------------


def _get_mailing(mailing_id):
    return get_or_404(Mailing, Mailing.id == mailing_id, Mailing.kind.in_(("campaign", "trigger")))


def _mailing_data(form):
    return {key: form.get(key) for key in ("name", "channel", "segment_id", "subject", "body", *limits.SETTINGS)}


def _settings_of(record):
    return {key: getattr(record, key) for key in limits.SETTINGS}


DEFAULT_SETTINGS = {"holdout_percent": 0, "transactional": False, "priority": 0, "conversion_days": 7}


def _editor(mailing, data, errors=None, status=200):
    return render_template(
        "activation/mailing_edit.html",
        mailing=mailing,
        data=data,
        errors=errors or {},
        form=CsrfForm(),
        segments=_segments(),
        channels=CHANNELS,
        variables=VARIABLES,
        loopback_url=_loopback_url(),
    ), status


@mailings_bp.route("/")
@role_required(*EDITORS)
def index():
    page = page_of(mailings.campaigns(), int_arg("page"), current_app.config["PER_PAGE"])
    # Counting recipients of big mailings costs: only the ones under way show progress.
    return render_template(
        "activation/mailings.html",
        page=page,
        counts={m.id: mailings.counts(m.id) for m in page.rows if m.status == "sending"},
    )


@mailings_bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new():
    if request.method == "POST":
        data = _mailing_data(request.form)
        if not CsrfForm().validate_on_submit():
            return _editor(None, data, {"name": [_("The form expired; try again.")]}, 400)
        try:
            mailing = mailings.create_campaign(data, user=g.user.id)
        except mailings.MailingError as exc:
            return _editor(None, data, exc.errors, 422)
        flash(_("Mailing saved as a draft."))
        return redirect(url_for("mailings.show", mailing_id=mailing.id))
    segment = request.args.get("segment", type=int)
    return _editor(
        None,
        {
            "channel": request.args.get("channel", "email"),
            "segment_id": segment,
            "subject": "",
            "body": "",
            **DEFAULT_SETTINGS,
        },
    )


@mailings_bp.route("/<int:mailing_id>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def edit(mailing_id):
    mailing = _get_mailing(mailing_id)
    if not mailings.is_editable(mailing):
        flash(_("A mailing that has started cannot be changed."))
        return redirect(url_for("mailings.show", mailing_id=mailing.id))
    if request.method == "POST":
        data = _mailing_data(request.form)
        if not CsrfForm().validate_on_submit():
            return _editor(mailing, data, {"name": [_("The form expired; try again.")]}, 400)
        try:
            mailings.update_campaign(mailing, data)
        except mailings.MailingError as exc:
            return _editor(mailing, data, exc.errors, 422)
        flash(_("Mailing saved."))
        return redirect(url_for("mailings.show", mailing_id=mailing.id))
    return _editor(
        mailing,
        {
            "name": mailing.name,
            "channel": mailing.channel,
            "segment_id": mailing.segment_id,
            "subject": mailing.subject or "",
            "body": mailing.body or "",
            **_settings_of(mailing),
        },
    )


def _preview_customer(form):
    """The customer to preview for: by email or external id, else the segment's first member."""
    who = (form.get("preview_for") or "").strip()[:200]
    if who:
        from ..text import fold

        found = (
            Customer.select()
            .where((Customer.external_id == who) | (Customer.email_ci == fold(who)))
            .order_by(Customer.id)
            .first()
        )
        return found, who
    try:
        segment_id = int(form.get("segment_id") or 0)
    except ValueError:
        segment_id = 0
    member = (
        Customer.select().join(SegmentMember).where(SegmentMember.segment == segment_id).order_by(Customer.id).first()
    )
    return member, ""


@mailings_bp.route("/preview", methods=["POST"])
@role_required(*EDITORS)
def preview():
    """The message as rendered for a chosen customer (htmx fragment)."""
    channel = request.form.get("channel") if request.form.get("channel") in CHANNELS else "email"
    customer, who = _preview_customer(request.form)
    rendered, nameless, problem = None, None, None
    if who and customer is None:
        problem = _("No customer with this email or external ID.")
    else:
        try:
            rendered, nameless = (
                mailings.preview(
                    channel,
                    request.form.get("subject") or "",
                    request.form.get("body") or "",
                    customer.id if customer else None,
                    links=_links(),
                    nameless=flag,
                )
                for flag in (False, True)
            )
        except TemplateProblem as exc:
            problem = str(exc)
    return render_template(
        "activation/_preview.html",
        channel=channel,
        customer=customer,
        rendered=rendered,
        nameless=nameless,
        problem=problem,
    )


@mailings_bp.route("/test", methods=["POST"])
@role_required(*EDITORS)
def test_send():
    """Send the preview to an address now (htmx fragment with the result)."""
    channel = request.form.get("channel") if request.form.get("channel") in CHANNELS else "email"
    customer, _who = _preview_customer(request.form)
    to = (request.form.get("test_to") or "").strip()[:200]
    try:
        ok, detail = mailings.test_send(
            channel,
            request.form.get("subject") or "",
            request.form.get("body") or "",
            customer.id if customer else None,
            to,
            _links(),
        )
    except TemplateProblem as exc:
        ok, detail = False, str(exc)
    return render_template("activation/_test_result.html", ok=ok, detail=detail, to=to)


def _progress_context(mailing):
    engaged = None
    if mailing.status in ("queued", "sending"):
        # Re-polled every second while sending: engagement is counted every 10 s.
        engaged = cached(f"segmento:mailing-engagement:{mailing.id}", 10, lambda: mailings.engagement(mailing.id))
    return {
        "mailing": mailing,
        "report": mailings.report(mailing, engaged),
        "form": CsrfForm(),
        "last_error": jobs.last_error(mailing.id) if mailing.status == "sending" else None,
        "waiting": mailings.waiting(mailing.id) if mailing.status in ("sending", "active") else (0, None),
        "audience": (
            mailings.audience(mailing.segment_id, mailing.channel)
            if mailing.status in ("draft", "scheduled") and mailing.segment_id
            else None
        ),
    }


@mailings_bp.route("/<int:mailing_id>")
@role_required(*EDITORS)
def show(mailing_id):
    mailing = _get_mailing(mailing_id)
    if wants_fragment():
        return render_template("activation/_progress.html", oob_status=True, **_progress_context(mailing))
    step = None
    if mailing.kind == "trigger":
        from ..models import TriggerStep

        step = TriggerStep.get_or_none(TriggerStep.mailing == mailing.id)
    days = int_arg("days", mailing.conversion_days or 7, maximum=365)
    report = uplift.report(mailing.id, days) if uplift.has_control(mailing.id) else None
    return render_template(
        "activation/mailing.html",
        step=step,
        tz=settings.tz(),
        loopback_url=_loopback_url() if mailing.status in ("draft", "scheduled") else None,
        rules=limits.describe(mailing.channel),
        uplift=report,
        uplift_chart=_uplift_chart(report),
        min_recipients=uplift.ENOUGH_RECIPIENTS,
        min_buyers=uplift.ENOUGH_BUYERS,
        **_progress_context(mailing),
    )


def _uplift_chart(report):
    if report is None or not (report.sent.recipients and report.control.recipients):
        return None
    return charts.line_chart(
        uplift.chart_points(report, (_("Sent"), _("Control group"))),
        value_label=lambda v: f"{v:.1f}%",
        integer=False,
        x_label=lambda d: _("day %(n)s", n=uplift.day_of(d)),
    )


@mailings_bp.route("/<int:mailing_id>/progress", methods=["GET", "POST", "DELETE"])
@role_required(*EDITORS)
def progress(mailing_id):
    """The progress partial: GET its status, POST send now, DELETE cancel."""
    mailing = _get_mailing(mailing_id)
    if request.method in ("POST", "DELETE"):  # CSRF checked by CSRFProtect (form field or X-CSRFToken)
        try:
            if request.method == "POST":
                mailing = mailings.send_now(mailing)
            else:
                mailing = mailings.cancel(mailing)
        except mailings.MailingError as exc:
            flash(str(exc))
        if not wants_fragment():
            return redirect(url_for("mailings.show", mailing_id=mailing.id))
    return render_template("activation/_progress.html", oob_status=True, **_progress_context(mailing))


@mailings_bp.route("/<int:mailing_id>/send", methods=["POST"])
@role_required(*EDITORS)
def send(mailing_id):
    """Send now, or cancel (`cancel` in the form), from a plain form."""
    mailing = _get_mailing(mailing_id)
    try:
        if request.form.get("cancel"):
            mailings.cancel(mailing)
        else:
            mailings.send_now(mailing)
    except mailings.MailingError as exc:
        flash(str(exc))
    return redirect(url_for("mailings.show", mailing_id=mailing.id))


@mailings_bp.route("/<int:mailing_id>/schedule", methods=["POST"])
@role_required(*EDITORS)
def schedule(mailing_id):
    mailing = _get_mailing(mailing_id)
    if request.form.get("unschedule"):
        mailings.unschedule(mailing)
        flash(_("The mailing is a draft again."))
    else:
        at = _parse_local(request.form.get("scheduled_at"))
        try:
            if at is None:
                raise mailings.MailingError({"scheduled_at": [_("Enter a date and time.")]})
            mailings.schedule(mailing, at)
            flash(_("Mailing scheduled."))
        except mailings.MailingError as exc:
            flash(str(exc))
    return redirect(url_for("mailings.show", mailing_id=mailing.id))


@mailings_bp.route("/<int:mailing_id>/recipients")
@role_required(*EDITORS)
def recipients(mailing_id):
    mailing = _get_mailing(mailing_id)
    status = request.args.get("status") if request.args.get("status") in RECIPIENT_STATUSES else None
    total = mailings.counts(mailing.id)[status] if status else mailings.counts(mailing.id)["total"]
    page = Page(int_arg("page"), current_app.config["PER_PAGE"], total)
    page.rows = mailings.recipients(mailing.id, status, page.offset, page.per_page)
    return render_template(
        "activation/recipients.html", mailing=mailing, page=page, status=status, reason_label=mailings.reason_label
    )


@mailings_bp.route("/imported")
@role_required(*EDITORS)
def imported():
    """Mailings sent by other tools, known from imported message events, with their engagement."""
    page = page_of(mailings.imported(), int_arg("page"), current_app.config["PER_PAGE"])
    return render_template(
        "activation/imported.html", page=page, figures=mailings.event_counts([m.id for m in page.rows])
    )


@mailings_bp.route("/sms-outbox")
@role_required(*EDITORS)
def sms_outbox():
    page = page_of(OutboxSms.select().order_by(OutboxSms.id.desc()), int_arg("page"), current_app.config["PER_PAGE"])
    return render_template(
        "activation/sms_outbox.html", page=page, gateway=bool(current_app.config.get("SMS_GATEWAY_URL"))
    )


# --- triggers --------------------------------------------------------------------


def _get_trigger(trigger_id):
    return get_or_404(Trigger, Trigger.id == trigger_id)


def _delay_parts(seconds):
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds and seconds % size == 0:
            return seconds // size, unit
    return (seconds, "seconds") if seconds else (0, "days")


def _steps_from_form(form):
    """The steps as posted (steps-<i>-<field>), in order."""
    indexes = sorted({int(k.split("-")[1]) for k in form if k.startswith("steps-") and k.split("-")[1].isdigit()})
    fields = (
        "id",
        "action",
        "delay_value",
        "delay_unit",
        "only_members",
        "subject",
        "body",
        "text",
        "due_days",
        "user_id",
        "url",
        "secret",
        "channel",
    )
    return [{f: form.get(f"steps-{i}-{f}") for f in fields} for i in indexes]


def _steps_from_trigger(trigger):
    out = []
    for step in triggers.steps_of(trigger.id):
        value, unit = _delay_parts(step.delay_seconds)
        config = step.config or {}
        mailing = step.mailing if step.mailing_id else None
        out.append(
            {
                "id": step.id,
                "action": step.action,
                "delay_value": value,
                "delay_unit": unit,
                "only_members": step.only_members,
                "user_id": step.user_id,
                "subject": mailing.subject if mailing else "",
                "body": mailing.body if mailing and step.action == "email" else "",
                "text": mailing.body if mailing and step.action == "sms" else config.get("text", ""),
                "due_days": config.get("due_days", 1),
                "url": config.get("url", ""),
                "secret": config.get("secret", ""),
                "channel": config.get("channel", "email"),
                "mailing_id": step.mailing_id,
            }
        )
    return out


def _new_step(action="email"):
    return {
        "id": None,
        "action": action,
        "delay_value": 0,
        "delay_unit": "days",
        "only_members": True,
        "subject": "",
        "body": "",
        "text": "",
        "due_days": 1,
        "user_id": None,
        "url": "",
        "secret": "",
        "channel": "email",
    }


def _apply_op(steps, op):
    """Structural edits of the step list: add, remove-<i>, up-<i>."""
    if op == "add":
        steps.append(_new_step())
    elif op and op.startswith(("remove-", "up-")):
        name, _sep, index = op.partition("-")
        if index.isdigit() and int(index) < len(steps):
            i = int(index)
            if name == "remove":
                steps.pop(i)
            elif i > 0:
                steps[i - 1], steps[i] = steps[i], steps[i - 1]
    return steps


def _trigger_editor(trigger, data, errors=None, status=200):
    return render_template(
        "activation/trigger_edit.html",
        trigger=trigger,
        data=data,
        errors=errors or {},
        form=CsrfForm(),
        segments=_segments(),
        users=_users(),
        actions=STEP_ACTIONS,
        variables=VARIABLES,
        **(_start_existing_context(data) if trigger is None else {}),
    ), status


def _trigger_form_data():
    return {
        "name": request.form.get("name"),
        "segment_id": request.form.get("segment_id"),
        "event": request.form.get("event"),
        "active": request.form.get("active"),
        "steps": _steps_from_form(request.form),
        **{key: request.form.get(key) for key in limits.SETTINGS},
        "start_existing": request.form.get("start_existing") == "1",
    }


def _start_existing_context(data):
    """The offer to start a new entry trigger for the segment's current members, with their count."""
    segment_id = request.values.get("segment_id", type=int) if data is None else _int_or_none(data.get("segment_id"))
    event = request.values.get("event") if data is None else data.get("event")
    return {
        "offer_count": triggers.members_count(segment_id) if segment_id and event == "entered" else None,
        "start_existing": bool(data and data.get("start_existing")),
    }


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@triggers_bp.route("/start-existing")
@role_required(*EDITORS)
def trigger_start_existing():
    """The offer's fragment, as the segment or the event is chosen (htmx)."""
    return render_template("activation/_start_existing.html", **_start_existing_context(None))


@triggers_bp.route("/")
@role_required(*EDITORS)
def trigger_list():
    rows = list(Trigger.select(Trigger, Segment).join(Segment).order_by(Trigger.id.desc()))
    steps = {t.id: triggers.steps_of(t.id) for t in rows}
    return render_template(
        "activation/triggers.html", rows=rows, steps=steps, stats=triggers.stats([t.id for t in rows])
    )


def _save_trigger(trigger):
    data = _trigger_form_data()
    op = request.form.get("op") or "save"
    if op != "save":
        # A structural edit without htmx: the page again, nothing saved.
        data["steps"] = _apply_op(data["steps"], op)
        return _trigger_editor(trigger, data)
    if not CsrfForm().validate_on_submit():
        return _trigger_editor(trigger, data, {"name": [_("The form expired; try again.")]}, 400)
    try:
        trigger = triggers.save(data, trigger=trigger, user=g.user.id, start_existing=data["start_existing"])
    except triggers.TriggerError as exc:
        return _trigger_editor(trigger, data, exc.errors, 422)
    if trigger.started is not None:
        flash(
            ngettext(
                "Trigger saved and started for %(num)s customer already in the segment.",
                "Trigger saved and started for %(num)s customers already in the segment.",
                trigger.started,
                num=thousands(trigger.started),
            )
        )
    else:
        flash(_("Trigger saved."))
    return redirect(url_for("triggers.trigger_page", trigger_id=trigger.id))


@triggers_bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def trigger_new():
    if request.method == "POST":
        return _save_trigger(None)
    data = {
        "name": "",
        "segment_id": request.args.get("segment", type=int),
        "event": "entered",
        "active": True,
        "steps": [_new_step()],
        **DEFAULT_SETTINGS,
    }
    if request.args.get("starter") == "reactivation":
        data.update(name=_("Reactivation chain"), steps=[{**_new_step(), **s} for s in starters.reactivation_steps()])
    return _trigger_editor(None, data)


@triggers_bp.route("/starters/reactivation", methods=["POST"])
@role_required(*EDITORS)
def trigger_starter():
    """The reactivation chain: its segment of sleeping subscribers (made if missing),
    then the editor with the chain's steps to review before saving."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    segment = starters.sleeping_segment(user=g.user)
    return redirect(url_for("triggers.trigger_new", starter="reactivation", segment=segment.id))


@triggers_bp.route("/<int:trigger_id>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def trigger_edit(trigger_id):
    trigger = _get_trigger(trigger_id)
    if request.method == "POST":
        return _save_trigger(trigger)
    return _trigger_editor(
        trigger,
        {
            "name": trigger.name,
            "segment_id": trigger.segment_id,
            "event": trigger.event,
            "active": trigger.active,
            "steps": _steps_from_trigger(trigger),
            **_settings_of(trigger),
        },
    )


@triggers_bp.route("/steps", methods=["POST"])
@role_required(*EDITORS)
def trigger_steps():
    """The steps fragment after a structural edit or an action change (htmx)."""
    steps = _apply_op(_steps_from_form(request.form), request.form.get("op"))
    return render_template("activation/_steps.html", steps=steps, errors={}, users=_users(), actions=STEP_ACTIONS)


@triggers_bp.route("/<int:trigger_id>")
@role_required(*EDITORS)
def trigger_page(trigger_id):
    trigger = _get_trigger(trigger_id)
    executions = list(
        TriggerExecution.select(TriggerExecution, Customer)
        .join(Customer)
        .where(TriggerExecution.trigger == trigger)
        .order_by(TriggerExecution.id.desc())
        .limit(20)
    )
    steps = triggers.steps_of(trigger.id)
    calls = (
        list(
            WebhookCall.select()
            .where(WebhookCall.step.in_([s.id for s in steps]))
            .order_by(WebhookCall.id.desc())
            .limit(20)
        )
        if steps
        else []
    )
    return render_template(
        "activation/trigger.html",
        trigger=trigger,
        steps=steps,
        executions=executions,
        webhooks=triggers.webhook_states([e.id for e in executions if e.status == "done"]),
        calls=calls,
        stats=triggers.stats([trigger.id])[trigger.id],
        form=CsrfForm(),
    )


@triggers_bp.route("/<int:trigger_id>/delete", methods=["POST"])
@role_required(*EDITORS)
def trigger_delete(trigger_id):
    trigger = _get_trigger(trigger_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    triggers.delete(trigger)
    flash(_("Trigger deleted."))
    return redirect(url_for("triggers.trigger_list"))


# --- the account's campaign limits (admins) -------------------------------------


class CampaignLimitsForm(FlaskForm):
    """CSRF and the fields' data; `limits.clean_account_limits` checks them
    (the API checks the same way) and names the field in each message."""

    email_cap_messages = StringField(_l("Messages"))
    email_cap_days = StringField(_l("Days"))
    email_quiet_start = StringField(_l("Starts at"))
    email_quiet_end = StringField(_l("Ends at"))
    sms_cap_messages = StringField(_l("Messages"))
    sms_cap_days = StringField(_l("Days"))
    sms_quiet_start = StringField(_l("Starts at"))
    sms_quiet_end = StringField(_l("Ends at"))
    global_control_percent = StringField(_l("Share of customers, percent"))


def _limits_page(form, status=200, values=None):
    segment = Segment.get_or_none(Segment.code == limits.GLOBAL_SEGMENT)
    values = values or limits.account_limits()
    return render_template(
        "activation/limits.html",
        form=form,
        saved=limits.saved_at(),
        environment=limits.environment_limits(),
        rules={channel: limits.describe(channel, values) for channel in CHANNELS},
        global_segment=segment,
        tz=settings.tz(),
    ), status


@limits_bp.route("/campaign-limits", methods=["GET", "POST"])
@role_required("admin")
def campaign_limits():
    """Frequency caps and quiet hours per channel, and the global control group."""
    if request.method == "GET":
        values = limits.account_limits()
        return _limits_page(CampaignLimitsForm(data=limits.limit_fields(values)), values=values)
    form = CampaignLimitsForm()
    if not form.validate_on_submit():
        form.form_errors.append(_("The form expired; reload the page and try again."))
        return _limits_page(form, 400)
    try:
        limits.save_account_limits(form.data, user=g.user)
    except limits.LimitsError as exc:
        for name, messages in exc.errors.items():
            getattr(form, name).errors = list(messages)
        return _limits_page(form, 422)
    flash(_("Campaign limits saved. They apply from the next message sent."))
    return redirect(url_for("limits.campaign_limits"))


# --- tasks -----------------------------------------------------------------------


@tasks_bp.route("/")
def task_list():
    scope = request.args.get("scope") if request.args.get("scope") in tasks.SCOPES else tasks.default_scope(g.user)
    state = request.args.get("state") if request.args.get("state") in tasks.STATES else "open"
    number = int_arg("page")
    per_page = current_app.config["PER_PAGE"]
    rows, total = tasks.task_list(g.user, scope, state, (number - 1) * per_page, per_page)
    page = Page(number, per_page, total)
    page.rows = rows
    return render_template(
        "activation/tasks.html",
        page=page,
        scope=scope,
        state=state,
        form=CsrfForm(),
        sees_all=tasks.sees_all(g.user),
        today=datetime.date.today(),
    )


@tasks_bp.route("/<int:task_id>/done", methods=["POST"])
def task_done(task_id):
    task = get_or_404(Task, Task.id == task_id)
    try:
        tasks.set_done(task, request.form.get("done") == "1", g.user)
    except PermissionError:
        abort(403)
    if wants_fragment():
        task = Task.get_by_id(task_id)
        return render_template(
            "activation/_task_row.html",
            task=task,
            form=CsrfForm(),
            today=datetime.date.today(),
            compact=request.form.get("compact") == "1",
        )
    return redirect(safe_path(request.form.get("next")) or url_for("tasks.task_list"))


@tasks_bp.route("/new", methods=["POST"])
def task_new():
    customer = get_or_404(Customer, Customer.id == request.form.get("customer_id", type=int))
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        tasks.create(
            customer.id, request.form.get("title"), request.form.get("due_on"), request.form.get("assignee_id"), g.user
        )
        flash(_("Task added."))
    except tasks.TaskError as exc:
        flash(str(exc))
    return redirect(url_for("customers.card", customer_id=customer.id, _anchor="tasks"))


# --- tracking (public) --------------------------------------------------------------


@track_bp.route("/t/o/<token>.gif", endpoint="open")
def open_pixel(token):
    payload = _links().load(token, "o")
    if payload:
        tracking.record_open(*payload)
    # Always the pixel: a bad token learns nothing.
    return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store, max-age=0"})


@track_bp.route("/t/c/<token>")
def click(token):
    payload = _links().load(token, "c")
    if payload is None:
        abort(404)
    mailing_id, customer_id, url = payload
    tracking.record_click(mailing_id, customer_id)
    # Only to the URL inside the signed token: no open redirect.
    return redirect(url, code=302)


@track_bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token):
    payload = _links().load(token, "u")
    if payload is None:
        abort(404)
    mailing_id, customer_id, channel = payload
    form = CsrfForm()
    done = False
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        tracking.unsubscribe(mailing_id, customer_id, channel)
        done = True
    # A customer's page: in their language when known, else the account's (not the browser's).
    with language(tracking.customer_language(customer_id)):
        return render_template(
            "activation/unsubscribe.html",
            form=form,
            done=done,
            channel=channel,
            address=tracking.masked_address(customer_id, channel),
            test=not customer_id,
        )


@track_bp.route("/u/<token>/one-click", methods=["POST"])
@csrf.exempt
def one_click(token):
    """RFC 8058: mail clients POST "List-Unsubscribe=One-Click" here, without a session."""
    payload = _links().load(token, "u")
    if payload is None:
        abort(404)
    tracking.unsubscribe(*payload)
    with language(tracking.customer_language(payload[1])):
        return Response(_("You are unsubscribed."), mimetype="text/plain")


# --- wiring ----------------------------------------------------------------------


def init_app(app):
    for bp in (mailings_bp, triggers_bp, tasks_bp, track_bp, limits_bp):
        app.register_blueprint(bp)

    @app.template_global("customer_tasks")
    def _customer_tasks(customer_id):
        return tasks.for_customer(customer_id)

    @app.template_global("open_task_count")
    def _open_task_count():
        user = g.get("user")
        return tasks.open_count(user) if user else 0

    @app.template_global("task_overdue")
    def _task_overdue(task):
        return tasks.is_overdue(task)
