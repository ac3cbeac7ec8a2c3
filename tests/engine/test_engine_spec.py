"""Hand-written cases for every row of the segment definition spec.

Each test names the spec section it covers. They run on SQLite and
PostgreSQL (the `db` fixture) against rows written through the models.
"""

import datetime

import pytest

from webapp import engine
from webapp.fields import service as cf
from webapp.models import Customer, CustomerOrderStats, User

from .helpers import AT, customer, deal, event, matches, message, one, order, pipeline, product, segment, tag, values

D = datetime.datetime


# --- Evaluation ----------------------------------------------------------------


def test_today_is_the_date_of_at_in_the_account_time_zone(db):
    customer("created-14th", created_at=D(2025, 6, 14, 20, 0))  # 23:00 on the 14th in Moscow
    definition = one("customer", {"field": "created_at", "op": "relative", "from_days": 0, "to_days": 0})
    at = D(2025, 6, 14, 21, 30)  # the 14th in UTC, already 00:30 on the 15th in Moscow
    assert matches(definition, at=at, tz="UTC") == ["created-14th"]
    assert matches(definition, at=at, tz="Europe/Moscow") == []
    yesterday = one("customer", {"field": "created_at", "op": "relative", "from_days": -1, "to_days": -1})
    assert matches(yesterday, at=at, tz="Europe/Moscow") == ["created-14th"]
    # an aware `at` means the same instant
    aware = at.replace(tzinfo=datetime.UTC)
    assert matches(definition, at=aware, tz="Europe/Moscow") == []


def test_datetime_compares_by_its_date_in_the_account_time_zone(db):
    customer("late", created_at=D(2025, 6, 14, 22, 30))  # 15th 01:30 in Moscow, 14th in UTC
    customer("early", created_at=D(2025, 6, 15, 0, 30))  # 15th in both
    definition = one("customer", {"field": "created_at", "op": "between", "from": "2025-06-15", "to": "2025-06-15"})
    assert matches(definition, tz="UTC") == ["early"]
    assert matches(definition, tz="Europe/Moscow") == ["early", "late"]
    # New York (UTC-4 in June): 22:30 UTC on the 14th is 18:30 on the 14th
    assert matches(definition, tz="America/New_York") == []


def test_at_defaults_to_now_and_relative_counts_from_today(db):
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    customer("recent", created_at=now - datetime.timedelta(days=2))
    customer("old", created_at=now - datetime.timedelta(days=40))
    definition = one("customer", {"field": "created_at", "op": "relative", "from_days": -7})
    assert sorted(Customer.get_by_id(i).external_id for i in engine.member_ids(definition)) == ["recent"]
    assert engine.count(definition) == 1


def test_evaluation_never_changes_data(db):
    c = customer("a", city="Москва")
    order(c, D(2025, 1, 1), "10")
    before = [(x.id, x.updated_at) for x in Customer.select()], list(CustomerOrderStats.select().tuples())
    matches(one("order", having=[{"agg": "count", "op": "between", "from": 0, "to": 0}]))
    matches(one("customer", {"field": "city", "op": "in", "values": values("москва")}))
    after = [(x.id, x.updated_at) for x in Customer.select()], list(CustomerOrderStats.select().tuples())
    assert before == after


# --- Definition -------------------------------------------------------------------


def test_no_blocks_matches_every_customer(db):
    customer("a"), customer("b")
    assert matches({"version": 1, "blocks": []}) == ["a", "b"]
    assert matches({"version": 1, "match": "any", "blocks": []}) == ["a", "b"]
    assert matches({}) == ["a", "b"]


def test_blocks_combine_by_match_all_by_default_or_any(db):
    customer("moscow-female", city="Москва", gender="female")
    customer("moscow-male", city="Москва", gender="male")
    customer("london-female", city="London", gender="female")
    city = {"entity": "customer", "filters": [{"field": "city", "op": "in", "values": values("москва")}]}
    gender = {"entity": "customer", "filters": [{"field": "gender", "op": "in", "values": values("female")}]}
    assert matches({"blocks": [city, gender]}) == ["moscow-female"]
    assert matches({"match": "all", "blocks": [city, gender]}) == ["moscow-female"]
    assert matches({"match": "any", "blocks": [city, gender]}) == ["london-female", "moscow-female", "moscow-male"]


def test_customer_block_filters_combine_by_its_match(db):
    customer("a", city="Москва", gender="female")
    customer("b", city="Москва")
    customer("c", gender="female")
    filters = [
        {"field": "city", "op": "in", "values": values("Москва")},
        {"field": "gender", "op": "in", "values": values("female")},
    ]
    assert matches(one("customer", *filters)) == ["a"]
    assert matches(one("customer", *filters, match="any")) == ["a", "b", "c"]
    assert matches(one("customer")) == ["a", "b", "c"]  # no filters: everyone


# --- Blocks: record blocks ------------------------------------------------------------


def test_record_block_without_having_holds_when_some_record_passes_the_filters(db):
    a, b, c = customer("a"), customer("b"), customer("c")
    order(a, D(2025, 6, 1), "50")
    order(b, D(2024, 1, 1), "50")
    recent = {"field": "ordered_at", "op": "relative", "from_days": -30}
    assert matches(one("order", recent)) == ["a"]
    assert matches(one("order")) == ["a", "b"]  # no filters: any order


