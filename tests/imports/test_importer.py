"""The import engine on SQLite and PostgreSQL: every kind in the spec's format,
idempotent re-imports, row-level rejections, and the broken-file corpus."""

import datetime
import decimal

import pytest

from webapp.accounts.service import create_user
from webapp.db import database, is_postgres
from webapp.fields import service as cf
from webapp.models import (
    MODELS,
    ChangedCustomer,
    Customer,
    CustomerOrderStats,
    CustomerTag,
    CustomField,
    CustomValue,
    Deal,
    ImportRun,
    Mailing,
    MessageEvent,
    Order,
    Pipeline,
    Product,
    ProductGroup,
    Segment,
    SegmentMember,
    Shop,
    Stage,
    Tag,
)
from webapp.rollups import _stats_query

from .conftest import read_rejected

DATA_MODELS = [m for m in MODELS if m is not ImportRun]


def snapshot():
    """Every data row of every table but import_run: to prove a failed import wrote nothing."""
    return {m._meta.table_name: sorted(map(repr, m.select().tuples())) for m in DATA_MODELS}


def customer(ext):
    return Customer.get(Customer.external_id == ext)


def custom(entity, code, record_id):
    field = cf.get_field(entity, code)
    value = CustomValue.get_or_none(CustomValue.field == field, CustomValue.record_id == record_id)
    return None if value is None else cf.typed_value(field, value)


def tags_of(ext):
    return sorted(t.name for t in Tag.select().join(CustomerTag).where(CustomerTag.customer == customer(ext)))


def rejections(run):
    return [(r["line"], r["column"]) for r in run.report["rejections"]]


@pytest.fixture
def manager(db):
    return create_user("manager@example.com", "correct horse battery", role="manager")


@pytest.fixture
def customers_loaded(run_import, fixture_file, manager):
    run = run_import("customers", fixture_file("customers.csv"))
    assert run.status == "done", run.error
    return run


# --- customers -------------------------------------------------------------------


def test_customers_in_the_spec_format(customers_loaded, manager):
    run = customers_loaded
    assert (run.rows_total, run.rows_imported, run.rows_new, run.rows_rejected) == (4, 4, 4, 0)
    assert (run.encoding, run.delimiter) == ("utf-8", ",")
    irina = customer("c1")
    assert (irina.first_name, irina.last_name, irina.first_name_ci, irina.city_ci) == (
        "Ирина",
        "Петрова",
        "ирина",
        "москва",
    )
    assert irina.birth_date == datetime.date(1990, 3, 8) and irina.birth_md == 308
    assert irina.manager_id == manager.id
    assert (irina.email_consent, irina.sms_consent) == (True, False)
    assert irina.created_at == datetime.datetime(2024, 1, 15, 10, 30)
    assert irina.phone == "+79120000001"  # E.164 (issue 20.2)
    john = customer("c2")
    assert john.birth_date == datetime.date(1985, 7, 15)  # DD.MM.YYYY
    assert john.email_ci == "john@example.com" and john.email_consent is True
    acme = customer("c3")
    assert (acme.type, acme.company_name, acme.email_consent) == ("company", "Acme Trading", True)
    anna = customer("c4")
    assert anna.first_name == 'Anna "Annie"' and anna.city == "New\nYork"
    assert anna.created_at == datetime.datetime(2024, 3, 1, 8, 0)  # Z = UTC
    assert tags_of("c1") == ["VIP", "Опт"] and tags_of("c3") == ["Опт"] and tags_of("c2") == []
    # custom.<code> columns made new fields with inferred types
    assert cf.get_field("customer", "age").type == "integer"
    assert cf.get_field("customer", "vip").type == "boolean"
    assert {f["code"]: f["type"] for f in run.report["new_fields"]} == {"age": "integer", "vip": "boolean"}
    assert custom("customer", "age", irina.id) == 34 and custom("customer", "vip", irina.id) is True
    assert custom("customer", "vip", john.id) is False and custom("customer", "age", acme.id) is None
    # every imported customer is queued for the real-time segment update
    assert {c.customer_id for c in ChangedCustomer.select()} == {c.id for c in Customer.select()}
    assert run.rejected_path is None


