"""Segment definitions as typed objects: parsing, validation, canonical JSON.

`parse_definition` checks a definition against the spec
(shared/spec/segment-definition.md) and the field catalogue read from
the database, and collects every problem with a message naming the block and
filter ("Block 1 (Customer), filter 3: Unknown field “foo”"). Nothing is
guessed or silently fixed: an unknown key, field, option or segment code, a
value of the wrong type or a malformed date is an error.

Choices where the spec leaves room (made here, mirrored by the tests):
- `ignore_year` applies to date fields only. On a datetime field (e.g.
  `created_at`) it is rejected with a message: the spec lists it for dates, and
  the month and day of a datetime depend on the account time zone, which
  neither database can compute portably and index-friendly.
- `between` needs at least one of `from`/`to`, `relative` at least one of
  `from_days`/`to_days`; `from` after `to` is an error, except for
  `between` + `ignore_year`, where it wraps the new year. A missing bound of
  `between` + `ignore_year` is the start (01-01) or end (12-31) of the year.
  `relative` + `ignore_year` needs both bounds; when they span a year or more
  every month and day is inside.
- `in` needs at least one value; empty blocks: a customer block without
  filters holds for everyone (like a record block without filters, which holds
  when the customer has any record), a segment block needs a segment.
- Numbers are JSON numbers (not strings); money has at most two decimals;
  day counts are whole numbers within ±73,000 days.
- A condition list (`having`) is for record blocks only; `having_match`
  without conditions is kept but has no effect.
"""

import datetime
import decimal
import json
import re
from dataclasses import dataclass

from ..i18n import _
from ..models import Segment
from ..text import fold
from .catalogue import AGGREGATES_BY_ENTITY, ALL_AGGREGATES, ALL_OPS, ENTITIES, RECORD_ENTITIES, entity_label
from .catalogue import catalogue as load_catalogue

VERSION = 1
MATCHES = ("all", "any")
MAX_DAYS = 73000
MAX_NUMBER = decimal.Decimal(10) ** 15
MAX_MONEY = decimal.Decimal(10) ** 12

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MD_RE = re.compile(r"^(\d{2})-(\d{2})$")

OP_KEYS = {
    "in": ("values",),
    "contains": ("value",),
    "between": ("from", "to", "ignore_year"),
    "relative": ("from_days", "to_days", "ignore_year"),
    "is": ("value",),
    "is_empty": (),
    "is_not_empty": (),
}