def test_record_filters_combine_by_match_and_having_by_having_match(db):
    a, b = customer("a"), customer("b")
    order(a, D(2025, 6, 1), "500", status="paid")
    order(a, D(2025, 6, 2), "20", status="cancelled")
    order(b, D(2025, 6, 3), "20", status="paid")
    paid = {"field": "status", "op": "in", "values": values("PAID")}
    big = {"field": "total", "op": "between", "from": 100}
    assert matches(one("order", paid, big)) == ["a"]
    assert matches(one("order", paid, big, match="any")) == ["a", "b"]
    two = {"agg": "count", "op": "between", "from": 2}
    sum_500 = {"agg": "sum", "op": "between", "from": 500}
    assert matches(one("order", having=[two, sum_500])) == ["a"]
    assert matches(one("order", having=[two, {"agg": "sum", "op": "between", "from": 600}])) == []
    assert matches(one("order", having=[two, {"agg": "sum", "op": "between", "from": 600}], having_match="any")) == [
        "a"
    ]
    # conditions are over R: only the paid orders of a (one order) count here
    assert matches(one("order", paid, having=[two])) == []


def test_count_zero_matches_customers_without_records(db):
    a, b = customer("a"), customer("never-ordered")
    c = customer("only-old")
    order(a, D(2025, 6, 1), "10")
    order(c, D(2023, 1, 1), "10")
    none_at_all = one("order", having=[{"agg": "count", "op": "between", "from": 0, "to": 0}])
    assert matches(none_at_all) == ["never-ordered"]
    # no order in the last 180 days: customers who never ordered included
    not_recent = one(
        "order",
        {"field": "ordered_at", "op": "relative", "from_days": -180},
        having=[{"agg": "count", "op": "between", "from": 0, "to": 0}],
    )
    assert matches(not_recent) == ["never-ordered", "only-old"]
    at_most_one = one("order", having=[{"agg": "count", "op": "between", "to": 1}])
    assert matches(at_most_one) == ["a", "never-ordered", "only-old"]


@pytest.mark.parametrize("agg", ["avg", "first_at", "last_at"])
def test_null_aggregates_of_no_records_match_nothing(db, agg):
    customer("never-ordered")
    a = customer("a")
    order(a, D(2025, 6, 1), "10")
    if agg == "avg":
        cond = {"agg": "avg", "op": "between", "to": 1000}
    else:
        cond = {"agg": agg, "op": "relative", "to_days": 10}
    assert matches(one("order", having=[cond])) == ["a"]
    assert matches(one("order", having=[{"agg": agg, "op": "is_empty"}])) == ["never-ordered"]
    assert matches(one("order", having=[{"agg": agg, "op": "is_not_empty"}])) == ["a"]


def test_sum_and_quantity_of_no_records_are_zero(db):
    customer("never-ordered")
    a = customer("a")
    order(a, D(2025, 6, 1), "10", items=[(product("SKU-1"), 2)])
    assert matches(one("order", having=[{"agg": "sum", "op": "between", "to": 0}])) == ["never-ordered"]
    assert matches(one("order", having=[{"agg": "quantity", "op": "between", "to": 0}])) == ["never-ordered"]
    assert matches(one("order", having=[{"agg": "quantity", "op": "between", "from": 2, "to": 2}])) == ["a"]
    assert matches(one("order", having=[{"agg": "sum", "op": "is_empty"}])) == []


def test_aggregates_of_orders(db):
    a, b = customer("a"), customer("b")
    tea = product("TEA-1")
    order(a, D(2025, 1, 10), "100.00", items=[(tea, 2), (tea, 1)])
    order(a, D(2025, 6, 10), "50.50")
    order(b, D(2024, 12, 31, 23, 0), "100.01", items=[(tea, 5)])
    assert matches(one("order", having=[{"agg": "count", "op": "between", "from": 2, "to": 2}])) == ["a"]
    assert matches(one("order", having=[{"agg": "sum", "op": "between", "from": 150.5, "to": 150.5}])) == ["a"]
    assert matches(one("order", having=[{"agg": "avg", "op": "between", "from": 75.25, "to": 75.25}])) == ["a"]
    assert matches(one("order", having=[{"agg": "quantity", "op": "between", "from": 3, "to": 3}])) == ["a"]
    assert matches(one("order", having=[{"agg": "quantity", "op": "between", "from": 4}])) == ["b"]
    assert matches(one("order", having=[{"agg": "first_at", "op": "between", "to": "2024-12-31"}])) == ["b"]
    assert matches(one("order", having=[{"agg": "last_at", "op": "between", "from": "2025-06-10"}])) == ["a"]
    assert matches(
        one("order", having=[{"agg": "first_at", "op": "between", "from": "2025-01-10", "to": "2025-01-10"}])
    ) == ["a"]


def test_last_at_relative_is_the_spec_example(db):
    a, b = customer("lapsed"), customer("active")
    order(a, D(2025, 3, 1), "10")  # 106 days before today
    order(b, D(2025, 3, 1), "10")
    order(b, D(2025, 6, 1), "10")
    customer("never")
    assert matches(one("order", having=[{"agg": "last_at", "op": "relative", "to_days": -90}])) == ["lapsed"]