def test_importing_the_same_file_twice_changes_nothing(customers_loaded, run_import, fixture_file):
    before = snapshot()
    again = run_import("customers", fixture_file("customers.csv"))
    assert again.status == "done"
    assert (again.rows_imported, again.rows_new, again.rows_updated) == (4, 0, 0)
    assert snapshot() == before  # not even updated_at or the change marks moved


def test_a_changed_value_is_updated_and_only_that_customer_marked(customers_loaded, run_import, write_file):
    ChangedCustomer.delete().execute()
    before_c2 = customer("c2")
    path = write_file("external_id,city,custom.age,tags\nc1,Казань,35,VIP\nc2,London,41,\n")
    run = run_import("customers", path)
    assert (run.rows_new, run.rows_updated, run.rows_imported) == (0, 1, 2)
    irina = customer("c1")
    assert (irina.city, irina.city_ci) == ("Казань", "казань")
    assert irina.first_name == "Ирина"  # not in the file: kept
    assert custom("customer", "age", irina.id) == 35
    assert tags_of("c1") == ["VIP"]
    assert customer("c2").updated_at == before_c2.updated_at
    assert [c.customer_id for c in ChangedCustomer.select()] == [irina.id]


def test_blank_cell_in_a_present_column_clears_the_value(customers_loaded, run_import, write_file):
    run = run_import("customers", write_file("external_id,city,custom.age,created_at\nc1,,,\n"))
    assert run.rows_updated == 1
    irina = customer("c1")
    assert irina.city is None and irina.city_ci is None
    assert custom("customer", "age", irina.id) is None
    assert irina.created_at == datetime.datetime(2024, 1, 15, 10, 30)  # blank created_at keeps it


def test_cp1251_semicolons_and_decimal_commas(run_import, fixture_file):
    run = run_import("customers", fixture_file("customers_cp1251.csv"))
    assert (run.status, run.encoding, run.delimiter, run.rows_imported) == ("done", "cp1251", ";", 2)
    ivan = customer("r1")
    assert (ivan.first_name, ivan.city, ivan.email_consent) == ("Иван", "Москва", True)
    assert ivan.birth_date == datetime.date(1980, 2, 1)
    assert cf.get_field("customer", "score").type == "decimal"
    assert custom("customer", "score", ivan.id) == decimal.Decimal("12.5")
    assert customer("r2").email_consent is False


@pytest.mark.parametrize(
    "name, encoding", [("customers_utf16.csv", "utf-16"), ("customers_bom_semicolon.csv", "utf-8-sig")]
)
def test_utf16_and_bom_files(run_import, fixture_file, name, encoding):
    run = run_import("customers", fixture_file(name))
    assert (run.status, run.encoding) == ("done", encoding)
    assert run.rows_imported == 2
    assert {c.city for c in Customer.select()} in ({"Сочи", "Омск"}, {"Казань", "Тверь"})


def test_account_time_zone_applies_to_times_without_offset(run_import, write_file):
    from zoneinfo import ZoneInfo

    path = write_file("external_id,created_at\nz1,2024-06-01 12:00\nz2,2024-06-01T12:00:00+00:00\n")
    run_import("customers", path, tz=ZoneInfo("Europe/Moscow"))
    assert customer("z1").created_at == datetime.datetime(2024, 6, 1, 9, 0)
    assert customer("z2").created_at == datetime.datetime(2024, 6, 1, 12, 0)


