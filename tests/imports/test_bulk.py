"""The bulk import path (webapp.imports.bulk) against the normal one, on
SQLite and PostgreSQL: the same files give the same database, the same
counters and the same rejected rows; a re-import changes nothing; a bulk
import killed with SIGKILL and run again ends as an uninterrupted one."""

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import conftest as root_conftest
import pytest
from procs import descendants, kill_tree, wait_for

from webapp.accounts.service import create_user
from webapp.db import database
from webapp.imports.bulk import foreign_keys, secondary_indexes
from webapp.models import ImportRun

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def frozen(monkeypatch):
    """One clock for both paths, so times written "now" compare equal."""
    import webapp.imports.bulk
    import webapp.imports.kinds
    import webapp.segments.changes

    for module in (webapp.imports.kinds, webapp.imports.bulk, webapp.segments.changes):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)
    # Small files too drop and rebuild the secondary indexes when they write as many rows as a table holds.
    monkeypatch.setattr(webapp.imports.bulk, "REBUILD_ROWS", 1)


TABLES_REBUILT = ("customer", "customer_tag", "custom_value", "orders", "order_item", "customer_order_stats")


def rows(sql_text):
    return sorted(tuple(str(v) if v is not None else None for v in row) for row in database.execute_sql(sql_text))


def snapshot():
    """The data an import writes, by natural keys (no surrogate ids except
    where both paths must create them in the same order)."""
    return {
        "customer": rows(
            "SELECT c.external_id, c.type, c.first_name, c.last_name, c.company_name, c.email, c.phone, c.gender, "
            "c.birth_date, c.birth_md, c.city, c.country, c.source, c.language, c.time_zone, u.email, "
            "c.email_consent, c.sms_consent, c.created_at, c.updated_at, c.first_name_ci, c.last_name_ci, "
            "c.company_name_ci, c.email_ci, c.phone_ci, c.city_ci, c.country_ci, c.source_ci "
            "FROM customer c LEFT JOIN app_user u ON u.id = c.manager_id"
        ),
        "customer ids in file order": [
            r[0] for r in database.execute_sql("SELECT external_id FROM customer ORDER BY id")
        ],
        "tag": [tuple(r) for r in database.execute_sql("SELECT name, name_ci FROM tag ORDER BY id")],
        "customer_tag": rows(
            "SELECT c.external_id, t.name_ci FROM customer_tag ct JOIN customer c ON c.id = ct.customer_id "
            "JOIN tag t ON t.id = ct.tag_id"
        ),
        "custom_field": rows("SELECT entity, code, name, type FROM custom_field"),
        "custom_value": rows(
            "SELECT f.entity, f.code, COALESCE(c.external_id, o.external_id), v.value_str, v.value_ci, "
            "v.value_num, v.value_date, v.value_bool FROM custom_value v JOIN custom_field f ON f.id = v.field_id "
            "LEFT JOIN customer c ON f.entity = 'customer' AND c.id = v.record_id "
            "LEFT JOIN orders o ON f.entity = 'order' AND o.id = v.record_id"
        ),
        "shop": [tuple(r) for r in database.execute_sql("SELECT name, name_ci FROM shop ORDER BY id")],
        "orders": rows(
            "SELECT o.external_id, c.external_id, o.ordered_at, o.status, o.status_ci, s.name, o.total_cents "
            "FROM orders o JOIN customer c ON c.id = o.customer_id LEFT JOIN shop s ON s.id = o.shop_id"
        ),
        "order ids in file order": [r[0] for r in database.execute_sql("SELECT external_id FROM orders ORDER BY id")],
        "product_group": rows(
            "SELECT g.name, g.path, g.path_ci, p.path FROM product_group g LEFT JOIN product_group p ON p.id = g.parent_id"
        ),
        "product": [
            tuple(r)
            for r in database.execute_sql(
                "SELECT p.sku, p.sku_ci, p.name, g.path FROM product p LEFT JOIN product_group g ON g.id = p.group_id "
                "ORDER BY p.id"
            )
        ],
        "order_item": rows(
            "SELECT o.external_id, p.sku, i.quantity, i.price_cents FROM order_item i "
            "JOIN orders o ON o.id = i.order_id JOIN product p ON p.id = i.product_id"
        ),
        "customer_order_stats": rows(
            "SELECT c.external_id, s.orders_count, s.total_cents, s.quantity, s.first_at, s.last_at "
            "FROM customer_order_stats s JOIN customer c ON c.id = s.customer_id"
        ),
        "indexes": sorted(
            (table, name, str(definition)) for table in TABLES_REBUILT for name, definition in secondary_indexes(table)
        ),
        "foreign_keys": sorted(
            (table, name, definition) for table in TABLES_REBUILT for name, definition in foreign_keys(table)
        ),
        "changed_customer": rows(
            "SELECT c.external_id, m.changed_at, m.quiet FROM changed_customer m JOIN customer c ON c.id = m.customer_id"
        ),
    }