def test_money_is_exact_to_the_cent(db):
    a, b, c = customer("exactly-100"), customer("99.99"), customer("thirds")
    for total in ("33.33", "33.33", "33.34"):  # 100.00 exactly, in floating point 99.99999...
        order(a, D(2025, 6, 1), total)
    order(b, D(2025, 6, 1), "99.99")
    order(c, D(2025, 6, 1), "0.10")
    order(c, D(2025, 6, 1), "0.10")
    order(c, D(2025, 6, 1), "0.11")  # avg = 0.31 / 3 = 0.10333...
    assert matches(one("order", having=[{"agg": "sum", "op": "between", "from": 100}])) == ["exactly-100"]
    assert matches(one("order", having=[{"agg": "sum", "op": "between", "to": 99.99}])) == ["99.99", "thirds"]
    # avg compares as the exact quotient
    assert matches(one("order", having=[{"agg": "avg", "op": "between", "from": 0.1, "to": 0.1}])) == []
    assert matches(one("order", having=[{"agg": "avg", "op": "between", "from": 0.1, "to": 0.11}])) == ["thirds"]
    assert matches(one("order", having=[{"agg": "avg", "op": "between", "from": 33.33, "to": 33.34}])) == [
        "exactly-100"
    ]
    assert matches(one("order", {"field": "total", "op": "between", "from": 99.99, "to": 99.99})) == ["99.99"]


def test_order_block_without_filters_uses_the_rollup_and_agrees_with_the_orders(db):
    a, b = customer("a"), customer("b")
    customer("c")
    order(a, D(2025, 6, 1), "10", items=[(product("P"), 3)])
    order(b, D(2024, 6, 1), "90")
    for having in (
        [{"agg": "count", "op": "between", "from": 1}],
        [{"agg": "sum", "op": "between", "to": 50}],
        [{"agg": "avg", "op": "between", "from": 20}],
        [{"agg": "quantity", "op": "between", "from": 0, "to": 0}],
        [{"agg": "last_at", "op": "relative", "to_days": -180}],
        [{"agg": "first_at", "op": "is_empty"}],
    ):
        definition = engine.parse_definition(one("order", having=having))
        fast = engine.customer_query(definition, at=AT)
        assert "customer_order_stats" in fast.sql()[0]
        from webapp.engine.compiler import build_query

        slow = build_query(definition, at=AT, fast=False)
        assert "customer_order_stats" not in slow.sql()[0]
        assert sorted(r[0] for r in fast.tuples()) == sorted(r[0] for r in slow.tuples()), having


def test_deal_block_aggregates_use_amount_and_created_at(db):
    a, b = customer("a"), customer("b")
    memberships, stages = pipeline("Memberships")
    deal(a, memberships, stages["Won"], "1200", created_at=D(2025, 1, 1))
    deal(a, memberships, stages["Lost"], "300", created_at=D(2025, 5, 1))
    deal(b, memberships, stages["Won"], "100", created_at=D(2025, 6, 1))
    in_memberships = {"field": "pipeline", "op": "in", "values": values("memberships")}
    assert matches(one("deal", in_memberships, having=[{"agg": "sum", "op": "between", "from": 1500}])) == ["a"]
    assert matches(one("deal", in_memberships, having=[{"agg": "avg", "op": "between", "from": 750, "to": 750}])) == [
        "a"
    ]
    assert matches(
        one("deal", in_memberships, having=[{"agg": "first_at", "op": "between", "from": "2025-06-01"}])
    ) == ["b"]
    assert matches(one("deal", in_memberships, having=[{"agg": "count", "op": "between", "from": 2}])) == ["a"]


def test_message_and_event_blocks_count_and_dates(db):
    a, b = customer("a"), customer("b")
    message(a, "opened", D(2025, 5, 1), mailing="Black Friday")
    message(a, "opened", D(2025, 6, 14))
    message(b, "sent", D(2025, 6, 14), channel="sms")
    event(a, "login", D(2025, 6, 1))
    event(b, "login", D(2025, 1, 1))
    event(b, "cart_abandoned", D(2025, 6, 10))
    opened = {"field": "kind", "op": "in", "values": values("opened")}
    assert matches(one("message", opened, having=[{"agg": "count", "op": "between", "from": 2}])) == ["a"]
    # last email open over 30 days ago: a opened 1 day ago, so nobody
    assert matches(one("message", opened, having=[{"agg": "last_at", "op": "relative", "to_days": -30}])) == []
    assert matches(one("message", opened, having=[{"agg": "first_at", "op": "relative", "to_days": -30}])) == ["a"]
    assert matches(
        one(
            "event",
            {"field": "event", "op": "in", "values": values("LOGIN")},
            having=[{"agg": "last_at", "op": "relative", "from_days": -30}],
        )
    ) == ["a"]
    assert matches(one("event", having=[{"agg": "count", "op": "between", "from": 2}])) == ["b"]


# --- Deal rule ------------------------------------------------------------------