def test_bad_rows_are_rejected_with_line_column_and_reason(run_import, write_file, manager):
    cf.create_field("customer", "level", "Level", "enum", options=["Gold", "Silver"])
    path = write_file(
        "external_id,birth_date,email_consent,gender,custom.level,manager,first_name\n"
        "ok1,1990-01-01,yes,female,gold,manager@example.com,Ok\n"
        ",1990-01-01,yes,,,,No key\n"
        "bad2,31.02.1990,yes,,,,Bad date\n"
        "bad3,,maybe,,,,Bad bool\n"
        "bad4,,,robot,,,Bad enum\n"
        "bad5,,,,Platinum,,Bad option\n"
        "bad6,,,,,ghost@example.com,Unknown manager\n"
        "bad7,,,,,,Too many,values\n"
        "bad8,,\n"
        f"bad9,,,,,,{'x' * 300}\n"
        "ok2,,,,,,Ok too\n"
    )
    run = run_import("customers", path)
    assert run.status == "done"
    assert (run.rows_total, run.rows_imported, run.rows_rejected) == (11, 2, 9)
    assert sorted(Customer.select(Customer.external_id).tuples()) == [("ok1",), ("ok2",)]
    assert custom("customer", "level", customer("ok1").id) == "Gold"
    assert rejections(run) == [
        (3, "external_id"),
        (4, "birth_date"),
        (5, "email_consent"),
        (6, "gender"),
        (7, "custom.level"),
        (8, "manager"),
        (9, ""),
        (10, ""),
        (11, "first_name"),
    ]
    reasons = {r["line"]: r["reason"] for r in run.report["rejections"]}
    assert "“31.02.1990” is not a date" in reasons[4]
    assert "“maybe” is not yes or no" in reasons[5]
    assert "“robot” is not one of: male, female" in reasons[6]
    assert "“Platinum” is not an option" in reasons[7]
    assert "no user with the email “ghost@example.com”" in reasons[8]
    assert "8 values but the header has 7 columns" in reasons[9]
    assert "cut short" in reasons[10]
    assert "300 characters" in reasons[11]
    header, rows = read_rejected(run)
    assert header == [
        "external_id",
        "birth_date",
        "email_consent",
        "gender",
        "custom.level",
        "manager",
        "first_name",
        "error",
    ]
    assert rows[0] == ["", "1990-01-01", "yes", "", "", "", "No key", "line 3, column external_id: a value is required"]
    assert rows[1][-1].startswith("line 4, column birth_date: “31.02.1990” is not a date")
    assert len(rows) == 9


def test_rejected_file_fixed_and_imported_again(run_import, write_file, fixture_file, imports_dir):
    run = run_import("customers", write_file("external_id,birth_date\nr1,1990-13-01\nr2,2000-01-01\n"))
    assert run.rows_rejected == 1
    fixed = imports_dir / "fixed.csv"
    fixed.write_text(
        open(run.rejected_path, encoding="utf-8-sig").read().replace("1990-13-01", "1990-12-01"), encoding="utf-8-sig"
    )
    again = run_import("customers", fixed)
    assert (again.status, again.rows_imported, again.rows_rejected) == ("done", 1, 0)
    assert customer("r1").birth_date == datetime.date(1990, 12, 1)
    assert "error" in " ".join(again.report["notes"])  # its error column was left out


def test_duplicate_keys_within_a_file_across_batches(run_import, fixture_file):
    run = run_import("customers", fixture_file("broken/duplicate_keys.csv"), batch_size=2)
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 3, 2)
    assert customer("k1").first_name == "First" and customer("k2").first_name == "Second"
    reasons = {r["line"]: r["reason"] for r in run.report["rejections"]}
    assert reasons == {
        4: "duplicate external_id “k1”: line 2 has it too (that row is the one imported)",
        6: "duplicate external_id “k2”: line 3 has it too (that row is the one imported)",
    }


def test_formulas_are_stored_as_given_and_neutralised_in_the_rejected_file(run_import, fixture_file):
    run = run_import("customers", fixture_file("broken/formulas.csv"))
    assert (run.rows_imported, run.rows_rejected) == (2, 1)
    f1 = customer("f1")
    assert f1.first_name == '=HYPERLINK("http://evil.example")' and f1.city == "@SUM(1+1)"
    assert customer("f3").city == "-5" and customer("f3").last_name == "+7 (912) 000-00-01"
    _header, rows = read_rejected(run)
    assert rows == [
        [
            "f2",
            "'+cmd|' /C calc'!A0",
            "'-2+3",
            "Paris",
            "not-a-date",
            "line 3, column birth_date: “not-a-date” is not a date (use YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)",
        ]
    ]


