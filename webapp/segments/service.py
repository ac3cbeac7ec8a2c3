"""Segments as marketers manage them: create, edit, delete, recompute.

One service for the builder pages and the REST API. Definitions are checked
by the engine and stored in its canonical JSON; saving hands the segment to
the computation queue.
"""

import re

from ..audit import service as audit
from ..db import database
from ..engine import DefinitionError, dependants_of, parse_definition, to_json
from ..i18n import _
from ..models import SEGMENT_TYPES, Segment, SegmentChange, SegmentRun, utcnow
from ..text import slug
from .runs import RunSkipped, request_run
from .versions import VERSIONED, get_version, has_versions, record_version

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Codes that name pages under /segments/: a segment with one would be unreachable.
RESERVED_CODES = {"new", "code", "builder", "preview", "words", "options", "customers", "overlap"}


class SegmentError(ValueError):
    """Bad input: `errors` maps a form field (or "definition") to messages;
    `status` is the HTTP status an API answers with (422, or 409 for conflicts)."""

    def __init__(self, errors, status=422, details=None):
        self.errors = errors
        self.status = status
        self.details = details
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


def free_code(name, fallback=""):
    """A segment code made from a name that no segment has: "Мужчины к 8 марта" ->
    "muzhchiny_k_8_marta", "Hà Nội" -> "ha_noi"; `fallback` when the name gives
    none ("" stays ""); then `_2`, `_3`... while it is taken or reserved, within 63
    characters."""
    base = slug(name) or fallback
    if not base:
        return ""
    code, n = base, 1
    while code in RESERVED_CODES or Segment.select().where(Segment.code == code).exists():
        n += 1
        suffix = f"_{n}"
        code = base[: 63 - len(suffix)] + suffix
    return code


def membership_definition(include, exclude=None):
    """A definition over stored memberships, in the engine's canonical spelling:
    members of segment `include` and, with `exclude`, not of that one. With
    `include` alone and the segment's own code it is the definition of a segment
    whose members are stored (a list, a snapshot, an RFM class)."""
    values = [{"value": include, "exclude": False}]
    if exclude:
        values.append({"value": exclude, "exclude": True})
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {"entity": "segment", "match": "all", "filters": [{"field": "segment", "op": "in", "values": values}]}
        ],
    }


def check_code(code, *, exclude_id=None):
    """Messages about a segment code (empty when it is fine)."""
    code = (code or "").strip()
    if not code:
        return [_("Enter a code.")]
    if not CODE_RE.match(code):
        return [_("Use lowercase letters, digits, “_” and “-” only (up to 63), e.g. birthday_soon.")]
    if code in RESERVED_CODES:
        return [_("“%(code)s” is a reserved word here; choose another code.", code=code)]
    query = Segment.select().where(Segment.code == code)
    if exclude_id is not None:
        query = query.where(Segment.id != exclude_id)
    if query.exists():
        return [_("The code “%(code)s” is taken by another segment.", code=code)]
    return []


def _clean(data, *, segment=None):
    errors = {}
    code = (data.get("code") or "").strip()
    name = (data.get("name") or "").strip()
    type_ = data.get("type") or "dynamic"
    if segment is None or code != segment.code:
        messages = check_code(code, exclude_id=segment.id if segment else None)
        if messages:
            errors["code"] = messages
    if segment is not None and segment.system and code != segment.code:
        errors["code"] = [_("A system segment keeps its code.")]
    if not name:
        errors["name"] = [_("Enter a name.")]
    if type_ not in SEGMENT_TYPES:
        errors["type"] = [_("Choose static or dynamic.")]
    details = None
    try:
        # A stored-member segment's definition names itself (see update_segment): no cycle check.
        stored = segment is not None and segment.source != "definition"
        definition = parse_definition(
            data.get("definition") or {"version": 1, "blocks": []}, segment_code=None if stored else (code or None)
        )
    except DefinitionError as exc:
        errors["definition"] = [e["message"] for e in exc.errors]
        details = exc.errors
        definition = None
    if errors:
        status = 409 if "code" in errors and any("taken" in m for m in errors["code"]) and len(errors) == 1 else 422
        raise SegmentError(errors, status=status, details=details)
    interval = data.get("interval_minutes")
    return {
        "code": code,
        "name": name,
        "type": type_,
        "active": bool(data.get("active", True)),
        "in_analytics": bool(data.get("in_analytics", False)),
        "definition": to_json(definition),
        "interval_minutes": int(interval) if interval not in (None, "") else None,
    }