def test_pipeline_is_empty_means_customers_with_no_deals_at_all(db):
    a, b = customer("with-deal"), customer("no-deals")
    p, stages = pipeline("Wholesale")
    deal(a, p, stages["New"])
    assert matches(one("deal", {"field": "pipeline", "op": "is_empty"})) == ["no-deals"]
    assert matches(one("deal", {"field": "pipeline", "op": "is_not_empty"})) == ["with-deal"]


def test_deals_won_in_a_pipeline(db):
    a, b, c = customer("won-memberships"), customer("won-wholesale"), customer("open-memberships")
    memberships, ms = pipeline("Memberships")
    wholesale, ws = pipeline("Wholesale")
    deal(a, memberships, ms["Won"])
    deal(b, wholesale, ws["Won"])
    deal(c, memberships, ms["New"])
    definition = one(
        "deal",
        {"field": "pipeline", "op": "in", "values": values("Memberships")},
        {"field": "stage_kind", "op": "in", "values": values("won")},
    )
    assert matches(definition) == ["won-memberships"]
    # stage by name, case-insensitively; a stage named alike in another pipeline is another stage
    assert matches(
        one(
            "deal",
            {"field": "pipeline", "op": "in", "values": values("memberships")},
            {"field": "stage", "op": "in", "values": values("WON")},
        )
    ) == ["won-memberships"]
    assert matches(one("deal", {"field": "pipeline", "op": "in", "values": values("-Memberships")})) == [
        "won-wholesale"
    ]


# --- Filters: in ----------------------------------------------------------------


def test_in_includes_and_excludes_case_insensitively_in_every_alphabet(db):
    customer("upper", city="МОСКВА")
    customer("lower", city=" москва ")
    customer("london", city="London")
    customer("hanoi", city="Hà Nội")
    customer("none")
    customer("blank", city="   ")
    assert matches(one("customer", {"field": "city", "op": "in", "values": values("Москва")})) == ["lower", "upper"]
    assert matches(one("customer", {"field": "city", "op": "in", "values": values("HÀ NỘI", "london")})) == [
        "hanoi",
        "london",
    ]
    # everyone but Москва keeps customers with no city
    assert matches(one("customer", {"field": "city", "op": "in", "values": values("-москва")})) == [
        "blank",
        "hanoi",
        "london",
        "none",
    ]
    # include and exclude together: included (if any) and none of the excluded
    assert matches(one("customer", {"field": "city", "op": "in", "values": values("москва", "london", "-LONDON")})) == [
        "lower",
        "upper",
    ]


def test_in_on_enum_reference_and_custom_enum_fields(db):
    anna = User.create(email="Anna@Example.com", password_hash="x")
    customer("company", type="company", manager=anna)
    customer("contact", type="contact", gender="female")
    c = customer("traveller")
    field = cf.create_field("customer", "favourite_destination", "Favourite destination", "enum", ["Vietnam", "Italy"])
    cf.set_value(field, c.id, "Vietnam")
    assert matches(one("customer", {"field": "type", "op": "in", "values": values("COMPANY")})) == ["company"]
    assert matches(one("customer", {"field": "gender", "op": "in", "values": values("-female")})) == [
        "company",
        "traveller",
    ]
    assert matches(one("customer", {"field": "manager", "op": "in", "values": values("anna@example.COM")})) == [
        "company"
    ]
    assert matches(one("customer", {"field": "manager", "op": "in", "values": values("-anna@example.com")})) == [
        "contact",
        "traveller",
    ]
    assert matches(
        one("customer", {"field": "custom.favourite_destination", "op": "in", "values": values("vietnam")})
    ) == ["traveller"]
    assert matches(
        one("customer", {"field": "custom.favourite_destination", "op": "in", "values": values("-Vietnam")})
    ) == ["company", "contact"]


# --- Filters: contains ----------------------------------------------------------


def test_contains_is_a_case_insensitive_substring_with_wildcards_taken_literally(db):
    customer("irina", first_name="Ирина", email="IRINA@Mail.ru")
    customer("percent", first_name="100% natural")
    customer("underscore", first_name="a_b")
    customer("ab", first_name="axb")
    customer("none")
    assert matches(one("customer", {"field": "first_name", "op": "contains", "value": "РИН"})) == ["irina"]
    assert matches(one("customer", {"field": "email", "op": "contains", "value": "@mail."})) == ["irina"]
    assert matches(one("customer", {"field": "first_name", "op": "contains", "value": "%"})) == ["percent"]
    assert matches(one("customer", {"field": "first_name", "op": "contains", "value": "a_b"})) == ["underscore"]


# --- Filters: between ---------------------------------------------------------------


def test_between_numbers_dates_and_datetimes_is_inclusive_with_open_ends(db):
    customer("born-1990", birth_date=datetime.date(1990, 1, 1), created_at=D(2025, 6, 1, 23, 59))
    customer("born-2000", birth_date=datetime.date(2000, 12, 31), created_at=D(2025, 6, 2))
    customer("unknown", created_at=D(2020, 1, 1))
    assert matches(
        one("customer", {"field": "birth_date", "op": "between", "from": "1990-01-01", "to": "2000-12-31"})
    ) == ["born-1990", "born-2000"]
    assert matches(one("customer", {"field": "birth_date", "op": "between", "from": "1990-01-02"})) == ["born-2000"]
    assert matches(one("customer", {"field": "birth_date", "op": "between", "to": "1990-01-01"})) == ["born-1990"]
    assert matches(
        one("customer", {"field": "created_at", "op": "between", "from": "2025-06-01", "to": "2025-06-01"})
    ) == ["born-1990"]
    assert matches(one("customer", {"field": "created_at", "op": "between", "from": "2025-06-02"})) == ["born-2000"]


