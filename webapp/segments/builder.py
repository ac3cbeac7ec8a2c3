"""The segment builder: a server-rendered form whose inputs are named by position.

The builder's state is a definition dict in the spec's own shape (possibly
incomplete while it is being edited). It travels as form inputs named by
position and is read back by `definition_from_form`:

    match                                  all | any (between blocks)
    blocks-0-entity / -match / -having_match
    blocks-0-filters-1-field / -op         a filter
    blocks-0-filters-1-values              one input per chosen value: "+Москва" (include) or "-Москва" (exclude)
    blocks-0-filters-1-value               contains: text; is: "true" | "false"
    blocks-0-filters-1-from / -to          between (numbers, YYYY-MM-DD, or MM-DD with ignore year)
    blocks-0-filters-1-from_n / -from_dir  relative: a number of days and "ago" | "ahead"
    blocks-0-filters-1-ignore_year         "1" when ticked
    blocks-0-having-0-agg / -op / ...      an aggregate condition, same keys

Nothing is fixed or guessed here: whatever the inputs hold goes to the engine,
whose messages (1-based block/filter/condition) are shown next to the input
they concern. A number that does not parse stays text, so the engine says
"must be a number" at that filter.
"""

import decimal
import json
import re
import uuid

from ..engine import DefinitionError, parse_definition, to_json
from ..engine.catalogue import RECORD_ENTITIES, entity_label, op_labels
from ..engine.definition import OP_KEYS
from ..i18n import _, ngettext
from ..models import Segment
from .options import labels_for
from .system import RFM_LETTERS, RFM_SCORES, rfm_code