def test_unknown_columns_are_ignored_with_a_note(run_import, fixture_file):
    run = run_import("customers", fixture_file("broken/unknown_columns.csv"))
    assert (run.status, run.rows_imported) == ("done", 2)
    notes = " ".join(run.report["notes"])
    assert "“favourite_colour” is not a column of a “Customers” import" in notes
    assert "not a valid field code" in notes
    assert run.mapping["columns"] == ["external_id", "first_name", None, "city", None, None]
    assert CustomField.select().count() == 0


# --- broken files: clear message, nothing written ----------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken/empty.csv", "The file is empty."),
        ("broken/header_only.csv", "header row but no data rows"),
        ("broken/missing_key_column.csv", "The file has no “external_id” column"),
        ("broken/wrong_encoding_latin1.csv", "Line 2, character 7"),
        ("broken/truncated_quote.csv", "Line 3, column first_name: a quoted value opens here"),
        ("broken/excel.xlsx.csv", "This is an Excel workbook"),
    ],
)
def test_unreadable_files_fail_before_writing_anything(customers_loaded, run_import, fixture_file, name, message):
    before = snapshot()
    run = run_import("customers", fixture_file(name))
    assert run.status == "failed"
    assert message in run.error
    assert run.rows_imported == 0
    assert snapshot() == before


def test_a_file_without_newlines_fails_clearly(customers_loaded, run_import, write_file):
    before = snapshot()
    path = write_file("external_id," + "x" * (10 * 1024 * 1024))  # one 10 MB line, no header row after it
    run = run_import("customers", path)
    assert run.status == "failed"
    assert "Line 1 (the header row): the line is 10,485,772 characters long" in run.error
    assert snapshot() == before


def test_a_10mb_data_line_is_rejected_and_the_rest_imported(run_import, imports_dir):
    path = imports_dir / "long.csv"
    with open(path, "w") as f:
        f.write("external_id,first_name\nl1,Before\n")
        f.write("l2," + "y" * (10 * 1024 * 1024) + "\n")
        f.write("l3,After\n")
    run = run_import("customers", path)
    assert (run.status, run.rows_total, run.rows_imported, run.rows_rejected) == ("done", 3, 2, 1)
    assert run.report["rejections"][0]["line"] == 3
    assert "10,485,763 characters long" in run.report["rejections"][0]["reason"]
    assert sorted(Customer.select(Customer.external_id).tuples()) == [("l1",), ("l3",)]


def test_a_new_custom_field_that_does_not_fit_later_rows_rejects_them(run_import, write_file):
    from webapp.imports.service import SAMPLE_ROWS

    rows = "".join(f"n{i},{i}\n" for i in range(SAMPLE_ROWS)) + "n9,lots\n"  # inferred from the first rows
    run = run_import("customers", write_file("external_id,custom.visits\n" + rows))
    assert cf.get_field("customer", "visits").type == "integer"
    assert run.rows_rejected == 1 and "“lots” is not a number" in run.report["rejections"][0]["reason"]


def test_cancel_between_batches_keeps_committed_batches(run_import, write_file, imports_dir):
    from webapp.imports.service import Importer

    path = write_file("external_id\n" + "".join(f"x{i}\n" for i in range(10)))
    run = ImportRun.create(kind="customers", file_name="x.csv", file_path=str(path), status="queued")
    seen = []

    def progress(r):
        if r.phase == "importing" and r.rows_done >= 4 and not seen:
            seen.append(r.rows_done)
            ImportRun.update(cancel_requested=True).where(ImportRun.id == r.id).execute()

    Importer(run, imports_dir, on_progress=progress, batch_size=4).execute()
    run = ImportRun.get_by_id(run.id)
    assert run.status == "cancelled"
    assert run.rows_imported == 4 == Customer.select().count()
    assert run.cancel_requested is False