def test_between_ignore_year_and_wrapping_the_new_year(db):
    customer("dec-02", birth_date=datetime.date(1980, 12, 2))
    customer("dec-31", birth_date=datetime.date(1990, 12, 31))
    customer("jan-01", birth_date=datetime.date(2001, 1, 1))
    customer("jan-03", birth_date=datetime.date(1975, 1, 3))
    customer("jan-04", birth_date=datetime.date(1975, 1, 4))
    customer("dec-01", birth_date=datetime.date(1975, 12, 1))
    customer("feb-29", birth_date=datetime.date(2000, 2, 29))
    customer("none")
    wrap = {"field": "birth_date", "op": "between", "from": "12-02", "to": "01-03", "ignore_year": True}
    assert matches(one("customer", wrap)) == ["dec-02", "dec-31", "jan-01", "jan-03"]
    plain = {"field": "birth_date", "op": "between", "from": "02-28", "to": "03-01", "ignore_year": True}
    assert matches(one("customer", plain)) == ["feb-29"]
    assert matches(one("customer", {"field": "birth_date", "op": "between", "from": "12-01", "ignore_year": True})) == [
        "dec-01",
        "dec-02",
        "dec-31",
    ]


def test_relative_dates_from_today(db):
    customer("yesterday", created_at=D(2025, 6, 14, 10))
    customer("today", created_at=D(2025, 6, 15, 0, 0))
    customer("in-3-days", birth_date=datetime.date(2025, 6, 18), created_at=D(2025, 1, 1))
    assert matches(one("customer", {"field": "created_at", "op": "relative", "from_days": -1, "to_days": -1})) == [
        "yesterday"
    ]
    assert matches(one("customer", {"field": "created_at", "op": "relative", "from_days": 0})) == ["today"]
    assert matches(one("customer", {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 3})) == [
        "in-3-days"
    ]


def test_birthday_in_the_next_3_days_ignoring_year_wraps_the_new_year(db):
    customer("dec-31", birth_date=datetime.date(1990, 12, 31))
    customer("jan-02", birth_date=datetime.date(1985, 1, 2))
    customer("jan-03", birth_date=datetime.date(1985, 1, 3))
    customer("dec-29", birth_date=datetime.date(1985, 12, 29))
    definition = one(
        "customer", {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 2, "ignore_year": True}
    )
    assert matches(definition, at=D(2025, 12, 31, 12)) == ["dec-31", "jan-02"]
    # the spec example: next 3 days, in the account's zone (Moscow is already Jan 1st)
    assert matches(definition, at=D(2025, 12, 31, 22), tz="Europe/Moscow") == ["jan-02", "jan-03"]


def test_age_is_full_years_at_today(db):
    customer("18-today", birth_date=datetime.date(2007, 6, 15))
    customer("17-until-tomorrow", birth_date=datetime.date(2007, 6, 16))
    customer("35", birth_date=datetime.date(1989, 6, 16))
    customer("36-today", birth_date=datetime.date(1989, 6, 15))
    customer("unknown")
    assert matches(one("customer", {"field": "age", "op": "between", "from": 18, "to": 35})) == ["18-today", "35"]
    assert matches(one("customer", {"field": "age", "op": "between", "to": 17})) == ["17-until-tomorrow"]
    assert matches(one("customer", {"field": "age", "op": "is_empty"})) == ["unknown"]


def test_age_of_a_feb_29_birthday(db):
    customer("leap", birth_date=datetime.date(2000, 2, 29))
    adult = one("customer", {"field": "age", "op": "between", "from": 25})
    assert matches(adult, at=D(2025, 2, 28, 12)) == []
    assert matches(adult, at=D(2025, 3, 1, 12)) == ["leap"]


# --- Filters: is_empty / is_not_empty / is ----------------------------------------------


def test_is_empty_is_null_or_empty_string(db):
    customer("null")
    customer("empty", phone="")
    customer("blank", phone="  ")
    customer("set", phone="+7 900 000")
    assert matches(one("customer", {"field": "phone", "op": "is_empty"})) == ["blank", "empty", "null"]
    assert matches(one("customer", {"field": "phone", "op": "is_not_empty"})) == ["set"]


