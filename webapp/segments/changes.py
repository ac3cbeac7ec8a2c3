"""Which customers changed: the queue the real-time segment update reads.

Every writer of customer data (import, API, UI) calls `mark_changed(ids)` in
the transaction that changed them. One row per customer (`changed_customer`),
upserted, so marking is idempotent and the table never grows beyond the
customer count. The consumer reads a slice with `pending()` and removes what it
handled with `clear()`, which keeps rows marked again meanwhile.

Marks made under `quietly()` (an import run without triggers) are quiet: the
entries and exits they lead to are logged as quiet, and triggers skip them.
An ordinary mark of the same customer makes it ordinary again.
"""

import contextlib
import contextvars

from ..db import database, is_postgres
from ..models import ChangedCustomer, utcnow
from ..sql import bind, bulk_upsert  # plain SQL: cheap for the thousands of ids an import batch marks

CHUNK = 5000
_QUIET = contextvars.ContextVar("segmento_quiet_marks", default=False)


@contextlib.contextmanager
def quietly():
    """Marks made inside the block are quiet (see the module's docstring)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def mark_changed(customer_ids, at=None):
    """Record that these customers changed (set-based; ids may repeat)."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return 0
    at = at or utcnow()
    quiet = True if _QUIET.get() else None
    # A quiet mark leaves an ordinary one pending for the customer ordinary.
    update = ["changed_at"] if quiet else ["changed_at", "quiet"]
    # In the caller's transaction when there is one (a savepoint would only add undo data).
    with contextlib.nullcontext() if database.in_transaction() else database.atomic():
        for start in range(0, len(ids), CHUNK):
            bulk_upsert(
                ChangedCustomer,
                ["customer", "changed_at", "quiet"],
                [(i, at, quiet) for i in ids[start : start + CHUNK]],
                conflict=["customer"],
                update=update,
                compare=update,
            )
    return len(ids)


def mark_changed_from(select, params=(), at=None):
    """Mark the customers whose ids `select` (SQL text of one column, `cid`)
    returns: one statement, for a bulk import's changed customers at once."""
    at = at or utcnow()
    quiet = True if _QUIET.get() else None
    p = database.param
    op = "IS DISTINCT FROM" if is_postgres() else "IS NOT"
    sets = ['"changed_at" = excluded."changed_at"'] + ([] if quiet else ['"quiet" = excluded."quiet"'])
    differs = ['"changed_customer"."changed_at" ' + op + ' excluded."changed_at"'] + (
        [] if quiet else ['"changed_customer"."quiet" ' + op + ' excluded."quiet"']
    )
    # PostgreSQL types the values of a SELECT by themselves: cast them to the columns' types.
    stamp, flag = (f"CAST({p} AS TIMESTAMP)", f"CAST({p} AS BOOLEAN)") if is_postgres() else (p, p)
    cursor = database.execute_sql(
        'INSERT INTO "changed_customer" ("customer_id", "changed_at", "quiet") '
        f"SELECT DISTINCT x.cid, {stamp}, {flag} FROM ({select}) AS x WHERE x.cid IS NOT NULL "
        f'ON CONFLICT ("customer_id") DO UPDATE SET {", ".join(sets)} WHERE {" OR ".join(differs)}',
        [bind(at), quiet, *params],
    )
    return cursor.rowcount


def quiet_among(customer_ids):
    """Which of these customers have a quiet mark."""
    return {
        cid
        for (cid,) in ChangedCustomer.select(ChangedCustomer.customer)
        .where(ChangedCustomer.customer.in_(list(customer_ids)), ChangedCustomer.quiet == True)  # noqa: E712
        .tuples()
    }


def pending(limit=1000):
    """The oldest marks: [(customer_id, changed_at)]."""
    return list(
        ChangedCustomer.select(ChangedCustomer.customer, ChangedCustomer.changed_at)
        .order_by(ChangedCustomer.changed_at, ChangedCustomer.customer)
        .limit(limit)
        .tuples()
    )


def clear(marks):
    """Remove handled marks, each only if it was not marked again since it was read."""
    with database.atomic():
        for customer_id, changed_at in marks:
            (
                ChangedCustomer.delete()
                .where(ChangedCustomer.customer == customer_id, ChangedCustomer.changed_at == changed_at)
                .execute()
            )
