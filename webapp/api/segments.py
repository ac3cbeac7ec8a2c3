"""Segment endpoints: CRUD through the segment service, recompute and runs,
stored members and the entry/exit history (keyset pages), and previews
through the engine."""

from flask import g, jsonify, url_for

from ..engine import DefinitionError, count, members_query, parse_definition
from ..i18n import _
from ..models import SEGMENT_TYPES, Customer, Segment, SegmentChange, SegmentMember, SegmentRun, SegmentVersion, User
from ..segments import service
from ..segments.runs import RunSkipped, request_run
from ..segments.versions import versions_query
from ..values import parse_datetime
from .core import (
    READ_ROLES,
    account_tz,
    bp,
    cursor_arg,
    datetime_arg,
    iso,
    json_body,
    json_reply,
    json_response,
    limit_arg,
    page,
    require_role,
    require_write,
    text_param,
)
from .customers import customer_rows, customers_json, fetch
from .errors import conflict, invalid, not_found

SAMPLE_SIZE = 20
SEGMENT_KEYS = ("code", "name", "type", "active", "in_analytics", "definition", "interval_minutes")


def segment_json(segment, creator_email=None):
    return {
        "code": segment.code,
        "name": segment.name,
        "type": segment.type,
        "active": segment.active,
        "in_analytics": segment.in_analytics,
        "definition": segment.definition,
        "size": segment.size,
        "computed_at": iso(segment.computed_at),
        "created_at": iso(segment.created_at),
        "created_by": creator_email,
        "system": segment.system,
        "source": segment.source,
        "interval_minutes": segment.interval_minutes,
    }


def _creator(segment):
    if segment.created_by_id is None:
        return None
    return User.select(User.email).where(User.id == segment.created_by_id).scalar()


def _get_segment(code):
    segment = Segment.get_or_none(Segment.code == text_param(code)) if text_param(code) else None
    if segment is None:
        raise not_found(_("No segment with the code “%(code)s”.", code=code))
    return segment


def definition_details(errors):
    """DefinitionError.errors as API details: each names its block and filter."""
    return [
        {
            "field": "definition",
            "block": e.get("block"),
            "filter": e.get("filter"),
            "agg": e.get("agg"),
            "message": e["message"],
        }
        for e in errors
    ]


def _check_types(data, *, partial):
    """Problems with the JSON types of a segment body (the service checks the values)."""
    problems = []
    for key in data:
        if key not in SEGMENT_KEYS:
            problems.append(
                {"field": key, "message": _("unknown field (fields: %(names)s)", names=", ".join(SEGMENT_KEYS))}
            )
    expect = {"code": str, "name": str, "type": str, "active": bool, "in_analytics": bool, "definition": dict}
    for key, kind in expect.items():
        if key not in data:
            if not partial and key in ("code", "name", "definition"):
                problems.append({"field": key, "message": _("a value is required")})
            continue
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            label = {str: _("a text"), bool: _("true or false"), dict: _("an object")}[kind]
            problems.append({"field": key, "message": _("must be %(what)s", what=label)})
    for key in ("code", "name"):
        if isinstance(data.get(key), str) and len(data[key]) > 255:
            problems.append({"field": key, "message": _("at most 255 characters")})
    if "type" in data and isinstance(data["type"], str) and data["type"] not in SEGMENT_TYPES:
        problems.append({"field": "type", "message": _("must be “static” or “dynamic”")})
    interval = data.get("interval_minutes")
    if interval is not None and (
        not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 525600
    ):
        problems.append(
            {"field": "interval_minutes", "message": _("must be a whole number of minutes from 1 to 525600, or null")}
        )
    if problems:
        raise invalid(problems[0]["field"] + ": " + problems[0]["message"], problems)


def _service_error(exc):
    details = []
    for field, messages in exc.errors.items():
        if field == "definition" and exc.details:
            details.extend(definition_details(exc.details))
        else:
            details.extend({"field": field, "message": m} for m in messages)
    if exc.status == 409:
        return conflict(str(exc), details)
    return invalid(str(exc), details)


# --- CRUD ----------------------------------------------------------------------------


@bp.get("/segments")
def list_segments():
    require_role(*READ_ROLES)
    segments = list(Segment.select().order_by(Segment.code))
    emails = (
        dict(
            User.select(User.id, User.email)
            .where(User.id.in_({s.created_by_id for s in segments if s.created_by_id}))
            .tuples()
        )
        if segments
        else {}
    )
    return jsonify({"items": [segment_json(s, emails.get(s.created_by_id)) for s in segments]})


@bp.post("/segments")
def create_segment():
    require_write()
    data = json_body()
    _check_types(data, partial=False)
    try:
        segment = service.create_segment(data, user=g.user)
    except service.SegmentError as exc:
        raise _service_error(exc) from None
    return json_reply(segment_json(segment, g.user.email), 201, url_for("api.get_segment", code=segment.code))


@bp.get("/segments/<code>")
def get_segment(code):
    require_role(*READ_ROLES)
    segment = _get_segment(code)
    return jsonify(segment_json(segment, _creator(segment)))


@bp.put("/segments/<code>")
def update_segment(code):
    require_write()
    segment = _get_segment(code)
    data = json_body()
    _check_types(data, partial=True)
    merged = {
        "code": segment.code,
        "name": segment.name,
        "type": segment.type,
        "active": segment.active,
        "in_analytics": segment.in_analytics,
        "definition": segment.definition,
        "interval_minutes": segment.interval_minutes,
    }
    merged.update(data)
    try:
        segment = service.update_segment(segment, merged, user=g.user)
    except service.SegmentError as exc:
        raise _service_error(exc) from None
    return jsonify(segment_json(segment, _creator(segment)))