def test_is_on_booleans_and_null_is_neither(db):
    a = customer("consent", email_consent=True)
    customer("no-consent", email_consent=False)
    field = cf.create_field("customer", "vip", "VIP", "boolean")
    cf.set_value(field, a.id, True)
    b = Customer.get(Customer.external_id == "no-consent")
    cf.set_value(field, b.id, False)
    customer("unknown")
    assert matches(one("customer", {"field": "email_consent", "op": "is", "value": True})) == ["consent"]
    assert matches(one("customer", {"field": "email_consent", "op": "is", "value": False})) == ["no-consent", "unknown"]
    assert matches(one("customer", {"field": "custom.vip", "op": "is", "value": True})) == ["consent"]
    assert matches(one("customer", {"field": "custom.vip", "op": "is", "value": False})) == ["no-consent"]
    assert matches(one("customer", {"field": "custom.vip", "op": "is_empty"})) == ["unknown"]


def test_null_never_satisfies_between_relative_contains_or_is(db):
    customer("null")
    for flt in (
        {"field": "birth_date", "op": "between", "from": "1900-01-01"},
        {"field": "birth_date", "op": "between", "from": "01-01", "to": "12-31", "ignore_year": True},
        {"field": "birth_date", "op": "relative", "from_days": -73000, "to_days": 73000},
        {"field": "city", "op": "contains", "value": "a"},
        {"field": "age", "op": "between", "from": -1000},
        {"field": "custom.flag", "op": "is", "value": False},
    ):
        if flt["field"] == "custom.flag" and not cf.get_field("customer", "flag"):
            cf.create_field("customer", "flag", "Flag", "boolean")
        assert matches(one("customer", flt)) == [], flt


# --- multi-valued fields -----------------------------------------------------------------


def test_tags_in_and_is_empty(db):
    a, b, c = customer("vip"), customer("vip-opt"), customer("untagged")
    tag(a, "VIP")
    tag(b, "VIP", "Опт")
    assert matches(one("customer", {"field": "tags", "op": "in", "values": values("vip")})) == ["vip", "vip-opt"]
    assert matches(one("customer", {"field": "tags", "op": "in", "values": values("vip", "-ОПТ")})) == ["vip"]
    assert matches(one("customer", {"field": "tags", "op": "in", "values": values("-опт")})) == ["untagged", "vip"]
    assert matches(one("customer", {"field": "tags", "op": "is_empty"})) == ["untagged"]
    assert matches(one("customer", {"field": "tags", "op": "is_not_empty"})) == ["vip", "vip-opt"]


def test_product_and_product_group_with_subgroups(db):
    urinary = product("CU-1", "Pet food/Cat food/Urinary care")
    puer = product("TEA-1", "Tea/Chinese tea")
    teapot = product("POT-1", "Teapots")
    loose = product("LOOSE")
    cat, tea, pot, mixed, bare, empty = (customer(x) for x in ("cat", "tea", "pot", "mixed", "bare", "empty"))
    order(cat, D(2025, 6, 1), "10", items=[(urinary, 1)])
    order(tea, D(2025, 6, 1), "10", items=[(puer, 1)])
    order(pot, D(2025, 6, 1), "10", items=[(teapot, 1)])
    order(mixed, D(2025, 6, 1), "10", items=[(puer, 1), (urinary, 1)])
    order(bare, D(2025, 6, 1), "10", items=[(loose, 1)])
    order(empty, D(2025, 6, 1), "10")

    def group_in(*v):
        return matches(one("order", {"field": "product_group", "op": "in", "values": values(*v)}))

    assert group_in("pet food") == ["cat", "mixed"]  # includes subgroups
    assert group_in("Pet food/Cat food/Urinary care") == ["cat", "mixed"]
    assert group_in("Tea") == ["mixed", "tea"]  # not "Teapots"
    assert group_in("Pet food/Cat") == []  # a path prefix is not a group
    assert group_in("tea", "-pet food") == ["tea"]  # an order with both is excluded
    assert group_in("-tea") == ["bare", "cat", "empty", "pot"]
    assert matches(one("order", {"field": "product", "op": "in", "values": values("cu-1")})) == ["cat", "mixed"]
    assert matches(one("order", {"field": "product", "op": "is_empty"})) == ["empty"]
    assert matches(one("order", {"field": "product_group", "op": "is_empty"})) == ["bare", "empty"]


def test_orders_with_a_product_group_in_the_last_90_days(db):
    urinary = product("CU-1", "Pet food/Cat food/Urinary care")
    recent, old = customer("recent"), customer("old")
    order(recent, D(2025, 5, 1), "10", items=[(urinary, 1)])
    order(old, D(2025, 1, 1), "10", items=[(urinary, 1)])
    order(old, D(2025, 6, 1), "10")
    definition = one(
        "order",
        {"field": "product_group", "op": "in", "values": values("Pet food/Cat food")},
        {"field": "ordered_at", "op": "relative", "from_days": -90},
    )
    assert matches(definition) == ["recent"]


# --- fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["first_name", "last_name", "company_name", "email", "phone", "city", "country", "source"]
)
def test_every_customer_string_field(db, name):
    customer("set", **{name: "Ёлка"})
    customer("other", **{name: "x"})
    customer("unset")
    assert matches(one("customer", {"field": name, "op": "in", "values": values("ёЛКА")})) == ["set"]
    assert matches(one("customer", {"field": name, "op": "contains", "value": "ЁЛ"})) == ["set"]
    assert matches(one("customer", {"field": name, "op": "is_empty"})) == ["unset"]


