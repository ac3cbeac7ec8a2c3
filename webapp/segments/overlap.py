"""How segments overlap: 2 to 8 segments, their pairwise intersections and the
customers in each exact combination, from stored memberships in one pass.

Each member row of the picked segments adds its segment's bit to its customer
((segment, customer) is the key, so the sum of distinct bits is their OR);
the customers are then counted per mask. One scan of the memberships and one
GROUP BY, whatever the number of segments, instead of a join per pair: at most
255 rows come back, and every intersection is a sum over them. Flask-free.
"""

from dataclasses import dataclass

from ..db import database
from ..i18n import _
from ..models import Segment
from ..sql import param, placeholders

MIN_SEGMENTS, MAX_SEGMENTS = 2, 8


class OverlapError(ValueError):
    """The picked segments cannot be compared (too few, too many, unknown)."""


@dataclass
class Overlap:
    segments: list  # Segment rows, in the order picked
    regions: dict  # {mask: customers in exactly the segments of that mask}

    def count(self, *indexes):
        """Customers in every one of the segments at `indexes` (and maybe others)."""
        want = 0
        for i in indexes:
            want |= 1 << i
        return sum(n for mask, n in self.regions.items() if mask & want == want)

    @property
    def sizes(self):
        return [self.count(i) for i in range(len(self.segments))]

    @property
    def union(self):
        return sum(self.regions.values())

    @property
    def matrix(self):
        """Rows of cells (count, share of the row's segment or None when it is empty)."""
        sizes = self.sizes
        return [
            [(n, n / sizes[i] if sizes[i] else None) for n in (self.count(i, j) for j in range(len(sizes)))]
            for i in range(len(sizes))
        ]


def mask_counts(segment_ids):
    """{mask: customers}: bit i of mask is membership of segment_ids[i]."""
    p = param()
    cases = " ".join(f"WHEN {p} THEN {1 << i}" for i in range(len(segment_ids)))
    sql = (
        f"SELECT m, COUNT(*) FROM (SELECT customer_id, SUM(CASE segment_id {cases} END) AS m "
        f"FROM segment_member WHERE segment_id IN ({placeholders(len(segment_ids))}) GROUP BY customer_id) AS t "
        "GROUP BY m"
    )
    rows = database.execute_sql(sql, list(segment_ids) * 2).fetchall()
    return {int(mask): int(n) for mask, n in rows}


def picked_segments(codes):
    """The segments named by `codes` (in that order, each once); OverlapError when
    fewer than 2, more than 8 or one is unknown."""
    codes = list(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    if len(codes) < MIN_SEGMENTS:
        raise OverlapError(_("Pick at least two segments to compare."))
    if len(codes) > MAX_SEGMENTS:
        raise OverlapError(_("Pick at most %(n)s segments to compare.", n=MAX_SEGMENTS))
    found = {s.code: s for s in Segment.select().where(Segment.code.in_(codes))}
    missing = [c for c in codes if c not in found]
    if missing:
        raise OverlapError(_("No segment has the code “%(code)s”.", code=missing[0]))
    return [found[c] for c in codes]


def overlap(codes):
    """The Overlap of the segments named by `codes` (see picked_segments)."""
    segments = picked_segments(codes)
    return Overlap(segments, mask_counts([s.id for s in segments]))