def run_record(run):
    report = dict(run.report or {})
    report.pop("import_started_at", None)
    report.pop("bulk", None)
    # In line order: the normal path writes a row it held back for the next
    # batch (an order's items) after rows rejected in that batch.
    report["rejections"] = sorted(report.get("rejections", []), key=lambda r: r["line"])
    rejected = None
    if run.rejected_path:
        header, *lines = Path(run.rejected_path).read_text(encoding="utf-8-sig").splitlines()
        rejected = [header] + sorted(lines)
    return (
        run.kind,
        run.status,
        run.error,
        run.rows_total,
        run.rows_done,
        run.rows_imported,
        run.rows_new,
        run.rows_updated,
        run.rows_rejected,
        report,
        rejected,
    )


CUSTOMERS_1 = """external_id,type,first_name,last_name,email,phone,country,birth_date,manager,email_consent,created_at,tags,custom.age,custom.vip,custom.note
c1,contact,Ирина,Петрова,irina@example.com,+7 912 000-00-01,RU,1990-03-08,manager@example.com,yes,2024-01-15 10:30,VIP|Опт,34,да,first
c2,contact,John,Smith,JOHN@example.com,,UK,15.07.1985,,1,,Newsletter|vip,41,no,
c3,company,,,info@acme.example,,DE,,,no,2024-02-01,,,,hello
c4,robot,Bad,Type,bad@example.com,,,,,,,,,,
c5,contact,Olga,Ivanova,olga@example.com,,RU,not-a-date,,,,,,,
c2,contact,Dup,Row,dup@example.com,,,,,,,,,,
c6,contact,Who,Manages,who@example.com,,,,nobody@example.com,,,,,,
c7,contact,Phone,Less,phone@example.com,12,DE,,,,,Опт,,,
c6,contact,Second,Six,six@example.com,,,,,,,B2B,,,
c8,contact,Minh,Tran,minh@example.com,0912345678,VN,2001-12-31,,да,2023-05-05,B2B|VIP,29,yes,x
"""

CUSTOMERS_2 = """external_id,type,first_name,last_name,email,phone,country,birth_date,manager,email_consent,created_at,tags,custom.age,custom.vip,custom.note
c1,contact,Ирина,Петрова,irina@example.com,+7 912 000-00-01,RU,1990-03-08,manager@example.com,yes,2024-01-15 10:30,VIP|Опт,34,да,first
c2,contact,John,Smith,JOHN@example.com,,UK,15.07.1985,,1,,Newsletter,41,no,
c3,company,,,info@acme.example,,DE,,,no,2024-02-01,,42,,
c8,contact,Minh,Trần,minh@example.com,0912345678,VN,2001-12-31,manager@example.com,да,2023-05-05,B2B|VIP,29,yes,x
c9,contact,New,One,new@example.com,,,,,,,Loyal,,,
"""

ORDERS_1 = """external_id,customer_external_id,ordered_at,status,shop,total,custom.channel
o1,c1,2024-04-01 12:00,paid,Online,1250.50,web
o2,c1,02.05.2024,paid,online,"99,90",
o3,c2,2024-05-10,cancelled,Store 1,10,phone
o4,nobody,2024-05-11,paid,Online,5,
o5,c3,2024-05-12,Paid,,7,
o1,c2,2024-06-01,paid,Online,1,
o6,c8,bad date,paid,Online,1,
o7,c8,2024-07-01,,Store 2,,
"""

ORDERS_2 = """external_id,customer_external_id,ordered_at,status,shop,total,custom.channel
o1,c1,2024-04-01 12:00,paid,Online,1250.50,web
o2,c2,02.05.2024,paid,Online,"99,90",
o3,c2,2024-05-10,paid,Store 1,10,
o8,c9,2024-08-01,paid,Store 3,3,web
"""

ITEMS_1 = """order_external_id,sku,product_name,product_group,quantity,price
o1,TEA-1,Puer,Tea/Chinese tea,2,500.25
o1,CUP-1,Cup,Dishes,1,250
o2,TEA-1,,Tea/Chinese tea,1,99.90
o3,TEA-2,Oolong,Tea/Chinese tea,1,10
o9,TEA-2,Oolong,,1,1
o3,TEA-3,Green,Tea/Green tea,x,1
o5,tea-1,Puer tea,,3,
o7,POT-1,,,,
"""

