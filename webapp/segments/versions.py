"""Versions of a segment's definition: kept at every save, listed with what
changed in the builder's words, restored as a new version (issue 18).

`record_version` is called by the service in the save's transaction;
`note_first_run` by a run that finishes, so a version carries the size its
definition had at its first computation.
"""

import peewee as pw

from ..engine import catalogue
from ..i18n import _, ngettext
from ..models import SegmentVersion, User, utcnow
from .builder import BuilderView, label_chips, renderable
from .options import labels_for

VERSIONED = ("definition", "type", "interval_minutes")


def has_versions(segment_id):
    return SegmentVersion.select().where(SegmentVersion.segment == segment_id).exists()


def record_version(segment, *, user=None, restored_from=None, at=None):
    """Keep the segment's current definition, type and interval as its next version."""
    last = SegmentVersion.select(pw.fn.MAX(SegmentVersion.number)).where(SegmentVersion.segment == segment.id).scalar()
    return SegmentVersion.create(
        segment=segment.id,
        number=(last or 0) + 1,
        definition=segment.definition,
        type=segment.type,
        interval_minutes=segment.interval_minutes,
        created_by=user.id if user is not None else None,
        created_at=at or utcnow(),
        restored_from=restored_from,
    )


def note_first_run(segment_id, size, at):
    """Give the latest version the size of its first finished run (once)."""
    latest = SegmentVersion.select(pw.fn.MAX(SegmentVersion.number)).where(SegmentVersion.segment == segment_id)
    (
        SegmentVersion.update(size=size, computed_at=at)
        .where(
            (SegmentVersion.segment == segment_id)
            & (SegmentVersion.number == latest)
            & SegmentVersion.computed_at.is_null()
        )
        .execute()
    )


def versions_query(segment_id):
    """The segment's versions, newest first, with their authors."""
    return (
        SegmentVersion.select(SegmentVersion, User)
        .join(User, pw.JOIN.LEFT_OUTER, on=(SegmentVersion.created_by == User.id))
        .where(SegmentVersion.segment == segment_id)
        .order_by(SegmentVersion.number.desc())
    )


def get_version(segment_id, number):
    return SegmentVersion.get_or_none((SegmentVersion.segment == segment_id) & (SegmentVersion.number == number))


def version_at(segment_id, at):
    """The version in force at `at` (the last one saved by then), or None."""
    return (
        SegmentVersion.select()
        .where((SegmentVersion.segment == segment_id) & (SegmentVersion.created_at <= at))
        .order_by(SegmentVersion.number.desc())
        .first()
    )


# --- what changed, in the builder's words -------------------------------------------


class Change:
    """One line of a difference. kind: setting | match | block_added |
    block_removed | filter_added | filter_removed | filter_changed | values.
    `block`: the BlockView it is in; `old`/`new`: FilterViews (or texts for a
    setting); `added`/`removed`: value labels of an "is one of" filter."""

    def __init__(self, kind, block=None, old=None, new=None, label=None, added=(), removed=()):
        self.kind, self.block, self.old, self.new, self.label = kind, block, old, new, label
        self.added, self.removed = list(added), list(removed)


def _interval_words(minutes):
    if minutes is None:
        return _("the default")
    return ngettext("%(num)s minute", "%(num)s minutes", minutes)


def _chip_labels(flt, values):
    kind = flt.options_kind
    labels = labels_for(kind[0], values) if kind else {}
    return [labels.get(v, v) for v in values]


def _filter_changes(old_block, new_block, old_items, new_items, changes):
    for k in range(max(len(old_items), len(new_items))):
        old = old_items[k] if k < len(old_items) else None
        new = new_items[k] if k < len(new_items) else None
        if old is None:
            changes.append(Change("filter_added", new_block, new=new))
        elif new is None:
            changes.append(Change("filter_removed", old_block, old=old))
        elif old.raw == new.raw:
            continue
        elif old.name == new.name and old.op == new.op == "in":
            before, after = set(old.chips), set(new.chips)
            changes.append(
                Change(
                    "values",
                    new_block,
                    old=old,
                    new=new,
                    added=_chip_labels(new, [v for v, _x in new.chips if (v, _x) not in before]),
                    removed=_chip_labels(old, [v for v, _x in old.chips if (v, _x) not in after]),
                )
            )
        else:
            changes.append(Change("filter_changed", new_block, old=old, new=new))


def differences(old, new):
    """What changed from version `old` to `new` (SegmentVersion rows, or None
    for the first), as a list of Change; the definitions are drawn as the
    builder draws them (labels of fields, values and segments)."""
    changes = []
    if old is None:
        return changes
    if old.type != new.type:
        types = {"static": _("Static"), "dynamic": _("Dynamic")}
        changes.append(Change("setting", label=_("Type"), old=types[old.type], new=types[new.type]))
    if old.interval_minutes != new.interval_minutes:
        changes.append(
            Change(
                "setting",
                label=_("Recompute every"),
                old=_interval_words(old.interval_minutes),
                new=_interval_words(new.interval_minutes),
            )
        )
    if old.definition == new.definition:
        return changes
    if not (renderable(old.definition) and renderable(new.definition)):
        changes.append(Change("definition"))
        return changes
    cat = catalogue()
    before, after = label_chips(BuilderView(old.definition, cat)), label_chips(BuilderView(new.definition, cat))
    if before.match != after.match and len(after.blocks) > 1:
        changes.append(Change("match", old=before.match, new=after.match))
    for i in range(max(len(before.blocks), len(after.blocks))):
        old_block = before.blocks[i] if i < len(before.blocks) else None
        new_block = after.blocks[i] if i < len(after.blocks) else None
        if old_block is None:
            changes.append(Change("block_added", new_block))
        elif new_block is None:
            changes.append(Change("block_removed", old_block))
        elif old_block.entity != new_block.entity:
            changes.append(Change("block_removed", old_block))
            changes.append(Change("block_added", new_block))
        else:
            if old_block.match != new_block.match:
                changes.append(Change("block_match", new_block, old=old_block.match, new=new_block.match))
            if old_block.having_match != new_block.having_match and new_block.having:
                changes.append(
                    Change("having_match", new_block, old=old_block.having_match, new=new_block.having_match)
                )
            _filter_changes(old_block, new_block, old_block.filters, new_block.filters, changes)
            _filter_changes(old_block, new_block, old_block.having, new_block.having, changes)
    return changes


def history(segment_id):
    """[(version, changes from the version before it)], newest first."""
    rows = list(versions_query(segment_id))
    return [(v, differences(rows[i + 1] if i + 1 < len(rows) else None, v)) for i, v in enumerate(rows)]