def test_customer_sms_consent_and_created_at(db):
    customer("sms", sms_consent=True, created_at=D(2024, 1, 1))
    customer("no", created_at=D(2025, 6, 15))
    assert matches(one("customer", {"field": "sms_consent", "op": "is", "value": True})) == ["sms"]
    assert matches(one("customer", {"field": "created_at", "op": "between", "to": "2024-12-31"})) == ["sms"]


def test_order_fields_status_shop_total_and_custom(db):
    a, b, c = customer("a"), customer("b"), customer("c")
    oa = order(a, D(2025, 6, 1), "10", status="Отменён", shop="Nevsky store")
    order(b, D(2025, 6, 1), "250", shop="Online store")
    order(c, D(2025, 6, 1), "5")
    delivery = cf.create_field("order", "delivery", "Delivery", "enum", ["courier", "pickup"])
    cf.set_value(delivery, oa.id, "courier")
    assert matches(one("order", {"field": "status", "op": "in", "values": values("ОТМЕНЁН")})) == ["a"]
    assert matches(one("order", {"field": "status", "op": "is_empty"})) == ["b", "c"]
    assert matches(one("order", {"field": "shop", "op": "in", "values": values("nevsky STORE")})) == ["a"]
    assert matches(one("order", {"field": "shop", "op": "in", "values": values("-nevsky store")})) == ["b", "c"]
    assert matches(one("order", {"field": "shop", "op": "is_empty"})) == ["c"]
    assert matches(one("order", {"field": "total", "op": "between", "from": 10, "to": 250})) == ["a", "b"]
    assert matches(one("order", {"field": "custom.delivery", "op": "in", "values": values("Courier")})) == ["a"]
    assert matches(one("order", {"field": "custom.delivery", "op": "is_empty"})) == ["b", "c"]


def test_deal_fields(db):
    anna = User.create(email="anna@example.com", password_hash="x")
    a, b = customer("a"), customer("b")
    p, stages = pipeline("Memberships")
    da = deal(a, p, stages["Won"], "99.99", created_at=D(2025, 6, 1), closed_at=D(2025, 6, 10), manager=anna)
    deal(b, p, stages["New"], "1000", created_at=D(2025, 1, 1))
    kind = cf.create_field("deal", "membership_type", "Membership type", "enum", ["monthly", "annual"])
    cf.set_value(kind, da.id, "annual")
    seats = cf.create_field("deal", "seats", "Seats", "integer")
    cf.set_value(seats, da.id, 3)
    base = {"field": "pipeline", "op": "in", "values": values("Memberships")}

    def deal_match(flt):
        return matches(one("deal", base, flt))

    assert deal_match({"field": "amount", "op": "between", "to": 99.99}) == ["a"]
    assert deal_match({"field": "manager", "op": "in", "values": values("ANNA@example.com")}) == ["a"]
    assert deal_match({"field": "manager", "op": "is_empty"}) == ["b"]
    assert deal_match({"field": "created_at", "op": "relative", "from_days": -30}) == ["a"]
    assert deal_match({"field": "closed_at", "op": "is_empty"}) == ["b"]
    assert deal_match({"field": "closed_at", "op": "between", "from": "2025-06-10", "to": "2025-06-10"}) == ["a"]
    assert deal_match({"field": "stage_kind", "op": "in", "values": values("open")}) == ["b"]
    assert deal_match({"field": "custom.membership_type", "op": "in", "values": values("ANNUAL")}) == ["a"]
    assert deal_match({"field": "custom.seats", "op": "between", "from": 3, "to": 3}) == ["a"]


def test_message_fields(db):
    a, b = customer("a"), customer("b")
    message(a, "clicked", D(2025, 6, 1), channel="email", mailing="Новый год")
    message(b, "delivered", D(2025, 6, 1), channel="sms")
    assert matches(one("message", {"field": "channel", "op": "in", "values": values("SMS")})) == ["b"]
    assert matches(one("message", {"field": "kind", "op": "in", "values": values("clicked")})) == ["a"]
    assert matches(one("message", {"field": "mailing", "op": "in", "values": values("НОВЫЙ ГОД")})) == ["a"]
    assert matches(one("message", {"field": "mailing", "op": "is_empty"})) == ["b"]
    assert matches(one("message", {"field": "occurred_at", "op": "between", "from": "2025-06-01"})) == ["a", "b"]


def test_event_fields(db):
    a, b = customer("a"), customer("b")
    event(a, "login", D(2025, 6, 1))
    event(b, "cart_abandoned", D(2025, 6, 2))
    assert matches(one("event", {"field": "event", "op": "in", "values": values("cart_ABANDONED")})) == ["b"]
    assert matches(one("event", {"field": "event", "op": "in", "values": values("cart%abandoned")})) == []
    assert matches(one("event", {"field": "occurred_at", "op": "between", "to": "2025-06-01"})) == ["a"]


