"""The SQL of the engine against the pure-Python reference evaluator.

Hypothesis draws a small customer base and random valid definitions; the
customers the compiled query returns (fast path and order-table path) must be
exactly those the reference says match, on SQLite and on PostgreSQL.
"""

import datetime

from hypothesis import given
from hypothesis import strategies as st

from webapp.engine import count, customer_query, explain, member_ids, parse_definition, to_json
from webapp.engine.compiler import build_query
from webapp.models import Shop

from .conftest import DIFFERENTIAL
from .reference import evaluate
from .strategies import definitions, load_records, load_vocabulary, worlds

DEFINITIONS_PER_WORLD = 3


@DIFFERENTIAL
@given(data=st.data())
def test_sql_agrees_with_reference(db, data):
    world = data.draw(worlds(), label="world")
    tz = world.tz.key
    # midday local time: `today` is world.today in the account zone
    at = datetime.datetime.combine(world.today, datetime.time(12), tzinfo=world.tz)
    if not Shop.select().exists():
        # the shared vocabulary stays for the whole test; each example's rows
        # are rolled back below
        load_vocabulary(world)
    with db.atomic() as txn:
        load_records(world)
        for n in range(DEFINITIONS_PER_WORLD):
            raw = data.draw(definitions(world.today), label=f"definition {n}")
            definition = parse_definition(raw)
            assert parse_definition(to_json(definition), catalogue=definition._catalogue) == definition
            expected = sorted(evaluate(world, definition, world.today, world.tz))
            assert list(member_ids(definition, at=at, tz=tz)) == expected
            assert count(definition, at=at, tz=tz) == len(expected)
            # a re-check of a few customers (scope) answers for exactly them
            few = data.draw(
                st.sets(st.sampled_from([c["id"] for c in world.customers] or [0]), max_size=3), label=f"scope {n}"
            )
            scoped = customer_query(definition, at=at, tz=tz, scope=sorted(few))
            assert sorted(r[0] for r in scoped.tuples()) == sorted(set(expected) & few)
            # the explanation is the compiler's answer for one customer: a
            # customer is a member exactly when it says the definition holds,
            # and that verdict is its blocks' combined by the definition's match
            for c in world.customers:
                why = explain(definition, c["id"], at=at, tz=tz)
                assert why["holds"] == (c["id"] in expected), (c["id"], why)
                blocks = [b["holds"] for b in why["blocks"]]
                combined = (all if definition.match == "all" else any)(blocks) if blocks else True
                assert combined == why["holds"], why
                for block, facts in zip(definition.blocks, why["blocks"], strict=True):
                    assert facts["holds"] == block_verdict(block, facts), (block, facts)
            if any(b.entity == "order" and not b.filters for b in definition.blocks):
                # the rollup fast path was taken: the order table must agree
                slow = sorted(r[0] for r in build_query(definition, at=at, tz=tz, fast=False).tuples())
                assert slow == expected
        txn.rollback()


def block_verdict(block, facts):
    """A block's verdict from its parts' verdicts in the explanation."""
    if "aggregates" not in facts and block.entity not in ("customer", "segment"):
        return all(f["holds"] for f in facts["filters"])  # deals: "no deals at all"
    if block.having:
        return (all if block.having_match == "all" else any)(facts["having"])
    if "aggregates" in facts:
        return facts["aggregates"]["count"] > 0
    if not block.filters:
        return True
    return (all if block.match == "all" else any)(f["holds"] for f in facts["filters"])