ITEMS_2 = """order_external_id,sku,product_name,product_group,quantity,price
o1,TEA-1,Puer,Tea/Chinese tea,2,500.25
o1,CUP-1,Cup,Dishes,1,250
o2,TEA-1,,Tea/Chinese tea,2,99.90
o3,TEA-2,Oolong,Tea/Black tea,1,10
o8,CUP-1,Big cup,,1,5
"""

STEPS = [
    ("customers", CUSTOMERS_1),
    ("customers", CUSTOMERS_2),
    ("customers", CUSTOMERS_2),
    ("orders", ORDERS_1),
    ("orders", ORDERS_2),
    ("orders", ORDERS_2),
    ("order-items", ITEMS_1),
    ("order-items", ITEMS_2),
    ("order-items", ITEMS_2),
]


def scenario(run_import, write_file, bulk):
    create_user("manager@example.com", "correct horse battery", role="manager")
    records, snapshots = [], []
    for index, (kind, text) in enumerate(STEPS):
        path = write_file(text, name=f"step-{index}.csv")
        run = run_import(kind, path, bulk=bulk)
        assert run.status == "done", run.error
        assert bool((run.report or {}).get("bulk")) == bulk
        records.append(run_record(run))
        snapshots.append(snapshot())
    return records, snapshots


@pytest.fixture
def run_path(db, imports_dir):
    """Run an import on the path chosen (`bulk`), synchronously."""
    from webapp.imports.bulk import Importer

    def run(kind, path, bulk, **options):
        record = ImportRun.create(
            kind=kind, file_name=Path(path).name, file_path=str(path), status="queued", options=options or None
        )
        Importer(record, imports_dir, bulk=bulk, batch_size=3).execute()
        return ImportRun.get_by_id(record.id)

    return run


@pytest.fixture(params=[0, 2], ids=["parsed-alone", "two-parsers"])
def parsers(request, monkeypatch):
    """The bulk path with the writing process parsing alone, and with two
    child processes parsing beside it in chunks of 3 rows (so that every
    file of the scenario crosses several chunks and both children)."""
    import webapp.imports.bulk
    from webapp import settings

    monkeypatch.setattr(settings, "IMPORT_PARSERS", request.param)
    if request.param:
        monkeypatch.setattr(webapp.imports.bulk, "CHUNK", 3)
    return request.param


def test_bulk_and_normal_paths_give_the_same_database(db, frozen, parsers, run_path, write_file):
    normal = scenario(run_path, write_file, bulk=False)
    root_conftest._truncate()  # the same empty database, sequences restarted
    bulk = scenario(run_path, write_file, bulk=True)
    for step, (a, b) in enumerate(zip(normal[0], bulk[0], strict=True)):
        assert a == b, f"import run record of step {step} ({STEPS[step][0]})"
    for step, (a, b) in enumerate(zip(normal[1], bulk[1], strict=True)):
        for table in a:
            assert a[table] == b[table], f"{table} after step {step} ({STEPS[step][0]})"
    # The scenario does what it claims: rejections, updates, and an unchanged re-import.
    records = bulk[0]
    assert records[0][8] == 6 and records[0][6] == 4  # rejected, new
    assert records[1][7] == 3 and records[1][6] == 1  # updated (c3 custom, c2 tags, c8), new (c9)
    assert records[2][6:8] == (0, 0) and records[2][5] == 5  # the same file again: all unchanged
    assert records[5][6:8] == (0, 0)
    assert records[8][6:8] == (0, 0)


def test_bulk_rejections_name_line_and_column(db, frozen, parsers, run_path, write_file):
    create_user("manager@example.com", "correct horse battery", role="manager")
    run = run_path("customers", write_file(CUSTOMERS_1), bulk=True)
    found = [(r["line"], r["column"]) for r in run.report["rejections"]]
    assert found == [
        (5, "type"),
        (6, "birth_date"),
        (7, "external_id"),
        (8, "manager"),
        (9, "phone"),
        (10, "external_id"),
    ]
    assert "duplicate external_id “c2”: line 3 has it too" in run.report["rejections"][2]["reason"]
    rejected = Path(run.rejected_path).read_text(encoding="utf-8-sig").splitlines()
    assert rejected[3].startswith("c2,contact,Dup,Row,dup@example.com")  # cells read back from the file
    assert rejected[3].endswith('(that row is the one imported)"')


def forked_copies():
    """Children of this process that are forks of it (its command line) or zombies."""
    mine = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
    found = []
    for pid in descendants(os.getpid()):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if state == "Z" or command == mine:
            found.append(pid)
    return found