def test_custom_field_types_and_new_fields_are_filterable_at_once(db):
    a, b, c = customer("a"), customer("b"), customer("c")
    pets = cf.create_field("customer", "pets", "Pets", "integer")
    discount = cf.create_field("customer", "discount", "Discount", "decimal")
    card = cf.create_field("customer", "loyalty_card", "Loyalty card", "string")
    since = cf.create_field("customer", "member_since", "Member since", "date")
    cf.set_value(pets, a.id, 2)
    cf.set_value(pets, b.id, 0)
    cf.set_value(discount, a.id, cf.parse_value(discount, "12,5"))
    cf.set_value(discount, b.id, cf.parse_value(discount, "0.1"))
    cf.set_value(card, a.id, "GOLD-Ёж")
    cf.set_value(since, b.id, datetime.date(2020, 6, 16))
    assert matches(one("customer", {"field": "custom.pets", "op": "between", "from": 1})) == ["a"]
    assert matches(one("customer", {"field": "custom.pets", "op": "between", "to": 0})) == ["b"]
    assert matches(one("customer", {"field": "custom.pets", "op": "is_empty"})) == ["c"]
    assert matches(one("customer", {"field": "custom.discount", "op": "between", "from": 0.1, "to": 0.1})) == ["b"]
    assert matches(one("customer", {"field": "custom.discount", "op": "between", "from": 12.5})) == ["a"]
    assert matches(one("customer", {"field": "custom.loyalty_card", "op": "contains", "value": "ЁЖ"})) == ["a"]
    assert matches(one("customer", {"field": "custom.loyalty_card", "op": "in", "values": values("-gold-ёж")})) == [
        "b",
        "c",
    ]
    assert matches(
        one(
            "customer",
            {"field": "custom.member_since", "op": "relative", "from_days": 0, "to_days": 1, "ignore_year": True},
        )
    ) == ["b"]
    assert matches(one("customer", {"field": "custom.member_since", "op": "between", "from": "2020-01-01"})) == ["b"]


# --- segment blocks ----------------------------------------------------------------------


def test_segment_block_reads_stored_memberships(db):
    a, b, c = customer("a"), customer("b"), customer("c")
    segment("vip", [a, b])
    segment("churn", [b])
    segment("empty")

    def seg(*v):
        return matches(one("segment", {"field": "segment", "op": "in", "values": values(*v)}))

    assert seg("vip") == ["a", "b"]
    assert seg("vip", "-churn") == ["a"]
    assert seg("-vip") == ["c"]
    assert seg("empty") == []
    assert seg("vip", "churn") == ["a", "b"]


# --- three blocks combined with any -------------------------------------------------------


def test_three_kinds_of_blocks_combined_with_any(db):
    p, stages = pipeline("Memberships")
    a, b, c = customer("birthday", birth_date=datetime.date(1990, 6, 16)), customer("big"), customer("won")
    customer("none")
    order(b, D(2025, 6, 1), "5000")
    deal(c, p, stages["Won"])
    definition = {
        "version": 1,
        "match": "any",
        "blocks": [
            {
                "entity": "customer",
                "filters": [
                    {"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 3, "ignore_year": True}
                ],
            },
            {"entity": "order", "having": [{"agg": "sum", "op": "between", "from": 1000}]},
            {
                "entity": "deal",
                "filters": [
                    {"field": "pipeline", "op": "in", "values": values("Memberships")},
                    {"field": "stage_kind", "op": "in", "values": values("won")},
                ],
            },
        ],
    }
    assert matches(definition) == ["big", "birthday", "won"]
    definition["match"] = "all"
    assert matches(definition) == []


# --- queries as the rest of the app uses them ------------------------------------------------


def test_customer_query_works_as_a_subquery_and_for_insert_select(db):
    import peewee as pw

    from webapp.models import SegmentMember

    a, b = customer("a", city="Москва"), customer("b")
    s = segment("moscow")
    query = engine.customer_query(one("customer", {"field": "city", "op": "in", "values": values("москва")}), at=AT)
    assert [c.external_id for c in Customer.select().where(Customer.id.in_(query))] == ["a"]
    SegmentMember.insert_from(
        query.select(pw.Value(s.id), Customer.id, pw.Value(AT)),
        [SegmentMember.segment, SegmentMember.customer, SegmentMember.since],
    ).execute()
    assert [m.customer_id for m in SegmentMember.select()] == [a.id]


def test_member_ids_streams_in_batches_in_id_order(db):
    for n in range(25):
        customer(f"c{n:02d}", city="Москва" if n % 2 else None)
    definition = one("customer", {"field": "city", "op": "in", "values": values("-москва")})
    ids = list(engine.member_ids(definition, at=AT, batch=4))
    assert ids == sorted(ids) and len(ids) == 13
    assert ids == [c.id for c in Customer.select().where(Customer.city.is_null()).order_by(Customer.id)]


def test_a_dict_or_json_text_is_parsed_on_the_way(db):
    customer("a", city="Москва")
    text = '{"blocks": [{"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": "москва"}]}]}]}'
    assert engine.count(text, at=AT) == 1
    with pytest.raises(engine.DefinitionError):
        engine.count('{"blocks": [{"entity": "nope"}]}', at=AT)


def test_customer_language(db):
    customer("ru", language="ru")
    customer("vi", language="vi")
    customer("unknown")
    assert matches(one("customer", {"field": "language", "op": "in", "values": values("ru")})) == ["ru"]
    assert matches(one("customer", {"field": "language", "op": "is_empty"})) == ["unknown"]