def test_numbers_too_large_to_store_are_rejected(run_import, write_file):
    cf.create_field("customer", "big", "Big", "decimal")
    run = run_import("customers", write_file("external_id,custom.big\nb1,1\nb2,1e30\nb3,3\n"))
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 2, 1)
    assert "“1e30” is too large" in run.report["rejections"][0]["reason"]


@pytest.fixture
def refuse_boom(db):
    """A trigger that makes the database itself refuse customer 'boom' (as a
    constraint added by an administrator would)."""
    if is_postgres():
        db.execute_sql(
            "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN "
            "IF NEW.external_id = 'boom' THEN RAISE EXCEPTION 'boom is refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        db.execute_sql(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON customer FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
        )
        yield
        db.execute_sql("DROP TRIGGER refuse_boom ON customer")
        db.execute_sql("DROP FUNCTION refuse_boom()")
    else:
        db.execute_sql(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON customer WHEN NEW.external_id = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom is refused'); END"
        )
        yield
        db.execute_sql("DROP TRIGGER refuse_boom")


def test_a_row_the_database_refuses_is_rejected_and_its_batch_goes_on(run_import, write_file, refuse_boom):
    rows = "".join(f"r{i},Name {i}\n" for i in range(6))
    run = run_import(
        "customers", write_file("external_id,first_name\n" + rows[:40] + "boom,Bad\n" + rows[40:]), batch_size=4
    )
    assert run.status == "done"
    assert (run.rows_total, run.rows_imported, run.rows_rejected) == (7, 6, 1)
    rejection = run.report["rejections"][0]
    assert rejection["line"] == 6
    assert "the database refused this row" in rejection["reason"] and "boom is refused" in rejection["reason"]
    assert Customer.select().count() == 6
    _header, rows_out = read_rejected(run)
    assert len(rows_out) == 1 and rows_out[0][0] == "boom"


# --- orders and order items -------------------------------------------------------------


def stats_match_orders():
    """The stored rollup equals the one computed from the orders now (both
    read as the database stores them)."""
    expected = {row[0]: row[1:] for row in database.execute(_stats_query()).fetchall()}
    stored = {
        row[0]: row[1:]
        for row in database.execute_sql(
            "SELECT customer_id, orders_count, total_cents, quantity, first_at, last_at FROM customer_order_stats"
        ).fetchall()
    }
    return len(expected) > 0 and expected == stored


@pytest.fixture
def orders_loaded(customers_loaded, run_import, fixture_file):
    return run_import("orders", fixture_file("orders.csv"))


def test_orders(orders_loaded):
    run = orders_loaded
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 3, 3)
    assert rejections(run) == [(5, "customer_external_id"), (6, "ordered_at"), (7, "total")]
    assert "no customer with the external id “nobody”" in run.report["rejections"][0]["reason"]
    assert "more than two decimals" in run.report["rejections"][2]["reason"]
    o1 = Order.get(Order.external_id == "o1")
    assert (o1.total_cents, o1.status_ci, o1.shop.name) == (125050, "paid", "Online")
    assert Order.get(Order.external_id == "o2").total_cents == 9990
    assert Order.get(Order.external_id == "o2").ordered_at == datetime.datetime(2024, 5, 2)
    assert Shop.select().count() == 2
    stats = CustomerOrderStats.get(CustomerOrderStats.customer == customer("c1"))
    assert (stats.orders_count, stats.total_cents) == (2, 135040)
    assert stats_match_orders()


