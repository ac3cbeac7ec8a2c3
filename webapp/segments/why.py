"""Why a customer is in a segment, or not: the engine's explanation
(`engine.explain`) laid beside the builder's drawing of the definition, so a
page shows each block and filter in the builder's words with its verdict and
the values it was decided on (issue 18).
"""

import datetime

from .. import settings
from ..engine import catalogue, explain, parse_definition
from ..formats import custom_value, label, money
from ..models import SegmentChange
from .builder import BuilderView, label_chips, renderable
from .versions import version_at


class Line:
    """One filter or condition: its FilterView, whether it holds, what it read."""

    def __init__(self, view, holds, value=None, records=None):
        self.view, self.holds, self.value, self.records = view, holds, value, records


class BlockWhy:
    def __init__(self, view, facts, lines, having):
        self.view, self.holds, self.lines, self.having = view, facts["holds"], lines, having
        self.records = facts.get("records")
        aggregates = facts.get("aggregates") or {}
        self.count = aggregates.get("count")
        self.sum_text = money(aggregates["sum"]) if aggregates.get("sum") is not None and self.count else None
        self.first_at, self.last_at = aggregates.get("first_at"), aggregates.get("last_at")


class Why:
    """A customer's explanation for one definition at `at` (None: now)."""

    def __init__(self, result, view, at):
        self.holds, self.at, self.today = result["holds"], at, result["today"]
        self.match = view.match
        self.blocks = []
        for block, facts in zip(view.blocks, result["blocks"], strict=True):
            lines = [
                Line(f, item["holds"], value_text(f, item.get("value")), item.get("records"))
                for f, item in zip(block.filters, facts["filters"], strict=True)
            ]
            having = [
                Line(h, holds, aggregate_text(h.name, facts.get("aggregates") or {}))
                for h, holds in zip(block.having, facts.get("having", []), strict=True)
            ]
            self.blocks.append(BlockWhy(block, facts, lines, having))

    @property
    def failing(self):
        """The numbers of the blocks that do not hold."""
        return [b.view.number for b in self.blocks if not b.holds]


def value_text(view, value):
    """A customer's value as a filter's line shows it ('—' when empty)."""
    if isinstance(value, list):
        labels = getattr(view, "chip_labels", {}) or {}
        return ", ".join(labels.get(v, v) for v in value) or "—"
    if view.name in ("type", "gender"):
        return label(value) if value else "—"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.2f}"
    return custom_value(value)


def aggregate_text(name, aggregates):
    """The value of an aggregate over the records a block selected ('—' when it has none)."""
    count = aggregates.get("count") or 0
    if name == "avg":
        return money(round(aggregates["sum"] / count)) if count else "—"
    value = aggregates.get(name)
    if name == "sum":
        return money(value)
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return custom_value(value)


def explain_customer(definition, customer_id, *, at=None):
    """A Why for one customer and a definition dict, or None (no such
    customer, or a definition the builder cannot draw); DefinitionError
    when the definition is not valid."""
    if not renderable(definition):
        return None
    parsed = parse_definition(definition)
    result = explain(parsed, customer_id, at=at, tz=settings.tz())
    if result is None:
        return None
    return Why(result, label_chips(BuilderView(definition, catalogue())), at)


def explain_exit(change_id):
    """Why a logged exit happened: (the change, the Why of the definition in
    force then, evaluated at the exit's time) or (change, None)."""
    change = SegmentChange.get_or_none(SegmentChange.id == change_id)
    if change is None or change.change != "exited":
        return change, None
    version = version_at(change.segment_id, change.at)
    definition = version.definition if version is not None else change.segment.definition
    return change, explain_customer(definition, change.customer_id, at=change.at)
