"""System segments: the built-in segments every account has (new, active,
sleeping, lost customers, never ordered; likely to buy soon and valuable but
probably lost, from the predictions), and the codes of the RFM score segments
that webapp.rfm fills."""

from ..i18n import N_, _
from ..models import Segment

# RFM score segments: one per letter and score (filled by webapp.rfm, which
# imports these), so "R is 4 or 5" is the spec's segment reference like the
# RFM classes. Scores run 1-5 whatever the method (quintiles or four cut points).
RFM_LETTERS = ("r", "f", "m")
RFM_SCORES = (1, 2, 3, 4, 5)


def rfm_code(key, score=""):
    """The code of an RFM segment: a class's, rfm_code("champions") = "rfm_champions", or
    a score's, the customers whose `key` (r, f or m) score is `score`: rfm_code("r", 5) = "rfm_r5"."""
    return f"rfm_{key}{score}"


# {code: (letter, score)} of the fifteen score segments: {"rfm_r5": ("R", 5), ...}
_SCORE_SEGMENTS = {rfm_code(x, n): (x.upper(), n) for x in RFM_LETTERS for n in RFM_SCORES}


def rfm_score_of(code):
    """(letter, score) of an RFM score segment's code ("R", 5), else None."""
    return _SCORE_SEGMENTS.get(code)


def is_rfm_score():
    """The condition "an RFM score segment": the one test by which the segment list, the
    picker, the home page and analytics keep these fifteen out of the way (~ negates it)."""
    return Segment.code.in_(list(_SCORE_SEGMENTS))


def _orders_block(*having):
    return {
        "version": 1,
        "match": "all",
        "blocks": [{"entity": "order", "match": "all", "filters": [], "having": list(having), "having_match": "all"}],
    }


def _customer_block(*filters):
    return {"version": 1, "match": "all", "blocks": [{"entity": "customer", "match": "all", "filters": list(filters)}]}


SYSTEM_SEGMENTS = [
    (
        "system_new",
        N_("New customers (first order in the last 30 days)"),
        _orders_block({"agg": "first_at", "op": "relative", "from_days": -30, "to_days": 0}),
    ),
    (
        "system_active",
        N_("Active customers (ordered in the last 90 days)"),
        _orders_block({"agg": "last_at", "op": "relative", "from_days": -90, "to_days": 0}),
    ),
    (
        "system_sleeping",
        N_("Sleeping customers (last order 90 to 365 days ago)"),
        _orders_block({"agg": "last_at", "op": "relative", "from_days": -365, "to_days": -91}),
    ),
    (
        "system_lost",
        N_("Lost customers (last order over 365 days ago)"),
        _orders_block({"agg": "last_at", "op": "relative", "to_days": -366}),
    ),
    ("system_never_ordered", N_("Never ordered"), _orders_block({"agg": "count", "op": "between", "from": 0, "to": 0})),
    # From the purchase models (webapp.predictions): empty until the first fit.
    (
        "system_likely_to_buy_soon",
        N_("Likely to buy soon (predicted order in the next 30 days)"),
        _customer_block(
            {"field": "predicted.p_alive", "op": "between", "from": 0.7},
            {"field": "predicted.orders_30d", "op": "between", "from": 0.5},
        ),
    ),
    (
        "system_valuable_probably_lost",
        N_("Valuable, probably lost (top predicted value, unlikely to buy again)"),
        _customer_block(
            {"field": "predicted.p_alive", "op": "between", "to": 0.3},
            {"field": "predicted.aov", "op": "between", "from": 5000},
        ),
    ),
]


def ensure_system_segments():
    """Create the system segments that are missing; returns the codes created.

    They are dynamic, active and cannot be deleted; the scheduler computes
    them (never computed yet means due). They are named in the current
    language: the account's (DEFAULT_LANGUAGE) when `make run`, `flask db
    upgrade` or a job creates them; like any segment, they can be renamed.
    """
    created = []
    existing = {code for (code,) in Segment.select(Segment.code).tuples()}
    for code, name, definition in SYSTEM_SEGMENTS:
        if code not in existing:
            Segment.create(
                code=code,
                name=_(name),
                type="dynamic",
                active=True,
                system=True,
                in_analytics=True,
                definition=definition,
            )
            created.append(code)
    return created