def test_a_parsing_process_that_fails_fails_the_import_and_writes_nothing(
    db, frozen, monkeypatch, run_path, write_file
):
    import webapp.imports.bulk
    from webapp import settings

    monkeypatch.setattr(settings, "IMPORT_PARSERS", 2)
    monkeypatch.setattr(webapp.imports.bulk, "CHUNK", 3)
    path = write_file(CUSTOMERS_1)
    add = webapp.imports.bulk.CustomersLoad.add

    def add_until_line_4(self, row):
        if row.line == 4:
            raise ValueError("a parser's own error")
        add(self, row)

    monkeypatch.setattr(webapp.imports.bulk.CustomersLoad, "add", add_until_line_4)
    with pytest.raises(ValueError, match="a parser's own error"):  # raised in the child, re-raised here
        run_path("customers", path, bulk=True)
    run = ImportRun.select().order_by(ImportRun.id.desc()).get()
    assert run.status == "failed" and "ValueError" in run.error
    assert database.execute_sql("SELECT COUNT(*) FROM customer").fetchone()[0] == 0

    def die_at_line_4(self, row):
        if row.line == 4:
            os._exit(3)  # the child alone: killed, say, by the out-of-memory killer
        add(self, row)

    monkeypatch.setattr(webapp.imports.bulk.CustomersLoad, "add", die_at_line_4)
    with pytest.raises(RuntimeError, match="ended before the end of the file"):
        run_path("customers", path, bulk=True)
    run = ImportRun.select().order_by(ImportRun.id.desc()).get()
    assert run.status == "failed" and "RuntimeError" in run.error
    assert database.execute_sql("SELECT COUNT(*) FROM customer").fetchone()[0] == 0
    assert forked_copies() == []  # every parsing process ended and was waited for

    monkeypatch.setattr(webapp.imports.bulk.CustomersLoad, "add", add)
    assert run_path("customers", path, bulk=True).status == "done"  # and the file imports as it is


# --- killed and run again ----------------------------------------------------------


def big_customers(path, n):
    with open(path, "w", encoding="utf-8") as f:
        f.write("external_id,first_name,email,created_at,tags,custom.age\n")
        for i in range(n):
            f.write(
                f"K{i:07d},Name {i % 97},k{i}@example.com,2024-01-{1 + i % 28:02d} 10:00,T{i % 5}|T{i % 3},{i % 90}\n"
            )
        f.write("K0000001,Duplicate,dup@example.com,2024-01-01,,1\n")
    return path


def without_now(snap):
    """A snapshot less the times a run writes as "now" (updated_at, changed_at)."""
    snap = dict(snap)
    snap["customer"] = [row[:19] + row[20:] for row in snap["customer"]]
    snap["changed_customer"] = [(row[0], row[2]) for row in snap["changed_customer"]]
    return snap


def start_cli(db_url, tmp_path, path):
    env = dict(os.environ, DATABASE_URL=db_url, SEGMENTO_INSTANCE=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "import", "--bulk", "customers", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def latest_run():
    return ImportRun.select().order_by(ImportRun.id.desc()).first()


@pytest.mark.parametrize("moment", ["staging", "applying"])
def test_a_bulk_import_killed_and_run_again_ends_as_an_uninterrupted_one(
    db, db_url, run_path, imports_dir, tmp_path, moment
):
    n = 30_000
    path = big_customers(imports_dir / "big.csv", n)
    reference = run_path("customers", path, bulk=True)
    assert reference.rows_new == n and reference.rows_rejected == 1
    expected = without_now(snapshot())
    root_conftest._truncate()
    database.close()

    proc = start_cli(db_url, tmp_path, path)
    try:
        if moment == "staging":
            wait_for(lambda: (r := latest_run()) and r.phase == "importing" and 0 < r.rows_done < n, interval=0.01)
        else:  # everything staged: the one transaction of the apply phase runs
            wait_for(lambda: (r := latest_run()) and r.rows_done >= n + 1 and r.status == "running", interval=0.005)
            time.sleep(0.05)
    finally:
        kill_tree(proc.pid, signal.SIGKILL)
        proc.wait(10)
    database.close()
    assert latest_run().status == "running"  # killed before it could finish
    imported = database.execute_sql("SELECT COUNT(*) FROM customer").fetchone()[0]
    assert imported in ((0, n) if moment == "applying" else (0,))  # all or nothing, never a part
    if moment == "applying":
        tags = database.execute_sql("SELECT COUNT(*) FROM customer_tag").fetchone()[0]
        assert (imported, tags) in ((0, 0), (n, len(expected["customer_tag"])))

    proc = start_cli(db_url, tmp_path, path)
    assert proc.wait(120) == 0
    database.close()
    run = latest_run()
    assert (run.status, run.rows_rejected) == ("done", 1)
    assert without_now(snapshot()) == expected