@bp.delete("/segments/<code>")
def delete_segment(code):
    require_write()
    segment = _get_segment(code)
    try:
        service.delete_segment(segment)
    except service.SegmentError as exc:
        raise _service_error(exc) from None
    return "", 204


# --- runs ---------------------------------------------------------------------------------


def run_json(run, code):
    return {
        "id": run.id,
        "segment": code,
        "status": run.status,
        "size": run.size,
        "entered": run.entered,
        "exited": run.exited,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
        "trigger": run.trigger,
        "created_at": iso(run.created_at),
    }


@bp.post("/segments/<code>/recompute")
def recompute(code):
    require_write()
    segment = _get_segment(code)
    try:
        run = request_run(segment, trigger="user", user=g.user)
    except RunSkipped as exc:
        raise conflict(str(exc)) from None
    return json_reply({"run_id": run.id}, 202, url_for("api.get_run", run_id=run.id))


@bp.get("/runs/<int:run_id>")
def get_run(run_id):
    require_role(*READ_ROLES)
    run = (
        (
            SegmentRun.select(SegmentRun, Segment.code.alias("segment_code"))
            .join(Segment)
            .where(SegmentRun.id == run_id)
            .objects()
            .first()
        )
        if run_id < 2**63
        else None
    )
    if run is None:
        raise not_found(_("No run with the id %(id)s.", id=run_id))
    return jsonify(run_json(run, run.segment_code))


# --- members and history ---------------------------------------------------------------------


@bp.get("/segments/<code>/members")
def members(code):
    require_role(*READ_ROLES)
    limit = limit_arg()
    after = cursor_arg()
    segment = _get_segment(code)
    query = customer_rows(
        SegmentMember.select().join(Customer, on=(SegmentMember.customer == Customer.id)), member=True
    ).where(SegmentMember.segment == segment.id)
    if after is not None:
        query = query.where(SegmentMember.customer > after)
    rows = fetch(query.order_by(SegmentMember.customer).limit(limit + 1))
    rows, next_cursor = page(rows, limit, lambda row: row[0])
    return json_response({"items": customers_json(rows), "next_cursor": next_cursor})


@bp.get("/segments/<code>/history")
def history(code):
    """Entries and exits in the order they were logged; `since`/`until` bound `at` (inclusive)."""
    require_role(*READ_ROLES)
    limit = limit_arg()
    after = cursor_arg()
    since, until = datetime_arg("since"), datetime_arg("until")
    segment = _get_segment(code)
    query = (
        SegmentChange.select(
            SegmentChange.id, Customer.external_id, SegmentChange.change, SegmentChange.at, SegmentChange.run
        )
        .join(Customer)
        .where(SegmentChange.segment == segment.id)
    )
    if since is not None:
        query = query.where(SegmentChange.at >= since)
    if until is not None:
        query = query.where(SegmentChange.at <= until)
    if after is not None:
        query = query.where(SegmentChange.id > after)
    rows = list(query.order_by(SegmentChange.id).limit(limit + 1).tuples())
    rows, next_cursor = page(rows, limit, lambda row: row[0])
    items = [
        {"external_id": ext, "change": change, "at": iso(at), "run_id": run_id} for _id, ext, change, at, run_id in rows
    ]
    return jsonify({"items": items, "next_cursor": next_cursor})


@bp.get("/segments/<code>/versions")
def versions(code):
    """The saved versions of the definition, newest first (keyset on the number)."""
    require_role(*READ_ROLES)
    limit = limit_arg()
    after = cursor_arg()
    segment = _get_segment(code)
    query = versions_query(segment.id)
    if after is not None:
        query = query.where(SegmentVersion.number < after)
    rows, next_cursor = page(list(query.limit(limit + 1)), limit, lambda v: v.number)
    items = [
        {
            "number": v.number,
            "definition": v.definition,
            "type": v.type,
            "interval_minutes": v.interval_minutes,
            "created_at": iso(v.created_at),
            "created_by": v.created_by.email if v.created_by_id else None,
            "restored_from": v.restored_from,
            "size": v.size,
            "computed_at": iso(v.computed_at),
        }
        for v in rows
    ]
    return jsonify({"items": items, "next_cursor": next_cursor})


# --- preview ---------------------------------------------------------------------------------


@bp.post("/segments/preview")
def preview():
    require_role(*READ_ROLES)
    data = json_body()
    problems = [
        {"field": key, "message": _("unknown field (fields: definition, at)")}
        for key in data
        if key not in ("definition", "at")
    ]
    if not isinstance(data.get("definition"), dict):
        problems.append({"field": "definition", "message": _("an object is required")})
    at = None
    raw_at = data.get("at")
    if raw_at is not None:
        try:
            if not isinstance(raw_at, str):
                raise ValueError(_("must be an ISO 8601 date and time"))
            at = parse_datetime(raw_at, account_tz())
        except (ValueError, OverflowError) as exc:
            problems.append({"field": "at", "message": str(exc)})
    if problems:
        raise invalid(problems[0]["field"] + ": " + problems[0]["message"], problems)
    try:
        definition = parse_definition(data["definition"])
    except DefinitionError as exc:
        raise invalid(str(exc), definition_details(exc.errors)) from None
    tz = str(account_tz() or "UTC")
    total = count(definition, at=at, tz=tz)
    sample_ids = [c.id for c in members_query(definition, at=at, tz=tz).limit(SAMPLE_SIZE)]
    rows = (
        fetch(customer_rows(Customer.select()).where(Customer.id.in_(sample_ids)).order_by(Customer.id))
        if sample_ids
        else []
    )
    return jsonify({"count": total, "sample": customers_json(rows)})