def _queue(segment, trigger, user):
    try:
        return request_run(segment, trigger=trigger, user=user)
    except RunSkipped:
        return None


def create_segment(data, *, user=None):
    """Create a segment from a dict of fields; queues its first computation."""
    fields = _clean(data)
    with database.atomic():
        segment = Segment.create(created_by=user, **fields)
        record_version(segment, user=user)
        audit.record(user, "segment.create", segment, {"type": segment.type})
    if segment.type == "static" or segment.active:
        _queue(segment, "created", user)
    return segment


def update_segment(segment, data, *, user=None, restored_from=None):
    """Change a segment; a changed definition (or type) queues it again.

    A changed definition, type or interval is kept as a new version (so is a
    restore: `restored_from`, the number of the version it copies)."""
    if segment.source != "definition":
        # a list or RFM class segment: its members are stored, not evaluated
        data = dict(data, definition=segment.definition, type=segment.type)
    fields = _clean(data, segment=segment)
    changed = fields["definition"] != segment.definition or fields["type"] != segment.type
    versioned = restored_from is not None or any(fields[k] != getattr(segment, k) for k in VERSIONED)
    activated = fields["active"] and not segment.active
    audit.record(user, "segment.update", segment, {"definition_changed": changed})
    with database.atomic():
        if versioned and not has_versions(segment.id):
            # made without a version (system, RFM and list segments): keep what it was first
            record_version(segment, at=segment.updated_at)
        for key, value in fields.items():
            setattr(segment, key, value)
        segment.updated_at = utcnow()
        segment.save()
        if versioned:
            record_version(segment, user=user, restored_from=restored_from)
    if (changed or activated) and segment.source == "definition":
        _queue(segment, "edited", user)
    return segment


def restore_version(segment, number, *, user=None):
    """Make version `number`'s definition, type and interval the segment's
    again, as a new version; SegmentError(404) when there is no such version,
    (422) when the definition no longer passes the engine's checks."""
    version = get_version(segment.id, number)
    if version is None:
        raise SegmentError({"version": [_("Version %(number)s does not exist.", number=number)]}, status=404)
    data = {
        "code": segment.code,
        "name": segment.name,
        "active": segment.active,
        "in_analytics": segment.in_analytics,
        "definition": version.definition,
        "type": version.type,
        "interval_minutes": version.interval_minutes,
    }
    return update_segment(segment, data, user=user, restored_from=version.number)


def dependants(segment):
    """Segments whose definition reads this one's membership."""
    return dependants_of(segment.code, Segment.select().where(Segment.id != segment.id))


def delete_segment(segment):
    """Delete a segment with its members and history; SegmentError(409) when
    it is a system segment or another segment uses it."""
    if segment.system:
        raise SegmentError({"segment": [_("System segments cannot be deleted.")]}, status=409)
    users = dependants(segment)
    if users:
        raise SegmentError(
            {
                "segment": [
                    _(
                        "Used by: %(names)s. Remove it from their definitions first.",
                        names=", ".join(s.name for s in users),
                    )
                ]
            },
            status=409,
        )
    with database.atomic():
        audit.record(None, "segment.delete", segment)
        # The log first (by its segment index), then the runs: the recursive delete then clears
        # the run ids of no log row. On PostgreSQL `segment_change.run_id` has no index (0025):
        # looking for a live run's rows there would read the whole log.
        SegmentChange.delete().where(SegmentChange.segment == segment.id).execute()
        SegmentRun.delete().where(SegmentRun.segment == segment.id).execute()
        segment.delete_instance(recursive=True)
