"""Every secondary index of the migrated schema earns the writes it costs:
none is the leading columns of another index or key of its table (migration
0026 dropped the 17 that peewee's foreign keys had made beside a longer
index), on SQLite and PostgreSQL alike."""

from webapp.db import database, is_postgres

POSTGRES_INDEXES = """
SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL OR x.indexprs IS NOT NULL,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace s ON s.oid = t.relnamespace WHERE s.nspname = current_schema()
"""


def indexes():
    """[(table, index, unique, partial or on expressions, [columns])] of the whole schema."""
    if is_postgres():
        return [(t, i, u, p, list(cols)) for t, i, u, p, cols in database.execute_sql(POSTGRES_INDEXES)]
    found = []
    for (table,) in database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for _seq, name, unique, _origin, partial in database.execute_sql(f'PRAGMA index_list("{table}")'):
            cols = [row[2] for row in database.execute_sql(f'PRAGMA index_info("{name}")')]
            found.append((table, name, bool(unique), bool(partial) or None in cols, cols))
    return found


def test_no_index_is_the_leading_columns_of_another(db):
    everything = indexes()
    assert any(name == "orderitem_product_id_order_id" for _t, name, *_ in everything)  # the catalogue is read
    redundant = [
        f"{table}.{name} {cols} starts {other} {longer}"
        for table, name, unique, partial, cols in everything
        if not unique and not partial
        for table2, other, _unique, partial2, longer in everything
        if table2 == table
        and other != name
        and not partial2
        and len(longer) > len(cols)
        and longer[: len(cols)] == cols
    ]
    assert redundant == []


def test_the_longer_indexes_still_serve_the_foreign_keys(db):
    """The lookups the dropped indexes served go to the longer ones: what a
    cascade from a product runs, and a deal's customer look-up."""
    if is_postgres():
        database.execute_sql("SET enable_seqscan = off")  # an empty table: ask which index it would use
        plan = " ".join(r[0] for r in database.execute_sql("EXPLAIN SELECT 1 FROM order_item WHERE product_id = 1"))
        database.execute_sql("RESET enable_seqscan")
    else:
        plan = " ".join(
            r[3] for r in database.execute_sql("EXPLAIN QUERY PLAN SELECT 1 FROM order_item WHERE product_id = 1")
        )
    assert "orderitem_product_id_order_id" in plan