MATCHES = ("all", "any")
_PATH_RE = re.compile(r"^blocks-(\d+)(?:-(filters|having)-(\d+))?$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_ISO_RE = re.compile(r"^\d{4}-(\d{2}-\d{2})$")
_MD_RE = re.compile(r"^\d{2}-\d{2}$")

# string fields whose values are offered from the database, by field
COLUMN_OPTIONS = {
    ("customer", "first_name"): "first_name",
    ("customer", "last_name"): "last_name",
    ("customer", "company_name"): "company_name",
    ("customer", "email"): "email",
    ("customer", "phone"): "phone",
    ("customer", "city"): "city",
    ("customer", "country"): "country",
    ("customer", "source"): "source",
    ("order", "status"): "status",
}


# --- form -> definition --------------------------------------------------------


def _number(text):
    """A JSON number from what a person typed ("1 000,5" too); the text itself when it is not one."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
    if _INT_RE.match(cleaned):
        return int(cleaned)
    if _DECIMAL_RE.match(cleaned.lstrip("+-")):
        value = decimal.Decimal(cleaned)
        return int(value) if value == value.to_integral_value() else float(value)
    return text


def _days(number, direction):
    """A signed day count from "3" + "ago"; the text when it is not a whole number."""
    cleaned = re.sub(r"\s", "", number)
    if not _INT_RE.match(cleaned):
        return number
    value = int(cleaned)
    return -value if direction == "ago" else value


def _indices(form, pattern):
    regex = re.compile(pattern)
    found = set()
    for key in form.keys():
        match = regex.match(key)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


def _read_filter(form, prefix, name_key, info):
    raw = {}
    name = form.get(f"{prefix}-{name_key}", "")
    if name:
        raw[name_key] = name
    op = form.get(f"{prefix}-op", "")
    if op:
        raw["op"] = op
    if op == "in":
        values = []
        for item in form.getlist(f"{prefix}-values"):
            if len(item) > 1 and item[0] in "+-":
                values.append({"value": item[1:], "exclude": item[0] == "-"})
        raw["values"] = values
    elif op == "contains":
        raw["value"] = form.get(f"{prefix}-value", "")
    elif op == "is":
        value = form.get(f"{prefix}-value")
        if value in ("true", "false"):
            raw["value"] = value == "true"
    elif op == "between":
        ignore_year = form.get(f"{prefix}-ignore_year") == "1"
        for key in ("from", "to"):
            text = (form.get(f"{prefix}-{key}") or "").strip()
            if text:
                is_number = info is not None and info.type == "number" and not ignore_year
                raw[key] = _number(text) if is_number else text
        if ignore_year:
            raw["ignore_year"] = True
    elif op == "relative":
        for key in ("from", "to"):
            text = (form.get(f"{prefix}-{key}_n") or "").strip()
            if text:
                raw[f"{key}_days"] = _days(text, form.get(f"{prefix}-{key}_dir", "ago"))
        if form.get(f"{prefix}-ignore_year") == "1":
            raw["ignore_year"] = True
    return raw


def definition_from_form(form, cat):
    """The definition dict the builder inputs describe (not validated)."""
    match = form.get("match", "all")
    definition = {"version": 1, "match": match, "blocks": []}
    for i in _indices(form, r"^blocks-(\d+)-entity$"):
        p = f"blocks-{i}"
        entity = form.get(f"{p}-entity", "")
        block = {"entity": entity, "match": form.get(f"{p}-match", "all"), "filters": []}
        for k in _indices(form, rf"^{p}-filters-(\d+)-(?:field|op)$"):
            fp = f"{p}-filters-{k}"
            info = cat.field(entity, form.get(f"{fp}-field", ""))
            block["filters"].append(_read_filter(form, fp, "field", info))
        if entity in RECORD_ENTITIES:
            block["having"] = []
            for k in _indices(form, rf"^{p}-having-(\d+)-(?:agg|op)$"):
                hp = f"{p}-having-{k}"
                info = cat.aggregate(entity, form.get(f"{hp}-agg", ""))
                block["having"].append(_read_filter(form, hp, "agg", info))
            block["having_match"] = form.get(f"{p}-having_match", "all")
        definition["blocks"].append(block)
    return definition


def validate(definition, cat, segment_code=None):
    """(canonical dict or None, engine errors)."""
    try:
        parsed = parse_definition(definition, segment_code=segment_code, catalogue=cat)
    except DefinitionError as exc:
        return None, exc.errors
    return to_json(parsed), []


def _location_patterns():
    """Regexes of the engine's "Block 2 (Deals), filter 1: …" prefixes, from the same messages."""
    num, entity, where, text = 9876543, "\ue001", "\ue002", "\ue003"
    wheres = "(?:%s)" % "|".join(re.escape(_(m, n=num)) for m in ("filter %(n)d", "condition %(n)d"))
    patterns = []
    for template, params in (
        ("Block %(n)d (%(entity)s), %(where)s: %(text)s", {"entity": entity, "where": where}),
        ("Block %(n)d (%(entity)s): %(text)s", {"entity": entity}),
        ("Block %(n)d, %(where)s: %(text)s", {"where": where}),
        ("Block %(n)d: %(text)s", {}),
    ):
        source = re.escape(_(template, n=num, text=text, **params))
        source = source.replace(entity, ".+?").replace(where, wheres).replace(text, "(?P<text>.*)")
        patterns.append(re.compile("^" + source.replace(str(num), r"\d+") + "$", re.S))
    return patterns


def short_message(message):
    """An engine message without its "Block 1 (Customer), filter 2:" part, for showing it at that filter."""
    for pattern in _location_patterns():
        match = pattern.match(message)
        if match:
            return match.group("text")
    return message


def error_map(errors, short=True):
    """Engine errors keyed by the builder slot they belong to (messages shortened
    to what is not already said by where they are shown)."""
    slots = {}
    for error in errors or ():
        block, flt, agg = error.get("block"), error.get("filter"), error.get("agg")
        if block is None:
            key = "definition"
        elif flt is not None:
            key = f"blocks-{block - 1}-filters-{flt - 1}"
        elif agg is not None:
            key = f"blocks-{block - 1}-having-{agg - 1}"
        else:
            key = f"blocks-{block - 1}"
        message = error["message"]
        if short and key != "definition":
            message = short_message(message)
        slots.setdefault(key, []).append(message)
    return slots


# --- structural changes ----------------------------------------------------------


def new_filter(entity, name, cat, agg=False):
    info = cat.aggregate(entity, name) if agg else cat.field(entity, name)
    raw = {("agg" if agg else "field"): name}
    if info is None:
        return raw
    raw["op"] = info.ops[0]
    if raw["op"] == "in":
        raw["values"] = []
    elif raw["op"] == "is":
        raw["value"] = True
    return raw


def new_block(entity, cat):
    block = {"entity": entity, "match": "all", "filters": []}
    if entity == "deal":
        block["filters"].append(new_filter("deal", "pipeline", cat))
    if entity == "segment":
        block["filters"].append(new_filter("segment", "segment", cat))
    if entity in RECORD_ENTITIES:
        block["having"] = []
        block["having_match"] = "all"
    return block


def _locate(definition, path):
    match = _PATH_RE.match(path or "")
    if not match:
        return None
    i = int(match.group(1))
    blocks = definition["blocks"]
    if i >= len(blocks):
        return None
    if match.group(2) is None:
        return blocks, i, None
    items = blocks[i].setdefault(match.group(2), [])
    k = int(match.group(3))
    if k >= len(items):
        return None
    return items, k, blocks[i]


def _switch_op(raw, op):
    """Keep what still applies under the new operator, drop the rest."""
    keep = {key: raw[key] for key in ("field", "agg") if key in raw}
    keep["op"] = op
    for key in OP_KEYS.get(op, ()):
        if key in raw:
            keep[key] = raw[key]
    if op == "in":
        keep.setdefault("values", [])
    if op == "is" and not isinstance(keep.get("value"), bool):
        keep["value"] = True
    if op == "contains" and not isinstance(keep.get("value"), str):
        keep.pop("value", None)
    return keep


SHORTCUT_DAYS = 30


def _none_in(entity, filters):
    """A record block that holds for customers with none of those records (count 0..0)."""
    return {
        "entity": entity,
        "match": "all",
        "filters": filters,
        "having": [{"agg": "count", "op": "between", "from": 0, "to": 0}],
        "having_match": "all",
    }


def _last_days(field, days):
    return {"field": field, "op": "relative", "from_days": -days, "to_days": 0}


# Ready-made blocks for what marketers ask most, in the terms of the spec: "count between
# 0 and 0" over the records of the last N days (or all of them) is "none".
SHORTCUTS = {
    "no_open": lambda days: _none_in(
        "message",
        [
            {"field": "kind", "op": "in", "values": [{"value": "opened", "exclude": False}]},
            _last_days("occurred_at", days),
        ],
    ),
    "never_ordered": lambda days: _none_in("order", []),
    "no_order": lambda days: _none_in("order", [_last_days("ordered_at", days)]),
}


def shortcut_block(name, days):
    """The block of a shortcut (None for an unknown one); days: 1..3650, else the default."""
    if name not in SHORTCUTS:
        return None
    days = days if isinstance(days, int) and 1 <= days <= 3650 else SHORTCUT_DAYS
    return SHORTCUTS[name](days)


def rfm_scores_chosen(form):
    """{letter: [scores]} ticked in the builder's "RFM scores" picker (inputs rfm_r, rfm_f, rfm_m)."""
    chosen = {}
    for letter in RFM_LETTERS:
        values = {int(v) for v in form.getlist(f"rfm_{letter}") if v.isdigit()}
        chosen[letter] = sorted(values & set(RFM_SCORES))
    return chosen


def rfm_score_block(chosen):
    """The Segments block of "R is 4 or 5 and M is 5": per letter with ticked scores, a
    filter "member of one of these score segments" (webapp.rfm fills them), the letters
    combined with "all". The spec has no RFM customer field: its segment reference is
    how definitions read RFM, as for the classes. None when nothing is ticked."""
    filters = [
        {"field": "segment", "op": "in", "values": [{"value": rfm_code(x, n), "exclude": False} for n in scores]}
        for x in RFM_LETTERS
        if (scores := chosen.get(x))
    ]
    return {"entity": "segment", "match": "all", "filters": filters} if filters else None


def add_rfm_scores(definition, chosen):
    """Append the block of rfm_score_block; returns the slot to focus, None when nothing is ticked."""
    block = rfm_score_block(chosen)
    if block is None:
        return None
    definition["blocks"].append(block)
    return f"blocks-{len(definition['blocks']) - 1}"


def apply_action(definition, action, cat):
    """Apply one structural change; returns the slot to focus afterwards (or None).

    Actions: add_block:<entity>, shortcut:<name>:<days> (SHORTCUTS), add_filter:<block path>:<field>,
    add_condition:<block path>:<agg>, remove:<path>, set_field:<path>,
    set_op:<path>, ignore_year:<path>.
    """
    verb, _sep, rest = (action or "").partition(":")
    if verb == "shortcut":
        name, _sep, days = rest.partition(":")
        block = shortcut_block(name, int(days) if days.isdigit() else None)
        if block is None:
            return None
        definition["blocks"].append(block)
        return f"blocks-{len(definition['blocks']) - 1}"
    if verb == "add_block":
        if rest not in cat.entities:
            return None
        definition["blocks"].append(new_block(rest, cat))
        n = len(definition["blocks"]) - 1
        return f"blocks-{n}-filters-0" if definition["blocks"][n]["filters"] else f"blocks-{n}"
    path, _sep, arg = rest.partition(":")
    found = _locate(definition, path)
    if found is None:
        return None
    items, k, block = found
    if verb == "remove":
        del items[k]
        # focus stays near: the block's "Add filter", or "Add block"
        return path.rsplit("-", 2)[0] if block is not None else "add-block"
    if verb in ("add_filter", "add_condition") and block is None:
        target = items[k]
        entity = target.get("entity")
        if verb == "add_filter":
            if cat.field(entity, arg) is None:
                return None
            target.setdefault("filters", []).append(new_filter(entity, arg, cat))
            return f"{path}-filters-{len(target['filters']) - 1}"
        if cat.aggregate(entity, arg) is None:
            return None
        target.setdefault("having", []).append(new_filter(entity, arg, cat, agg=True))
        return f"{path}-having-{len(target['having']) - 1}"
    if block is None:
        return None
    raw = items[k]
    is_agg = "agg" in raw or path.split("-")[2] == "having"
    entity = block.get("entity")
    if verb == "set_field":
        name = raw.get("agg" if is_agg else "field")
        items[k] = new_filter(entity, name, cat, agg=is_agg) if name else {}
        return path
    if verb == "set_op":
        if raw.get("op"):
            items[k] = _switch_op(raw, raw["op"])
        return path
    if verb == "ignore_year":
        for key in ("from", "to"):
            value = raw.get(key)
            if isinstance(value, str):
                iso = _ISO_RE.match(value)
                if raw.get("ignore_year") and iso:
                    raw[key] = iso.group(1)  # 2024-03-08 -> 03-08
                elif not raw.get("ignore_year") and _MD_RE.match(value):
                    del raw[key]  # a month and day is no date
        return path
    return None


# --- definition -> view model ------------------------------------------------------


def day_words(days):
    if days == 0:
        return _("today")
    if days == -1:
        return _("yesterday")
    if days == 1:
        return _("tomorrow")
    if days < 0:
        return ngettext("%(num)d day ago", "%(num)d days ago", -days)
    return ngettext("in %(num)d day", "in %(num)d days", days)


def relative_words_in_form(form, prefix):
    """The range of the relative date filter at `prefix` ("blocks-0-filters-1") of a builder form, in words."""
    path = _PATH_RE.match(prefix)
    raw = _read_filter(form, prefix, "field", None) if path and path.group(2) else {}
    return relative_words(raw.get("from_days"), raw.get("to_days"), raw.get("ignore_year") is True)


def relative_words(from_days, to_days, ignore_year=False):
    """The range of a relative date filter in words: "from 3 days ago to today", "in 3 days"."""
    lo = from_days if isinstance(from_days, int) and not isinstance(from_days, bool) else None
    hi = to_days if isinstance(to_days, int) and not isinstance(to_days, bool) else None
    if lo is not None and hi is not None:
        if lo > hi:
            return _("the start is after the end")
        text = day_words(lo) if lo == hi else _("from %(start)s to %(end)s", start=day_words(lo), end=day_words(hi))
    elif lo is not None:
        text = _("%(start)s or later", start=day_words(lo))
    elif hi is not None:
        text = _("%(end)s or earlier", end=day_words(hi))
    else:
        return ""
    if ignore_year:
        text = _("%(range)s, in any year", range=text)
    return text


def _json_number(value):
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        text = repr(value)
        return format(decimal.Decimal(text), "f") if "e" in text.lower() else text
    return str(value)


class FilterView:
    """One filter or aggregate condition as the template draws it."""

    def __init__(self, raw, prefix, index, entity, cat, agg, errors):
        self.raw = raw if isinstance(raw, dict) else {}
        self.prefix = prefix
        self.index = index
        self.entity = entity
        self.agg = agg
        self.name_key = "agg" if agg else "field"
        self.name = self.raw.get(self.name_key)
        if not isinstance(self.name, str):
            self.name = None
        self.info = None
        if self.name:
            self.info = cat.aggregate(entity, self.name) if agg else cat.field(entity, self.name)
        self.op = self.raw.get("op") if isinstance(self.raw.get("op"), str) else None
        self.errors = errors.get(prefix, [])

    @property
    def ops(self):
        labels = op_labels()
        names = list(self.info.ops) if self.info else list(labels)
        if self.op and self.op not in names:
            names.append(self.op)
        return [(name, labels.get(name, name)) for name in names]

    @property
    def label(self):
        if self.info:
            return self.info.label
        if self.name:
            return _("Unknown “%(name)s”", name=self.name)
        return _("Choose…")

    @property
    def editor(self):
        op = self.op
        if op == "in":
            return "chips"
        if op == "contains":
            return "text"
        if op == "is":
            return "boolean"
        if op == "between":
            if self.ignore_year:
                return "month_day"
            if self.info is not None and self.info.type in ("date", "datetime"):
                return "date"
            return "number"
        if op == "relative":
            return "relative"
        return "none"

    @property
    def ignore_year(self):
        return self.raw.get("ignore_year") is True

    @property
    def can_ignore_year(self):
        return self.op in ("between", "relative") and (self.info is None or self.info.type == "date")

    @property
    def chips(self):
        values = self.raw.get("values")
        result = []
        for item in values if isinstance(values, list) else ():
            if isinstance(item, dict) and isinstance(item.get("value"), str) and item["value"] != "":
                result.append((item["value"], item.get("exclude") is True))
        return result

    def bound(self, key):
        value = self.raw.get(key)
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _json_number(value)
        return str(value)

    def days(self, key):
        """(number text, "ago" | "ahead") of a relative bound."""
        value = self.raw.get(key)
        if value is None:
            return "", "ago"
        if isinstance(value, int) and not isinstance(value, bool):
            return str(abs(value)), ("ago" if value <= 0 else "ahead")
        return str(value), "ago"

    @property
    def words(self):
        return relative_words(self.raw.get("from_days"), self.raw.get("to_days"), self.ignore_year)

    @property
    def bool_value(self):
        value = self.raw.get("value")
        return value if isinstance(value, bool) else None

    @property
    def text_value(self):
        value = self.raw.get("value")
        return value if isinstance(value, str) else ""

    @property
    def options_kind(self):
        """What the value picker offers: (options endpoint kind, extra query args) or None."""
        info = self.info
        if info is None:
            return None
        if info.reference:
            return info.reference, {}
        if info.type == "enum":
            return "enum", {"entity": self.entity, "field": self.name}
        if info.custom_field_id is not None and info.type == "string":
            return "custom", {"field_id": info.custom_field_id}
        kind = COLUMN_OPTIONS.get((self.entity, self.name))
        if kind:
            return kind, {}
        return None

    @property
    def free_text(self):
        """Whether a typed value may be chosen that is not among the offered ones."""
        return self.info is None or self.info.type != "enum"


class BlockView:
    def __init__(self, raw, index, cat, errors):
        self.raw = raw if isinstance(raw, dict) else {}
        self.index = index
        self.prefix = f"blocks-{index}"
        self.entity = self.raw.get("entity") if isinstance(self.raw.get("entity"), str) else ""
        info = cat.entities.get(self.entity)
        self.known = info is not None
        self.label = entity_label(self.entity) if self.known else _("Unknown block “%(entity)s”", entity=self.entity)
        self.fields = list(info.fields.values()) if info else []
        self.aggregates = list(info.aggregates.values()) if info else []
        self.is_record = self.entity in RECORD_ENTITIES
        self.match = self.raw.get("match", "all")
        self.having_match = self.raw.get("having_match", "all")
        filters = self.raw.get("filters")
        self.filters = [
            FilterView(f, f"{self.prefix}-filters-{k}", k, self.entity, cat, False, errors)
            for k, f in enumerate(filters if isinstance(filters, list) else [])
        ]
        having = self.raw.get("having")
        self.having = [
            FilterView(f, f"{self.prefix}-having-{k}", k, self.entity, cat, True, errors)
            for k, f in enumerate(having if isinstance(having, list) else [])
        ]
        self.errors = errors.get(self.prefix, [])

    @property
    def standard_fields(self):
        return [f for f in self.fields if f.custom_field_id is None]

    @property
    def custom_fields(self):
        return [f for f in self.fields if f.custom_field_id is not None]

    @property
    def number(self):
        return self.index + 1


class BuilderView:
    """Everything the builder template needs: blocks, errors, the revision id."""

    # the "RFM scores" picker: its letters and scores; builder_context says whether
    # the score segments exist yet and what is wrong with the last attempt
    rfm_letters, rfm_scores = RFM_LETTERS, RFM_SCORES
    rfm_ready = False
    rfm_problem = None

    def __init__(self, definition, cat, errors=None, focus=None, segment_code=None, single=None):
        self.definition = definition
        # single="order": the editor of one Orders block's filters (an event
        # definition's condition, webapp.events): no other blocks, no conditions.
        self.single = single
        self.errors = error_map(errors)
        self.match = definition.get("match", "all")
        blocks = definition.get("blocks")
        self.blocks = [
            BlockView(b, i, cat, self.errors) for i, b in enumerate(blocks if isinstance(blocks, list) else [])
        ]
        self.entities = [(e.entity, e.label) for e in cat.entities.values()]
        self.focus = focus
        # Each layout has its own revision: a preview answer computed for an
        # older layout is dropped (builder.js) instead of putting messages at the
        # wrong filter.
        self.rev = uuid.uuid4().hex[:8]
        self.definition_errors = self.errors.get("definition", [])
        self.segment_code = segment_code

    def slots(self):
        """Every error slot key of this layout."""
        keys = ["definition"]
        for block in self.blocks:
            keys.append(block.prefix)
            keys.extend(f.prefix for f in block.filters)
            keys.extend(f.prefix for f in block.having)
        return keys


def slot_keys(definition):
    """The error slot keys of the layout a definition dict is drawn with."""
    keys = ["definition"]
    for i, block in enumerate(definition.get("blocks") or []):
        keys.append(f"blocks-{i}")
        if isinstance(block, dict):
            for k, _f in enumerate(block.get("filters") or []):
                keys.append(f"blocks-{i}-filters-{k}")
            for k, _f in enumerate(block.get("having") or []):
                keys.append(f"blocks-{i}-having-{k}")
    return keys


def renderable(data):
    """Whether a definition dict has the shape the builder can draw without losing anything.

    Pasted JSON that is valid always is; this guards stored definitions that
    are not (e.g. a custom field deleted since): they are drawn with the
    engine's messages, and saved only once fixed.
    """
    if not isinstance(data, dict) or not isinstance(data.get("blocks", []), list):
        return False
    for block in data.get("blocks", []):
        if not isinstance(block, dict):
            return False
        for key in ("filters", "having"):
            items = block.get(key, [])
            if not isinstance(items, list) or not all(isinstance(f, dict) for f in items):
                return False
    return True


def label_chips(view):
    """Give each filter of a BuilderView the labels of its chosen values whose value is a
    code (segments, SKUs, users' emails), as `.chip_labels`; returns the view."""
    for block in view.blocks:
        for flt in block.filters + block.having:
            kind = flt.options_kind
            flt.chip_labels = labels_for(kind[0], [v for v, _x in flt.chips]) if kind else {}
    return view


def builder_context(definition, cat, errors=None, focus=None, segment_code=None, single=None, rfm_problem=None):
    """What the builder templates (`segments/_builder.html`) need to draw `definition`:
    the BuilderView with its chips' labels, and the definition as JSON text."""
    view = BuilderView(definition, cat, errors=errors, focus=focus, segment_code=segment_code, single=single)
    # the score segments exist from the first RFM computation on
    view.rfm_ready = not single and Segment.select().where(Segment.code == rfm_code("r", 1)).exists()
    view.rfm_problem = rfm_problem
    return {"builder": label_chips(view), "json_text": pretty_json(definition)}


def summary(definition, cat):
    """The definition as readable blocks (for the segment page); None when the builder cannot draw it."""
    if not renderable(definition):
        return None
    return label_chips(BuilderView(definition, cat))


def condition_definition(condition):
    """The builder's definition dict for an order condition (webapp.engine.orders):
    its one Orders block."""
    condition = condition if isinstance(condition, dict) else {}
    return {
        "version": 1,
        "match": "all",
        "blocks": [
            {"entity": "order", "match": condition.get("match", "all"), "filters": condition.get("filters", [])}
        ],
    }


def condition_from_definition(definition):
    """The order condition the one-block builder's definition dict describes."""
    blocks = definition.get("blocks") or [{}]
    block = blocks[0] if isinstance(blocks[0], dict) else {}
    return {"match": block.get("match", "all"), "filters": block.get("filters", [])}


def condition_errors(condition, cat):
    """The engine's errors of an order condition (located at block 1 and its filters)."""
    from ..engine.orders import parse_condition

    try:
        parse_condition(condition, catalogue=cat)
    except DefinitionError as exc:
        return exc.errors
    return []


def pretty_json(data):
    return json.dumps(data, ensure_ascii=False, indent=2)


def empty_definition():
    return {"version": 1, "match": "all", "blocks": []}
