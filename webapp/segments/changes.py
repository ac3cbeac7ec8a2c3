"""Which customers changed: the queue the real-time segment update reads.

Every writer of customer data (import, API, UI) calls `mark_changed(ids)` in
the transaction that changed them. One row per customer (`changed_customer`),
upserted, so marking is idempotent and the table never grows beyond the
customer count. The consumer reads a slice with `pending()` and removes what it
handled with `clear()`, which keeps rows marked again meanwhile.
"""

import contextlib

from ..db import database
from ..models import ChangedCustomer, utcnow
from ..sql import bulk_upsert  # plain SQL: cheap for the thousands of ids an import batch marks

CHUNK = 5000


def mark_changed(customer_ids, at=None):
    """Record that these customers changed (set-based; ids may repeat)."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return 0
    at = at or utcnow()
    # In the caller's transaction when there is one (a savepoint would only add undo data).
    with contextlib.nullcontext() if database.in_transaction() else database.atomic():
        for start in range(0, len(ids), CHUNK):
            bulk_upsert(
                ChangedCustomer,
                ["customer", "changed_at"],
                [(i, at) for i in ids[start : start + CHUNK]],
                conflict=["customer"],
                update=["changed_at"],
                compare=["changed_at"],
            )
    return len(ids)


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
