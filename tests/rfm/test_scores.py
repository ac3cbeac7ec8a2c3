"""RFM scores on SQLite and PostgreSQL against pandas / plain Python figures
computed from the same generated orders."""

import datetime

import pytest

from webapp.models import Customer, Order, RfmCell, RfmScore, utcnow
from webapp.rfm import service as rfm

from .conftest import AS_OF, expected_quintiles, expected_values


def config(**changes):
    base = {
        "method": "quintiles",
        "monetary": "total",
        "r_cuts": [30, 90, 180, 365],
        "f_cuts": [2, 3, 5, 8],
        "m_cuts": [2000, 5000, 10000, 20000],
        "excluded_statuses": ["cancelled", "returned"],
        "as_of": AS_OF.isoformat(),
    }
    return dict(base, **changes)


def stored():
    return {
        c: (r, f, m, rd, fr, mc)
        for c, r, f, m, rd, fr, mc in RfmScore.select(
            RfmScore.customer,
            RfmScore.r,
            RfmScore.f,
            RfmScore.m,
            RfmScore.recency_days,
            RfmScore.frequency,
            RfmScore.monetary_cents,
        ).tuples()
    }


def as_rows(frame):
    return {
        int(c): (int(row.r), int(row.f), int(row.m), int(row.recency_days), int(row.frequency), int(row.monetary_cents))
        for c, row in frame.iterrows()
    }


def test_quintiles_with_ties_match_pandas(orders):
    scored, unscored = rfm.compute(config(), tz="UTC")
    values = expected_values(orders)
    want = expected_quintiles(values)
    assert scored == len(want) and unscored == Customer.select().count() - len(want)
    assert unscored > 0  # customers with no counting orders exist in the data set
    assert stored() == as_rows(want)
    # the data has ties, and tied values got one score
    assert values["frequency"].duplicated().any() and values["monetary_cents"].duplicated().any()
    for column, score in (("recency_days", "r"), ("frequency", "f"), ("monetary_cents", "m")):
        assert (want.groupby(column)[score].nunique() == 1).all()
    # scores are spread: both ends are used for each letter
    for score in ("r", "f", "m"):
        assert {1, 5} <= set(want[score])
    row = RfmScore.get()
    assert row.as_of == AS_OF and row.computed_at <= utcnow()


def test_average_order_value_and_statuses(orders):
    rfm.compute(config(monetary="average", excluded_statuses=["new"]), tz="UTC")
    want = expected_quintiles(expected_values(orders, excluded=("new",), monetary="average"))
    assert stored() == as_rows(want)


def thresholds(value, cuts, lower_is_better):
    if lower_is_better:
        for score, cut in zip((5, 4, 3, 2), cuts):
            if value <= cut:
                return score
        return 1
    for score, cut in zip((5, 4, 3, 2), reversed(cuts)):
        if value >= cut:
            return score
    return 1


def test_thresholds_match_plain_python(orders):
    cfg = config(method="thresholds", r_cuts=[10, 60, 120, 250], f_cuts=[2, 3, 4, 6], m_cuts=[2500, 5000, 10000, 19800])
    rfm.compute(cfg, tz="UTC")
    values = expected_values(orders)
    want = {
        int(c): (
            thresholds(v.recency_days, cfg["r_cuts"], True),
            thresholds(v.frequency, cfg["f_cuts"], False),
            thresholds(v.monetary_cents, cfg["m_cuts"], False),
            int(v.recency_days),
            int(v.frequency),
            int(v.monetary_cents),
        )
        for c, v in values.iterrows()
    }
    assert stored() == want
    # every score of every letter occurs with these cut points
    for i in range(3):
        assert {s[i] for s in want.values()} == {1, 2, 3, 4, 5}


def test_as_of_date_leaves_out_later_orders(orders):
    early = AS_OF - datetime.timedelta(days=100)
    rfm.compute(config(as_of=early.isoformat()), tz="UTC")
    want = expected_quintiles(expected_values(orders, as_of=early))
    assert stored() == as_rows(want)
    # a customer whose only counting orders came after that date has no score
    later_only = set(
        orders.loc[
            orders["ordered_at"] >= datetime.datetime.combine(early, datetime.time()) + datetime.timedelta(days=1),
            "customer_id",
        ]
    ) - set(want.index)
    assert later_only and not RfmScore.select().where(RfmScore.customer.in_(list(later_only))).exists()
    # recompute replaces everything
    rfm.compute(config(), tz="UTC")
    assert stored() == as_rows(expected_quintiles(expected_values(orders)))