def test_orders_reimport_and_moving_an_order_keeps_rollups_exact(orders_loaded, run_import, fixture_file, write_file):
    before = snapshot()
    again = run_import("orders", fixture_file("orders.csv"))
    assert (again.rows_new, again.rows_updated, again.rows_imported) == (0, 0, 3)
    assert snapshot() == before
    ChangedCustomer.delete().execute()
    moved = run_import(
        "orders", write_file("external_id,customer_external_id,ordered_at,total\no2,c2,2024-05-02,99.90\n")
    )
    assert moved.rows_updated == 1
    assert stats_match_orders()
    assert CustomerOrderStats.get(CustomerOrderStats.customer == customer("c1")).orders_count == 1
    assert {c.customer_id for c in ChangedCustomer.select()} == {customer("c1").id, customer("c2").id}


def test_order_items_replace_the_orders_items(orders_loaded, run_import, fixture_file, write_file):
    run = run_import("order-items", fixture_file("order_items.csv"))
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 4, 2)
    assert rejections(run) == [(6, "order_external_id"), (7, "quantity")]
    o1 = Order.get(Order.external_id == "o1")
    items = sorted((i.product.sku, i.quantity, i.price_cents) for i in o1.items)
    assert items == [("CUP-1", 1, 25000), ("TEA-1", 2, 50025)]
    tea = Product.get(Product.sku_ci == "tea-1")
    assert (tea.name, tea.group.path, tea.group.parent.path) == ("Puer", "Tea/Chinese tea", "Tea")
    assert ProductGroup.select().count() == 3  # Tea, Tea/Chinese tea, Dishes
    assert stats_match_orders()
    assert CustomerOrderStats.get(CustomerOrderStats.customer == customer("c1")).quantity == 4

    before = snapshot()
    again = run_import("order-items", fixture_file("order_items.csv"))
    assert (again.rows_new, again.rows_updated) == (0, 0)
    assert snapshot() == before

    replaced = run_import("order-items", write_file("order_external_id,sku,quantity,price\no1,TEA-9,5,1\n"))
    assert replaced.rows_updated == 1
    assert [(i.product.sku, i.quantity) for i in o1.items] == [("TEA-9", 5)]
    assert stats_match_orders()


def test_order_items_split_across_batches_and_out_of_order(orders_loaded, run_import, write_file):
    path = write_file(
        "order_external_id,sku,quantity,price\no1,A,1,1\no1,B,1,1\no1,C,1,1\no2,A,1,1\no1,D,1,1\no3,E,1,1\n"
    )
    run = run_import("order-items", path, batch_size=2)
    assert (run.rows_imported, run.rows_rejected) == (6, 0)
    o1 = Order.get(Order.external_id == "o1")
    assert sorted(i.product.sku for i in o1.items) == ["A", "B", "C", "D"]
    again = run_import("order-items", path, batch_size=2)
    assert sorted(i.product.sku for i in o1.items) == ["A", "B", "C", "D"]
    assert again.rows_rejected == 0
    assert stats_match_orders()


# --- deals and messages ------------------------------------------------------------------


def test_deals(customers_loaded, run_import, fixture_file, manager):
    run = run_import("deals", fixture_file("deals.csv"))
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 2, 2)
    assert rejections(run) == [(4, "manager"), (5, "stage_kind")]
    d1 = Deal.get(Deal.external_id == "d1")
    assert (d1.pipeline.name, d1.stage.name, d1.stage.kind) == ("Tours", "Won", "won")
    assert (d1.amount_cents, d1.manager_id) == (15000000, manager.id)
    assert d1.closed_at == datetime.datetime(2024, 2, 1)
    d2 = Deal.get(Deal.external_id == "d2")
    assert (d2.amount_cents, d2.stage.kind) == (250000, "open")
    assert custom("deal", "destination", d1.id) == "Egypt"
    assert Pipeline.select().count() == 1 and Stage.select().count() == 2
    before = snapshot()
    assert run_import("deals", fixture_file("deals.csv")).rows_updated == 0
    assert snapshot() == before