class DefinitionError(Exception):
    """A definition that breaks the spec. `.errors`: one dict per problem,
    {"block": int|None, "filter": int|None, "agg": int|None, "message": str}
    (1-based positions; `message` is complete and names block and filter)."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(e["message"] for e in self.errors))

    @property
    def messages(self):
        return [e["message"] for e in self.errors]


@dataclass(frozen=True)
class Choice:
    """One value of an `in` filter."""

    value: str
    exclude: bool = False


@dataclass(frozen=True)
class Filter:
    """A filter on a field (`field` set) or a condition on an aggregate (`agg` set).

    Bounds are typed: numbers as Decimal (money in currency units), dates as
    datetime.date, `between` + `ignore_year` bounds as month*100+day.
    """

    op: str
    field: str = None
    agg: str = None
    values: tuple = ()
    value: object = None
    from_: object = None
    to: object = None
    from_days: int = None
    to_days: int = None
    ignore_year: bool = False

    @property
    def name(self):
        return self.field if self.field is not None else self.agg


@dataclass(frozen=True)
class Block:
    entity: str
    match: str = "all"
    filters: tuple = ()
    having: tuple = ()
    having_match: str = "all"


@dataclass(frozen=True)
class Definition:
    match: str = "all"
    blocks: tuple = ()
    version: int = VERSION


class Errors:
    def __init__(self):
        self.items = []

    def add(self, message, block=None, filter=None, agg=None, entity=None):
        if block is not None:
            label = entity_label(entity) if entity in ENTITIES else None
            if filter is not None:
                where = _("filter %(n)d", n=filter)
            elif agg is not None:
                where = _("condition %(n)d", n=agg)
            else:
                where = None
            if label and where:
                message = _(
                    "Block %(n)d (%(entity)s), %(where)s: %(text)s", n=block, entity=label, where=where, text=message
                )
            elif label:
                message = _("Block %(n)d (%(entity)s): %(text)s", n=block, entity=label, text=message)
            elif where:
                message = _("Block %(n)d, %(where)s: %(text)s", n=block, where=where, text=message)
            else:
                message = _("Block %(n)d: %(text)s", n=block, text=message)
        self.items.append({"block": block, "filter": filter, "agg": agg, "message": message})


class _Invalid(Exception):
    """One problem with one filter: stops checking that filter."""


def _is_number(value):
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def _number(value, key, info):
    if not _is_number(value):
        raise _Invalid(_("%(label)s: “%(key)s” must be a number", label=info.label, key=key))
    if isinstance(value, float):
        value = decimal.Decimal(repr(value))
    value = decimal.Decimal(value)
    if not value.is_finite():
        raise _Invalid(_("%(label)s: “%(key)s” must be a number", label=info.label, key=key))
    limit = MAX_MONEY if info.money else MAX_NUMBER
    if abs(value) >= limit:
        raise _Invalid(_("%(label)s: “%(key)s” is too large", label=info.label, key=key))
    if info.money and (value * 100) != (value * 100).to_integral_value():
        raise _Invalid(_("%(label)s: “%(key)s” has more than two decimals", label=info.label, key=key))
    return value


def _date(value, key, info):
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Invalid(
        _(
            "%(label)s: “%(key)s” is not a date (use YYYY-MM-DD): %(value)s",
            label=info.label,
            key=key,
            value=json.dumps(value, ensure_ascii=False, default=str),
        )
    )


def _month_day(value, key, info):
    match = _MD_RE.match(value.strip()) if isinstance(value, str) else None
    if match:
        month, day = int(match.group(1)), int(match.group(2))
        try:
            datetime.date(2000, month, day)  # a leap year: 02-29 is a month and day
            return month * 100 + day
        except ValueError:
            pass
    raise _Invalid(
        _(
            "%(label)s: “%(key)s” is not a month and day (use MM-DD, with ignore year): %(value)s",
            label=info.label,
            key=key,
            value=json.dumps(value, ensure_ascii=False, default=str),
        )
    )


def _days(value, key, info):
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(_("%(label)s: “%(key)s” must be a whole number of days", label=info.label, key=key))
    if abs(value) > MAX_DAYS:
        raise _Invalid(
            _("%(label)s: “%(key)s” must be between -%(max)d and %(max)d days", label=info.label, key=key, max=MAX_DAYS)
        )
    return value


def _parse_filter(raw, info, is_agg, entity):
    """A Filter from one raw filter dict whose field/agg is `info`; raises _Invalid."""
    name_key = "agg" if is_agg else "field"
    op = raw.get("op")
    if op is None:
        raise _Invalid(_("%(label)s: choose an operator", label=info.label))
    if op not in ALL_OPS:
        raise _Invalid(_("%(label)s: unknown operator “%(op)s”", label=info.label, op=op))
    if op not in info.ops:
        raise _Invalid(
            _(
                "%(label)s: “%(op)s” does not apply (use one of: %(ops)s)",
                label=info.label,
                op=op,
                ops=", ".join(info.ops),
            )
        )
    for key in raw:
        if key not in (name_key, "op") + OP_KEYS[op]:
            raise _Invalid(_("%(label)s: unexpected “%(key)s” with “%(op)s”", label=info.label, key=key, op=op))
    name = {"field": None, "agg": None}
    name[name_key] = raw[name_key]

    if op == "in":
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise _Invalid(_("%(label)s: choose at least one value", label=info.label))
        choices = []
        for item in values:
            if not isinstance(item, dict) or "value" not in item or set(item) - {"value", "exclude"}:
                raise _Invalid(
                    _('%(label)s: each value must be {"value": ..., "exclude": true|false}', label=info.label)
                )
            value, exclude = item["value"], item.get("exclude", False)
            if not isinstance(exclude, bool):
                raise _Invalid(_("%(label)s: “exclude” must be true or false", label=info.label))
            if not isinstance(value, str) or fold(value) is None:
                raise _Invalid(_("%(label)s: each value must be non-empty text", label=info.label))
            if info.type == "enum" and fold(value) not in {fold(o) for o in info.options}:
                raise _Invalid(
                    _(
                        "%(label)s: “%(value)s” is not an option (options: %(options)s)",
                        label=info.label,
                        value=value,
                        options=", ".join(info.options),
                    )
                )
            choices.append(Choice(value=value, exclude=exclude))
        return Filter(op=op, values=tuple(choices), **name)

    if op == "contains":
        value = raw.get("value")
        if not isinstance(value, str) or fold(value) is None:
            raise _Invalid(_("%(label)s: “value” must be non-empty text", label=info.label))
        return Filter(op=op, value=value, **name)

    if op == "is":
        value = raw.get("value")
        if not isinstance(value, bool):
            raise _Invalid(_("%(label)s: “value” must be true or false", label=info.label))
        return Filter(op=op, value=value, **name)

    if op in ("is_empty", "is_not_empty"):
        return Filter(op=op, **name)

    ignore_year = raw.get("ignore_year", False)
    if not isinstance(ignore_year, bool):
        raise _Invalid(_("%(label)s: “ignore_year” must be true or false", label=info.label))
    if ignore_year and info.type != "date":
        raise _Invalid(
            _("%(label)s: “ignore year” applies to dates only, not to dates with a time", label=info.label)
            if info.type == "datetime"
            else _("%(label)s: “ignore year” applies to dates only", label=info.label)
        )

    if op == "between":
        lo, hi = raw.get("from"), raw.get("to")
        if lo is None and hi is None:
            raise _Invalid(_("%(label)s: set “from” or “to”", label=info.label))
        if ignore_year:
            lo = None if lo is None else _month_day(lo, "from", info)
            hi = None if hi is None else _month_day(hi, "to", info)
        elif info.type == "number":
            lo = None if lo is None else _number(lo, "from", info)
            hi = None if hi is None else _number(hi, "to", info)
        else:
            lo = None if lo is None else _date(lo, "from", info)
            hi = None if hi is None else _date(hi, "to", info)
        if not ignore_year and lo is not None and hi is not None and lo > hi:
            raise _Invalid(_("%(label)s: “from” is after “to”", label=info.label))
        return Filter(op=op, from_=lo, to=hi, ignore_year=ignore_year, **name)

    # relative
    lo, hi = raw.get("from_days"), raw.get("to_days")
    if lo is None and hi is None:
        raise _Invalid(_("%(label)s: set “from_days” or “to_days”", label=info.label))
    lo = None if lo is None else _days(lo, "from_days", info)
    hi = None if hi is None else _days(hi, "to_days", info)
    if ignore_year and (lo is None or hi is None):
        raise _Invalid(_("%(label)s: with “ignore year” set both “from_days” and “to_days”", label=info.label))
    if lo is not None and hi is not None and lo > hi:
        raise _Invalid(_("%(label)s: “from_days” is after “to_days”", label=info.label))
    return Filter(op=op, from_days=lo, to_days=hi, ignore_year=ignore_year, **name)


def _label_of(name):
    return name if isinstance(name, str) else json.dumps(name, ensure_ascii=False, default=str)


def _parse_block(raw, n, cat, errors):
    if not isinstance(raw, dict):
        errors.add(_("a block must be an object"), block=n)
        return None
    entity = raw.get("entity")
    if entity not in ENTITIES:
        if entity is None:
            errors.add(_("choose what the block is about (entity)"), block=n)
        else:
            errors.add(
                _(
                    "unknown block type “%(entity)s” (use one of: %(entities)s)",
                    entity=_label_of(entity),
                    entities=", ".join(ENTITIES),
                ),
                block=n,
            )
        return None
    ok = True

    def block_error(message):
        nonlocal ok
        ok = False
        errors.add(message, block=n, entity=entity)

    allowed = {"entity", "match", "filters"}
    if entity in RECORD_ENTITIES:
        allowed |= {"having", "having_match"}
    for key in raw:
        if key not in allowed:
            if key in ("having", "having_match"):
                block_error(
                    _("conditions on records (“%(key)s”) apply to order, deal, message and event blocks only", key=key)
                )
            else:
                block_error(_("unexpected “%(key)s”", key=key))
    match = raw.get("match", "all")
    if match not in MATCHES:
        block_error(_("“match” must be “all” or “any”"))
    having_match = raw.get("having_match", "all")
    if having_match not in MATCHES:
        block_error(_("“having_match” must be “all” or “any”"))

    filters = []
    raw_filters = raw.get("filters", [])
    if not isinstance(raw_filters, list):
        block_error(_("“filters” must be a list"))
        raw_filters = []
    for k, rf in enumerate(raw_filters, 1):
        try:
            if not isinstance(rf, dict):
                raise _Invalid(_("a filter must be an object"))
            if "field" not in rf:
                raise _Invalid(
                    _("choose a field") if "agg" not in rf else _("aggregates (“agg”) go in “having”, not in “filters”")
                )
            info = cat.field(entity, rf["field"]) if isinstance(rf["field"], str) else None
            if info is None:
                raise _Invalid(_("Unknown field “%(field)s”", field=_label_of(rf["field"])))
            filters.append(_parse_filter(rf, info, False, entity))
        except _Invalid as exc:
            ok = False
            errors.add(str(exc), block=n, filter=k, entity=entity)

    having = []
    raw_having = raw.get("having", [])
    if entity in RECORD_ENTITIES:
        if not isinstance(raw_having, list):
            block_error(_("“having” must be a list"))
            raw_having = []
        for k, rh in enumerate(raw_having, 1):
            try:
                if not isinstance(rh, dict) or "agg" not in rh:
                    raise _Invalid(_("choose an aggregate (count, sum, avg, quantity, first_at, last_at)"))
                name = rh["agg"]
                if name not in ALL_AGGREGATES:
                    raise _Invalid(_("Unknown aggregate “%(agg)s”", agg=_label_of(name)))
                info = cat.aggregate(entity, name)
                if info is None:
                    owners = ", ".join(entity_label(e) for e, aggs in AGGREGATES_BY_ENTITY.items() if name in aggs)
                    raise _Invalid(
                        _("“%(agg)s” does not apply to this block (it applies to: %(owners)s)", agg=name, owners=owners)
                    )
                having.append(_parse_filter(rh, info, True, entity))
            except _Invalid as exc:
                ok = False
                errors.add(str(exc), block=n, agg=k, entity=entity)

    if entity == "deal" and ok:
        pipeline = [f for f in filters if f.field == "pipeline"]
        if not pipeline:
            block_error(_("Deal pipeline filter is not set"))
        elif any(f.op == "is_empty" for f in pipeline) and (len(filters) > 1 or having):
            block_error(
                _(
                    "with “pipeline is empty” (customers with no deals at all) the block takes "
                    "no other filter and no condition"
                )
            )
    if entity == "segment" and ok and not filters:
        block_error(_("choose at least one segment"))
    if not ok:
        return None
    return Block(entity=entity, match=match, filters=tuple(filters), having=tuple(having), having_match=having_match)


def segment_refs(data):
    """Codes of the segments whose memberships a definition reads.

    `data`: a stored definition as raw JSON (a dict, possibly invalid: what
    cannot be read is ignored). The one place that works this out: cycle
    checks, dependency order and the dependants of a segment all call it.
    """
    codes = set()
    blocks = data.get("blocks") if isinstance(data, dict) else None
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict) or block.get("entity") != "segment":
            continue
        for flt in block.get("filters") or ():
            for item in (flt.get("values") or ()) if isinstance(flt, dict) else ():
                if isinstance(item, dict) and isinstance(item.get("value"), str):
                    codes.add(item["value"])
    return codes


def customer_fields_read(data):
    """Names of the customer fields a stored definition (raw JSON, possibly
    invalid) filters on: what reads the predictions, for one, is found here."""
    fields = set()
    blocks = data.get("blocks") if isinstance(data, dict) else None
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, dict) and block.get("entity") == "customer":
            for flt in block.get("filters") or ():
                if isinstance(flt, dict) and isinstance(flt.get("field"), str):
                    fields.add(flt["field"])
    return fields


def entities_read(data):
    """Entities of the blocks of a stored definition (raw JSON, possibly invalid):
    whether it reads messages or events, for one, is found here."""
    blocks = data.get("blocks") if isinstance(data, dict) else None
    return {
        block["entity"]
        for block in (blocks if isinstance(blocks, list) else ())
        if isinstance(block, dict) and isinstance(block.get("entity"), str)
    }


def dependency_order(segments):
    """`segments` (objects with `code` and `definition`) each after the ones it
    reads, in their given order otherwise; a cycle (rejected on save, but
    possible in old data) is broken where it is met."""
    by_code = {s.code: s for s in segments}
    ordered, seen = [], set()

    def visit(segment, path=()):
        if segment.code in seen or segment.code in path:
            return
        for code in sorted(segment_refs(segment.definition)):
            if code in by_code:
                visit(by_code[code], path + (segment.code,))
        seen.add(segment.code)
        ordered.append(segment)

    for segment in segments:
        visit(segment)
    return ordered


def dependants_of(code, segments):
    """Those of `segments` whose definition reads segment `code`."""
    return [s for s in segments if code in segment_refs(s.definition)]


def _check_segments(blocks, raw_blocks_pos, segment_code, errors):
    """Unknown segment codes and cycles through stored dynamic segments."""
    refs = [
        (pos, k, choice.value)
        for block, pos in zip(blocks, raw_blocks_pos)
        if block.entity == "segment"
        for k, f in enumerate(block.filters, 1)
        for choice in f.values
    ]
    if not refs:
        return
    stored = {
        code: (type_, definition)
        for code, type_, definition in Segment.select(Segment.code, Segment.type, Segment.definition).tuples()
    }
    for pos, k, code in refs:
        if code not in stored:
            errors.add(_("Unknown segment “%(code)s”", code=code), block=pos, filter=k, entity="segment")
            continue
        if segment_code is None:
            continue
        if code == segment_code:
            errors.add(
                _("a segment cannot include itself (“%(code)s”)", code=code), block=pos, filter=k, entity="segment"
            )
            continue
        path = _path_to(code, segment_code, stored)
        if path:
            errors.add(
                _("segments cannot refer to each other in a cycle: %(path)s", path=" → ".join([segment_code] + path)),
                block=pos,
                filter=k,
                entity="segment",
            )


def _path_to(start, target, stored):
    """The chain of stored dynamic segment codes from `start` to `target`, or None."""
    seen = {start}
    stack = [(start, [start])]
    while stack:
        code, path = stack.pop()
        type_, definition = stored.get(code, (None, None))
        if type_ == "static":
            continue  # a static segment's members are fixed: its definition is not evaluated
        for ref in sorted(segment_refs(definition)):
            if ref == target:
                return path + [ref]
            if ref not in seen and ref in stored:
                seen.add(ref)
                stack.append((ref, path + [ref]))
    return None


def parse_definition(data, *, segment_code=None, catalogue=None):
    """Parse and validate a definition (a dict, or JSON text) into a `Definition`.

    Checks it against the spec and the field catalogue read from the database
    (or `catalogue`, when the caller already has one). `segment_code`: the
    code of the segment this definition is saved for, so that segment blocks
    leading back to it through stored segments are rejected as a cycle.

    Raises DefinitionError listing every problem found.
    """
    errors = Errors()
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DefinitionError(
                [{"block": None, "filter": None, "agg": None, "message": _("The definition is not UTF-8 text")}]
            ) from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise DefinitionError(
                [
                    {
                        "block": None,
                        "filter": None,
                        "agg": None,
                        "message": _("The definition is not valid JSON: %(error)s", error=str(exc)),
                    }
                ]
            ) from None
    if not isinstance(data, dict):
        raise DefinitionError(
            [{"block": None, "filter": None, "agg": None, "message": _("A definition must be a JSON object")}]
        )
    for key in data:
        if key not in ("version", "match", "blocks"):
            errors.add(_("Unexpected “%(key)s” in the definition", key=key))
    version = data.get("version", VERSION)
    if version != VERSION or isinstance(version, bool):
        errors.add(
            _(
                "Unknown definition version %(version)s (this version reads %(known)d)",
                version=json.dumps(version, default=str),
                known=VERSION,
            )
        )
    match = data.get("match", "all")
    if match not in MATCHES:
        errors.add(_("“match” must be “all” or “any”"))
    raw_blocks = data.get("blocks", [])
    if not isinstance(raw_blocks, list):
        errors.add(_("“blocks” must be a list"))
        raw_blocks = []
    cat = catalogue or load_catalogue()
    blocks, positions = [], []
    for n, raw in enumerate(raw_blocks, 1):
        block = _parse_block(raw, n, cat, errors)
        if block is not None:
            blocks.append(block)
            positions.append(n)
    _check_segments(blocks, positions, segment_code, errors)
    if errors.items:
        raise DefinitionError(errors.items)
    definition = Definition(match=match, blocks=tuple(blocks), version=VERSION)
    # The compiler reuses the catalogue the definition was checked against
    # (custom field ids) instead of reading it again; not part of equality.
    object.__setattr__(definition, "_catalogue", cat)
    return definition


# --- canonical JSON ----------------------------------------------------------


def _number_json(value):
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _bound_json(value, flt):
    if value is None:
        return None
    if flt.ignore_year:
        return "%02d-%02d" % divmod(value, 100)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return _number_json(value)


def _filter_json(flt):
    data = {"agg": flt.agg} if flt.agg is not None else {"field": flt.field}
    data["op"] = flt.op
    if flt.op == "in":
        data["values"] = [{"value": c.value, "exclude": c.exclude} for c in flt.values]
    elif flt.op in ("contains", "is"):
        data["value"] = flt.value
    elif flt.op == "between":
        for key, value in (("from", flt.from_), ("to", flt.to)):
            if value is not None:
                data[key] = _bound_json(value, flt)
    elif flt.op == "relative":
        for key, value in (("from_days", flt.from_days), ("to_days", flt.to_days)):
            if value is not None:
                data[key] = value
    if flt.ignore_year:
        data["ignore_year"] = True
    return data


def to_json(definition):
    """The canonical JSON-ready dict of a definition: parse_definition(to_json(d)) == d."""
    blocks = []
    for block in definition.blocks:
        data = {"entity": block.entity, "match": block.match, "filters": [_filter_json(f) for f in block.filters]}
        if block.entity in RECORD_ENTITIES:
            data["having"] = [_filter_json(f) for f in block.having]
            data["having_match"] = block.having_match
        blocks.append(data)
    return {"version": definition.version, "match": definition.match, "blocks": blocks}