def test_day_boundary_in_the_account_time_zone(db):
    """Asia/Ho_Chi_Minh is UTC+7 all year: the as-of day ends at 17:00 UTC."""
    a, b = (Customer.create(external_id=x) for x in ("a", "b"))
    Order.create(external_id="a1", customer=a, ordered_at=datetime.datetime(2026, 3, 31, 16, 59, 59), total_cents=100)
    Order.create(external_id="a2", customer=a, ordered_at=datetime.datetime(2026, 3, 31, 17, 0, 0), total_cents=900)
    Order.create(external_id="b1", customer=b, ordered_at=datetime.datetime(2026, 3, 30, 16, 30), total_cents=500)
    rfm.compute(config(), tz="Asia/Ho_Chi_Minh")
    # a's 16:59 UTC order is 23:59 local on the as-of day (recency 0); the 17:00 one is April 1st
    # b's 16:30 UTC order on the 30th is 23:30 local on the 30th: one day before
    assert {c: v[3:] for c, v in stored().items()} == {a.id: (0, 1, 100), b.id: (1, 1, 500)}


def test_grid_cells_match_scores(orders):
    rfm.compute(config(), tz="UTC")
    want = expected_quintiles(expected_values(orders))
    cells = want.groupby(["r", "f"]).agg(n=("m", "size"), s=("monetary_cents", "sum"))
    assert {(c.r, c.f): (c.customers, c.monetary_cents) for c in RfmCell.select()} == {
        (int(r), int(f)): (int(v.n), int(v.s)) for (r, f), v in cells.iterrows()
    }
    grid = rfm.grid()
    assert grid["total"] == len(want)
    flat = {(c["r"], c["f"]): c for row in grid["rows"] for c in row["cells"]}
    assert len(flat) == 25
    for (r, f), v in cells.iterrows():
        assert flat[(r, f)]["avg_monetary_cents"] == int(v.s) // int(v.n)


def test_no_orders_means_no_scores(db):
    Customer.create(external_id="lonely")
    assert rfm.compute(config(), tz="UTC") == (0, 1)
    assert not RfmScore.select().exists() and rfm.grid()["total"] == 0


@pytest.mark.parametrize(
    "data, field",
    [
        (
            {
                "method": "thresholds",
                "r_cuts": ["30", "20", "40", "50"],
                "f_cuts": ["1", "2", "3", "4"],
                "m_cuts": ["1", "2", "3", "4"],
            },
            "r_cuts",
        ),
        (
            {
                "method": "thresholds",
                "r_cuts": ["1", "2", "3", "4"],
                "f_cuts": ["0", "2", "3", "4"],
                "m_cuts": ["1", "2", "3", "4"],
            },
            "f_cuts",
        ),
        (
            {
                "method": "thresholds",
                "r_cuts": ["1", "2", "3", "4"],
                "f_cuts": ["1", "2", "3", "4"],
                "m_cuts": ["1", "2.555", "3", "4"],
            },
            "m_cuts",
        ),
        (
            {
                "method": "thresholds",
                "r_cuts": ["1", "", "3", "4"],
                "f_cuts": ["1", "2", "3", "4"],
                "m_cuts": ["1", "2", "3", "4"],
            },
            "r_cuts",
        ),
        ({"method": "median"}, "method"),
        ({"monetary": "max"}, "monetary"),
        ({"as_of": "31.03.2026"}, "as_of"),
        ({"as_of": (datetime.date.today() + datetime.timedelta(days=3)).isoformat()}, "as_of"),
    ],
)
def test_settings_validation(db, data, field):
    with pytest.raises(rfm.RfmSettingsError) as info:
        rfm.clean_settings(data, tz="UTC")
    assert list(info.value.errors) == [field]


def test_settings_saved_in_cents_and_folded(db):
    row = rfm.save_settings(
        {
            "method": "thresholds",
            "monetary": "average",
            "r_cuts": ["7", "30", "90", "365"],
            "f_cuts": ["2", "3", "5", "10"],
            "m_cuts": ["10", "25.50", "100", "1 000"],
            "excluded_statuses": ["Cancelled", "RETURNED"],
            "as_of": "2026-03-31",
        },
        tz="UTC",
    )
    assert (row.method, row.monetary, row.r_cuts, row.f_cuts, row.m_cuts, row.excluded_statuses, row.as_of) == (
        "thresholds",
        "average",
        [7, 30, 90, 365],
        [2, 3, 5, 10],
        [1000, 2550, 10000, 100000],
        ["cancelled", "returned"],
        datetime.date(2026, 3, 31),
    )
    # quintiles keep the thresholds for later
    row = rfm.save_settings({"method": "quintiles"}, tz="UTC")
    assert row.method == "quintiles" and row.r_cuts == [7, 30, 90, 365] and row.as_of is None