def test_messages_are_not_added_twice(customers_loaded, run_import, fixture_file):
    run = run_import("messages", fixture_file("messages.csv"))
    assert (run.status, run.rows_new, run.rows_rejected) == ("done", 3, 2)
    assert rejections(run) == [(5, "kind"), (6, "customer_external_id")]
    assert MessageEvent.select().count() == 3  # line 7 repeats line 3
    assert Mailing.get(Mailing.name_ci == "flash sale").channel == "sms"
    again = run_import("messages", fixture_file("messages.csv"))
    assert (again.rows_new, again.rows_imported) == (0, 4)
    assert MessageEvent.select().count() == 3


# --- static segment from a list -------------------------------------------------------------


def test_list_segment_with_unmatched_entries(customers_loaded, run_import, write_file):
    path = write_file("email\nIRINA@example.com\nc2\nnobody@example.com\n\nc3\nc404\n")
    run = run_import("segment", path, segment_name="Март")
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 3, 2)
    segment = Segment.get_by_id(run.segment_id)
    assert (segment.type, segment.source, segment.size) == ("static", "list", 3)
    assert segment.definition["blocks"][0]["filters"][0]["values"] == [{"value": segment.code, "exclude": False}]
    members = {m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == segment)}
    assert members == {"c1", "c2", "c3"}
    assert [(r["line"], r["reason"]) for r in run.report["rejections"]] == [
        (4, "no customer has this email or external id"),
        (7, "no customer has this email or external id"),
    ]
    _header, rows = read_rejected(run)
    assert [r[0] for r in rows] == ["nobody@example.com", "c404"]


def test_list_without_header_uses_its_first_line(customers_loaded, run_import, write_file):
    run = run_import("segment", write_file("c1\nc2\n"), segment_name="Two")
    assert (run.rows_total, run.rows_imported) == (2, 2)
    assert Segment.get_by_id(run.segment_id).size == 2


def test_rollup_stays_exact_when_new_and_changed_orders_share_a_batch(orders_loaded, run_import, write_file):
    # o1 moves c1 -> c2 and changes total while c2 and c1 also get new orders, in batches of 2 and 3.
    path = write_file(
        "external_id,customer_external_id,ordered_at,total\n"
        "n1,c2,2023-01-01,5\no1,c2,2024-04-01 12:00,1\nn2,c1,2025-01-01,7\n"
        "n3,c3,2022-02-02,1.50\nn4,c3,2026-01-01,2\n"
    )
    for batch_size in (2, 3):
        run = run_import("orders", path, batch_size=batch_size)
        assert run.rows_rejected == 0
        assert stats_match_orders()
    stats = CustomerOrderStats.get(CustomerOrderStats.customer == customer("c3"))
    assert (stats.orders_count, stats.total_cents) == (2, 150 + 200)  # o6 of orders.csv was rejected
    assert (stats.first_at, stats.last_at) == (datetime.datetime(2022, 2, 2), datetime.datetime(2026, 1, 1))


def test_line_numbers_count_quoted_line_breaks(run_import, write_file):
    run = run_import(
        "customers", write_file('external_id,city,birth_date\nm1,"two\nlines",\nm2,x,bad\r\nm3,"a\r\nb\r\nc",bad\n')
    )
    assert [(r["line"], r["column"]) for r in run.report["rejections"]] == [(4, "birth_date"), (5, "birth_date")]
    assert customer("m1").city == "two\nlines"


def test_the_connection_settings_are_put_back(db, run_import, write_file, fixture_file):
    def foreign_keys():
        return db.execute_sql("PRAGMA foreign_keys").fetchone()[0] if not is_postgres() else 1

    run_import("customers", write_file("external_id\na\n"))
    assert foreign_keys() == 1
    run_import("orders", fixture_file("orders.csv"))  # every row rejected: no customers c1..c3
    assert foreign_keys() == 1


def test_the_customers_language_is_imported_as_a_code_segmento_speaks(customers_loaded, run_import, write_file):
    run = run_import("customers", write_file("external_id,language\nc1,ru-RU\nc2,VI\nc3,\nc4,de\n"))
    assert (run.rows_imported, rejections(run)) == (3, [(5, "language")])
    assert [customer(c).language for c in ("c1", "c2", "c3")] == ["ru", "vi", None]
