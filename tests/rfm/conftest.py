"""A generated order history for the RFM tests, and the figures expected from
it, computed here with pandas (never by calling webapp.rfm)."""

import datetime
import random

import pandas as pd
import pytest

from webapp import rollups
from webapp.models import Customer, Order

AS_OF = datetime.date(2026, 3, 31)
STATUSES = ["complete"] * 6 + ["Cancelled", "returned", "new", None]
PRICES = [1000, 2500, 5000, 9900]  # few distinct totals: monetary values tie


def generate(customers=150, seed=7):
    """Customers with 0-8 orders over the 400 days before AS_OF and some after it.
    Returns the orders as a DataFrame."""
    rnd = random.Random(seed)
    Customer.insert_many(
        [{"external_id": f"c{i:04d}", "first_name": f"Name{i}", "email": f"c{i}@example.com"} for i in range(customers)]
    ).execute()
    ids = [c for (c,) in Customer.select(Customer.id).order_by(Customer.id).tuples()]
    end = datetime.datetime.combine(AS_OF, datetime.time(23, 59, 59))
    rows = []
    for cid in ids:
        for _ in range(rnd.choice([0, 1, 1, 1, 2, 2, 3, 4, 5, 8])):
            # whole days back, so recencies tie; a few orders after AS_OF
            at = end - datetime.timedelta(days=rnd.randrange(-20, 400), hours=rnd.randrange(0, 23))
            status = rnd.choice(STATUSES)
            rows.append(
                {
                    "external_id": f"o{len(rows):05d}",
                    "customer": cid,
                    "ordered_at": at,
                    "status": status,
                    "status_ci": status.casefold() if status else None,
                    "total_cents": rnd.choice(PRICES) * rnd.choice([1, 1, 2]),
                }
            )
    Order.insert_many(rows).execute()
    rollups.rebuild_order_stats()
    frame = pd.DataFrame(rows).rename(columns={"customer": "customer_id"})
    return frame


def expected_values(orders, as_of=AS_OF, excluded=("cancelled", "returned"), monetary="total", offset_hours=0):
    """Per customer with counting orders: recency_days, frequency, monetary_cents."""
    end = datetime.datetime.combine(as_of + datetime.timedelta(days=1), datetime.time()) - datetime.timedelta(
        hours=offset_hours
    )
    status = orders["status"].str.casefold()
    counting = orders[(orders["ordered_at"] < end) & ~status.isin(excluded)]
    g = counting.groupby("customer_id").agg(
        last=("ordered_at", "max"), frequency=("external_id", "count"), total=("total_cents", "sum")
    )
    local_last = (g["last"] + pd.Timedelta(hours=offset_hours)).dt.date
    g["recency_days"] = [(as_of - d).days for d in local_last]
    g["monetary_cents"] = g["total"] if monetary == "total" else g["total"] // g["frequency"]
    return g[["recency_days", "frequency", "monetary_cents"]]


def expected_quintiles(values):
    """Scores from ranks: pandas' min rank is 1 + the number of strictly smaller values."""
    n = len(values)
    out = values.copy()
    worse_r = values["recency_days"].rank(method="min", ascending=False) - 1
    worse_f = values["frequency"].rank(method="min", ascending=True) - 1
    worse_m = values["monetary_cents"].rank(method="min", ascending=True) - 1
    out["r"] = (1 + (5 * worse_r) // n).astype(int)
    out["f"] = (1 + (5 * worse_f) // n).astype(int)
    out["m"] = (1 + (5 * worse_m) // n).astype(int)
    return out


# The documented R×F class table, written out again here.
GRID = {
    5: ["new", "potential", "potential", "champions", "champions"],
    4: ["new", "potential", "potential", "loyal", "loyal"],
    3: ["hibernating", "hibernating", "potential", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
    1: ["lost", "lost", "at_risk", "at_risk", "cant_lose"],
}


def expected_classes(scores):
    """{class key: set of customer ids}."""
    classes = {key: set() for row in GRID.values() for key in row}
    for cid, row in scores.iterrows():
        classes[GRID[int(row["r"])][int(row["f"]) - 1]].add(int(cid))
    return classes


@pytest.fixture
def orders(db):
    return generate()
