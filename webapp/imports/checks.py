"""What the import preview tells before an import starts.

`check_file` reads the first CHECK_ROWS rows by the column mapping with the
import's own parsers (webapp.imports.kinds, webapp.values) and counts, per
column, the values the import would reject (dates, emails, phones, numbers,
options), with the first examples and their line numbers.

`trigger_forecast` then tells which active triggers those rows would fire and
for how many customers: it writes the rows with the import's writer and
re-checks the touched customers against every dynamic segment with the
engine (webapp.segments.realtime), exactly as the import and the real-time
update will, inside a transaction it rolls back. Nothing is kept. Because it
writes, the worker runs it (`jobs.forecast_job`) and the preview shows the
counts when they are ready.

Flask-free.
"""

import peewee as pw

from .. import csvsafe
from ..db import database
from ..fields.service import get_field
from ..models import ChangedCustomer, SegmentChange, Trigger, TriggerStep, utcnow
from ..segments import realtime
from ..values import parse_phone
from .kinds import KINDS, WRITERS
from .reader import CsvStream, RecordError, read_header
from .service import Row, custom_value

CHECK_ROWS = 5000  # rows the preview checks and forecasts from
EXAMPLES = 3  # examples shown per column


def _converters(kind_name, header, mapping, tz):
    """[(index, target, convert)] of the mapped columns the preview can check
    (new custom fields do not exist yet: their columns are left out)."""
    kind = KINDS[kind_name]
    columns = kind.columns(tz)
    out = []
    for index, target in enumerate(mapping.get("columns") or []):
        if target is None or index >= len(header):
            continue
        if target in columns:
            out.append((index, target, columns[target]))
        elif target.startswith("custom.") and kind.entity:
            field = get_field(kind.entity, target[7:])
            if field is not None:
                out.append((index, target, lambda raw, f=field: custom_value(f, raw)))
    return out


def check_file(path, kind_name, encoding, delimiter, mapping, tz=None, limit=CHECK_ROWS):
    """{"invalid": [{"column", "target", "count", "examples": [{"line", "value", "reason"}]}],
    "rows_checked", "complete" (the whole file was read), "rows": [Row] that parse}."""
    invalid = {}
    good = []
    checked = 0
    complete = True
    with CsvStream(path, encoding, delimiter) as stream:
        _line, header = read_header(stream)
        converters = _converters(kind_name, header, mapping, tz)
        by_target = {target: index for index, target, _c in converters}
        required = [t for t in KINDS[kind_name].required if t in by_target]

        def flag(index, line, value, reason):
            entry = invalid.setdefault(
                index, {"column": header[index], "target": mapping["columns"][index], "count": 0, "examples": []}
            )
            entry["count"] += 1
            if len(entry["examples"]) < EXAMPLES:
                entry["examples"].append({"line": line, "value": value, "reason": reason})

        while True:
            try:
                line, end_line, cells = next(stream)
            except StopIteration:
                break
            except RecordError:
                continue
            if checked >= limit:
                complete = False
                break
            checked += 1
            values, ok = {}, True
            for index, target, convert in converters:
                raw = cells[index] if index < len(cells) else ""
                if raw and raw[0] == "'":
                    raw = csvsafe.restore(raw)
                try:
                    values[target] = convert(raw)
                except (ValueError, OverflowError) as exc:
                    flag(index, line, raw.strip(), str(exc))
                    ok = False
            if ok and "phone" in values and values.get("country") and not (values["phone"] or "+").startswith("+"):
                try:
                    values["phone"] = parse_phone(values["phone"], values["country"])
                except ValueError as exc:
                    flag(by_target["phone"], line, values["phone"], str(exc))
                    ok = False
            if ok and all(values.get(t) is not None for t in required):
                good.append(Row(line, end_line, cells, values))
    return {
        "invalid": [invalid[i] for i in sorted(invalid)],
        "rows_checked": checked,
        "complete": complete,
        "rows": good,
        "targets": [(target, convert) for _i, target, convert in converters],
    }


class _DryRun:
    """What an import writer needs from its engine, for the forecast."""

    class _Tracker:
        def earlier(self, items):
            return {}

    def __init__(self, targets, kind_name):
        entity = KINDS[kind_name].entity
        self.mapped = {t for t, _c in targets}
        self.custom_targets = [(t, get_field(entity, t[7:])) for t, _c in targets if t.startswith("custom.") and entity]
        self.tracker = self._Tracker()
        self.run = None

    def reject(self, row, target, reason):
        """A row whose references do not resolve is left out, as the import leaves it out."""


class _Rollback(Exception):
    pass


def forecast_triggers(kind_name):
    """The active triggers (with steps) an import of this kind may fire, in the forecast's order."""
    if kind_name == "segment":  # a new static segment: no trigger can read it yet
        return []
    return list(
        Trigger.select()
        .where(Trigger.active == True, Trigger.id.in_(TriggerStep.select(TriggerStep.trigger)))  # noqa: E712
        .order_by(Trigger.name, Trigger.id)
    )


def trigger_forecast(kind_name, checked):
    """[{"trigger", "count"}] for every active trigger: the customers whose
    entry (or exit) the checked rows would log, found by the engine. It writes
    and rolls back: run it in a job (`jobs.forecast_job`), never on a page view."""
    triggers = forecast_triggers(kind_name)
    rows = checked["rows"]
    if not triggers or not rows:
        return [{"trigger": t, "count": 0} for t in triggers]
    counts = {}
    try:
        with database.atomic():
            started = utcnow()
            last = SegmentChange.select(pw.fn.MAX(SegmentChange.id)).scalar() or 0
            WRITERS[kind_name](_DryRun(checked["targets"], kind_name)).write(rows, True)
            touched = [
                cid
                for (cid,) in ChangedCustomer.select(ChangedCustomer.customer)
                .where(ChangedCustomer.changed_at >= started)
                .tuples()
            ]
            realtime.recheck_customers(touched)
            counts = dict(
                (((segment, change), n))
                for segment, change, n in SegmentChange.select(
                    SegmentChange.segment, SegmentChange.change, pw.fn.COUNT(SegmentChange.id)
                )
                .where(SegmentChange.id > last)
                .group_by(SegmentChange.segment, SegmentChange.change)
                .tuples()
            )
            raise _Rollback()
    except _Rollback:
        pass
    return [{"trigger": t, "count": counts.get((t.segment_id, t.event), 0)} for t in triggers]
