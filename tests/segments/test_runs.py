"""Segment runs in-process: membership, the entry/exit log, static vs dynamic,
real-time re-checks, dependants, failures. On SQLite and PostgreSQL."""

import datetime

import pytest

from webapp import cron
from webapp.models import (
    Customer,
    Notification,
    OutboxEmail,
    Segment,
    SegmentChange,
    SegmentMember,
    SegmentRun,
    SegmentSize,
)
from webapp.segments import changes, realtime, runs, schedule, system

MOSCOW = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [{"field": "city", "op": "in", "values": [{"value": "москва"}]}],
        }
    ],
}


def members(segment):
    return {c.external_id for c in Customer.select().join(SegmentMember).where(SegmentMember.segment == segment)}


def replayed(segment):
    """Membership rebuilt from the log alone: must always equal `members`."""
    state = set()
    for change in (
        SegmentChange.select(SegmentChange, Customer)
        .join(Customer)
        .where(SegmentChange.segment == segment)
        .order_by(SegmentChange.id)
    ):
        if change.change == "entered":
            assert change.customer.external_id not in state
            state.add(change.customer.external_id)
        else:
            assert change.customer.external_id in state
            state.remove(change.customer.external_id)
    return state


def make_segment(code="moscow", type="dynamic", definition=MOSCOW, **kw):
    return Segment.create(code=code, name=code.title(), type=type, definition=definition, **kw)


def run_now(segment, trigger="user", user=None):
    run = runs.request_run(segment, trigger=trigger, user=user)
    assert runs.execute_run(run.id)
    return SegmentRun.get_by_id(run.id)


@pytest.fixture
def people(db, queue_server):
    return {
        ext: Customer.create(external_id=ext, city=city)
        for ext, city in [("a", "Москва"), ("b", "МОСКВА "), ("c", "Hà Nội"), ("d", None)]
    }


def test_dynamic_run_follows_data_and_logs_history(people):
    segment = make_segment()
    run = run_now(segment)
    assert run.status == "done" and (run.size, run.entered, run.exited) == (2, 2, 0)
    assert members(segment) == {"a", "b"} == replayed(segment)
    people["c"].city = "москва"
    people["c"].save()
    people["a"].city = "Tver"
    people["a"].save()
    run = run_now(segment, trigger="schedule")
    assert (run.size, run.entered, run.exited) == (2, 1, 1)
    assert members(segment) == {"b", "c"} == replayed(segment)
    segment = Segment.get_by_id(segment.id)
    assert segment.size == 2 and segment.computed_at is not None and segment.lock_run_id is None
    assert [p.size for p in SegmentSize.select().order_by(SegmentSize.id)] == [2, 2]
    assert {(c.change, c.run_id) for c in SegmentChange.select()} >= {("exited", run.id), ("entered", run.id)}


def test_rerun_without_changes_logs_nothing(people):
    segment = make_segment()
    run_now(segment)
    run = run_now(segment, trigger="schedule")
    assert (run.entered, run.exited) == (0, 0)
    assert SegmentChange.select().count() == 2


def test_static_segment_is_frozen(people):
    segment = make_segment(type="static")
    run = run_now(segment, trigger="created")
    assert members(segment) == {"a", "b"}
    people["c"].city = "Москва"
    people["c"].save()
    changes.mark_changed([people["c"].id])
    realtime.recheck_customers([people["c"].id])
    assert members(segment) == {"a", "b"}
    with pytest.raises(runs.RunSkipped, match="frozen"):
        runs.request_run(segment, trigger="user")
    assert schedule.schedule_due(now=run.finished_at + datetime.timedelta(days=1)) == []


def test_inactive_segment_is_never_recomputed(people):
    segment = make_segment(active=False)
    with pytest.raises(runs.RunSkipped, match="inactive"):
        runs.request_run(segment)
    assert schedule.schedule_due() == []


def test_realtime_recheck_logs_like_a_full_run(people):
    segment = make_segment()
    run_now(segment)
    people["d"].city = "Москва"
    people["d"].save()
    people["b"].city = ""
    people["b"].save()
    changes.mark_changed([people["d"].id, people["b"].id])
    entered, exited, complete = realtime.recheck_customers([people["d"].id, people["b"].id])
    assert (entered, exited, complete) == (1, 1, True)
    assert members(segment) == {"a", "d"} == replayed(segment)
    logged = SegmentChange.select().where(SegmentChange.run.is_null())
    assert {(c.customer.external_id, c.change) for c in logged} == {("d", "entered"), ("b", "exited")}
    assert Segment.get_by_id(segment.id).size == 2
    # the re-check leaves customers outside the batch alone, even if stale
    people["a"].city = "Tver"
    people["a"].save()
    realtime.recheck_customers([people["d"].id])
    assert members(segment) == {"a", "d"}


def test_realtime_recheck_follows_edits_of_the_definition_and_of_custom_fields(people):
    """The re-check keeps each segment's compiled query between batches: an
    edited definition, or a custom field deleted and made again under the
    same code, must not be answered by the old query."""
    from webapp.fields import service as cf

    segment = make_segment()
    run_now(segment)
    realtime.recheck_customers([people["a"].id, people["c"].id])
    assert members(segment) == {"a", "b"}
    segment.definition = {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "customer",
                "match": "all",
                "filters": [{"field": "custom.tier", "op": "in", "values": [{"value": "gold"}]}],
            }
        ],
    }
    field = cf.create_field("customer", "tier", "Tier", "string")
    segment.save()
    cf.set_value(field, people["c"].id, "gold")
    realtime.recheck_customers([people["a"].id, people["c"].id])
    assert members(segment) == {"b", "c"}  # b was not in the batch: left alone
    cf.create_field("customer", "other", "Other", "string")  # SQLite would reuse the highest id
    cf.delete_field(field)
    again = cf.create_field("customer", "tier", "Tier", "string")
    assert again.id != field.id
    cf.set_value(again, people["a"].id, "gold")
    realtime.recheck_customers([people["a"].id, people["c"].id])
    assert members(segment) == {"a", "b"} == replayed(segment)


def test_recheck_changed_job_consumes_marks(people):
    from webapp.queue import connection

    # a worker an earlier test killed may still hold the job's lease (30 s): not this test's subject
    connection().delete("segmento:lock:realtime-recheck")
    segment = make_segment()
    run_now(segment)
    people["c"].city = "Москва"
    people["c"].save()
    changes.mark_changed([people["c"].id])
    assert cron.recheck_changed_job() == 1
    assert members(segment) == {"a", "b", "c"}
    assert changes.pending() == []


def test_recheck_changed_job_runs_one_at_a_time(people, queue_server):
    """Every worker's cron queues the job: one that finds another running returns."""
    from webapp.queue import connection

    segment = make_segment()
    run_now(segment)
    people["c"].city = "Москва"
    people["c"].save()
    changes.mark_changed([people["c"].id])
    connection().set("segmento:lock:realtime-recheck", "running", px=10000)
    assert cron.recheck_changed_job() == 0
    assert len(changes.pending()) == 1 and members(segment) == {"a", "b"}
    connection().delete("segmento:lock:realtime-recheck")
    assert cron.recheck_changed_job() == 1
    assert members(segment) == {"a", "b", "c"} and not connection().exists("segmento:lock:realtime-recheck")


def test_dependants_follow_their_dependency(people):
    base = make_segment()
    in_base = {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "segment",
                "match": "all",
                "filters": [{"field": "segment", "op": "in", "values": [{"value": "moscow"}]}],
            }
        ],
    }
    dependant = make_segment(code="follows", definition=in_base)
    run_now(base)
    assert runs.execute_run(SegmentRun.get(SegmentRun.segment == dependant).id)
    assert members(dependant) == {"a", "b"}
    # real time: the dependency is re-checked first, then the dependant
    people["c"].city = "Москва"
    people["c"].save()
    realtime.recheck_customers([people["c"].id])
    assert members(base) == members(dependant) == {"a", "b", "c"}
    assert [s.code for s in realtime.dynamic_segments_in_order()] == ["moscow", "follows"]


def test_one_queued_run_per_segment(people):
    segment = make_segment()
    first = runs.request_run(segment)
    second = runs.request_run(segment, trigger="schedule")
    assert first.id == second.id
    from webapp.queue import get_queue

    assert get_queue().job_ids.count(runs.job_id(segment.id)) == 1


def test_guard_blocks_a_second_run(people):
    segment = make_segment()
    run = runs.request_run(segment)
    other = SegmentRun.create(segment=segment, status="running")
    Segment.update(lock_run_id=other.id).where(Segment.id == segment.id).execute()
    assert runs.execute_run(run.id) is False
    assert SegmentRun.get_by_id(run.id).status == "queued" and members(segment) == set()


def test_failed_run_keeps_members_and_reports(people, make_user):
    user = make_user(email="olga@example.com", role="marketer")
    segment = make_segment()
    run_now(segment, user=user)
    assert Notification.select().where(Notification.user == user).count() == 1
    assert OutboxEmail.select().where(OutboxEmail.to == "olga@example.com").count() == 1
    # the definition becomes invalid: the run fails, membership stays
    segment.definition = {
        "version": 1,
        "blocks": [{"entity": "customer", "filters": [{"field": "custom.gone", "op": "is_empty"}]}],
    }
    segment.save()
    run = run_now(segment, user=user)
    assert run.status == "failed" and "custom.gone" in run.error
    assert members(segment) == {"a", "b"}
    assert Segment.get_by_id(segment.id).lock_run_id is None
    note = Notification.select().order_by(Notification.id.desc()).first()
    assert note.level == "error" and "failed" in note.message


def test_a_run_failing_in_the_database_reports_its_own_error(people, monkeypatch):
    """A statement of the run fails (here: the members query reads a table that is not there).
    The run records that error: on PostgreSQL the failed transaction refuses every later
    statement, and the temporary table's clean-up must not replace the error with "current
    transaction is aborted"."""

    class Broken:
        def sql(self):
            return "SELECT id FROM no_such_table", []

    segment = make_segment()
    run_now(segment)
    monkeypatch.setattr(runs, "customer_query", lambda *args, **kwargs: Broken())
    run = run_now(segment)
    assert run.status == "failed" and "no_such_table" in run.error, run.error
    assert "aborted" not in run.error
    assert members(segment) == {"a", "b"}
    monkeypatch.undo()
    assert run_now(segment).status == "done"  # the connection is usable: no table left behind


def test_a_run_puts_foreign_key_checks_back_after_it_succeeds_or_fails(people, monkeypatch):
    """SQLite runs skip the foreign-key checks of their own inserts (issue 19); the
    connection's other work keeps them, whatever the run's outcome."""
    from webapp.db import database, is_postgres
    from webapp.models import Customer

    def checks_on():
        return is_postgres() or database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1

    segment = make_segment()
    assert checks_on()
    assert run_now(segment).status == "done" and checks_on()
    monkeypatch.setattr(runs, "customer_query", lambda *args, **kwargs: 1 / 0)
    assert run_now(segment).status == "failed" and checks_on()
    # the cascade from customer to membership still works on this connection
    Customer.delete().where(Customer.external_id == "a").execute()
    assert members(segment) == {"b"}


def test_schedule_due_respects_interval(people):
    segment = make_segment(interval_minutes=60)
    run = run_now(segment)
    assert schedule.schedule_due(now=run.finished_at + datetime.timedelta(minutes=30)) == []
    due = schedule.schedule_due(now=run.finished_at + datetime.timedelta(minutes=61))
    assert [r.segment_id for r in due] == [segment.id]


def test_system_segments_split_customers_by_order_recency(people):
    from webapp.models import Order
    from webapp.rollups import refresh_order_stats

    now = datetime.datetime.now()
    days = {"a": [5], "b": [200, 700], "c": [500]}
    for ext, ages in days.items():
        for n, age in enumerate(ages):
            Order.create(
                external_id=f"{ext}{n}",
                customer=people[ext],
                total_cents=1000,
                ordered_at=now - datetime.timedelta(days=age),
            )
    refresh_order_stats([c.id for c in people.values()])
    assert system.ensure_system_segments() == [code for code, _, _ in system.SYSTEM_SEGMENTS]
    assert system.ensure_system_segments() == []
    result = {}
    for segment in list(Segment.select().where(Segment.system == True)):  # noqa: E712
        run = run_now(segment, trigger="schedule")
        assert run.status == "done", run.error
        result[segment.code] = members(segment)
    assert result == {
        "system_new": {"a"},
        "system_active": {"a"},
        "system_sleeping": {"b"},
        "system_lost": {"c"},
        "system_never_ordered": {"d"},
        # no predictions fitted yet: every predicted filter is null
        "system_likely_to_buy_soon": set(),
        "system_valuable_probably_lost": set(),
    }


def test_deletes_clean_membership_and_log_whatever_deletes(people, make_user):
    """Deleting customers, segments, runs and users by plain SQL leaves no membership
    or log row pointing at them: SQLite's foreign keys cascade, PostgreSQL's delete
    triggers do it (its membership tables have no foreign keys since 0022)."""
    from webapp.db import database
    from webapp.segments import manual
    from webapp.sql import param

    dynamic = make_segment()
    run = run_now(dynamic)
    frozen = make_segment("picked", type="static", definition={"version": 1, "match": "all", "blocks": []})
    user = make_user(email="picker@example.com", role="marketer")
    assert manual.add_customer(frozen, people["c"].id, user=user)
    assert members(dynamic) == {"a", "b"} and members(frozen) == {"c"}

    # two customers at once: the delete is one statement, its trigger one pass
    database.execute_sql("DELETE FROM customer WHERE external_id IN ('a', 'c')")
    assert members(dynamic) == {"b"} == replayed(dynamic) and members(frozen) == set()
    assert {c.customer_id for c in SegmentChange.select()} == {people["b"].id}
    assert SegmentMember.select().count() == 1

    people_e = Customer.create(external_id="e", city="Москва")
    assert manual.add_customer(frozen, people_e.id, user=user)
    database.execute_sql(f"DELETE FROM app_user WHERE id = {param()}", (user.id,))
    change = SegmentChange.get(SegmentChange.segment == frozen)
    assert change.user_id is None and change.manual

    database.execute_sql(f"DELETE FROM segment_run WHERE id = {param()}", (run.id,))
    assert [c.run_id for c in SegmentChange.select().where(SegmentChange.segment == dynamic)] == [None]

    database.execute_sql(f"DELETE FROM segment WHERE id = {param()}", (dynamic.id,))
    assert not SegmentMember.select().where(SegmentMember.segment == dynamic.id).exists()
    assert not SegmentChange.select().where(SegmentChange.segment == dynamic.id).exists()
    assert members(frozen) == {"e"}  # another segment's rows stay


def test_a_customers_history_reads_the_log_of_every_segment(people):
    """The card's history, newest first, across segments: on PostgreSQL no index of the log
    starts with the customer (0025), and the rows are found by (segment, customer, at)."""
    from webapp.segments import listing

    moscow, everyone = make_segment(), make_segment("everyone", definition={"version": 1, "match": "all", "blocks": []})
    run_now(moscow)
    run_now(everyone)
    a = people["a"]
    a.city = "Казань"
    a.save()
    run_now(moscow)
    history = listing.customer_history(a.id)
    assert history["total"] == 3
    assert [(c.segment.code, c.change) for c in history["changes"]][0] == ("moscow", "exited")
    assert sorted((c.segment.code, c.change) for c in history["changes"]) == [
        ("everyone", "entered"),
        ("moscow", "entered"),
        ("moscow", "exited"),
    ]
    assert [s.code for s in history["member_of"]] == ["everyone"]


@pytest.mark.postgresql_only
def test_postgres_a_runs_log_row_goes_into_three_indexes(db):
    """Migration 0025: a full run's log rows enter the key, (segment, at) and (segment,
    customer, at); the partial indexes hold only rows without a run or with a user."""
    from webapp.db import database

    rows = database.execute_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'segment_change'")
    assert sorted(name for name, definition in rows if " WHERE " not in definition) == [
        "segment_change_pkey",
        "segment_change_segment_id_customer_id_at",
        "segmentchange_segment_id_at",
    ]


@pytest.mark.postgresql_only
def test_postgres_deletes_wait_for_a_run_under_way(people, db_url):
    """No foreign keys on PostgreSQL's membership tables (a run's 600,000 inserts are not
    checked one by one); a customer or segment deleted while a run writes waits for it,
    and its rows are then gone (the run's locks and the delete triggers'); a run of a
    segment deleted before it writes nothing."""
    import psycopg

    from webapp.db import database
    from webapp.models import utcnow

    foreign_keys = database.execute_sql(
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid IN ('segment_member'::regclass, 'segment_change'::regclass)"
    ).fetchall()
    assert foreign_keys == []
    segment = make_segment()
    run = runs.request_run(segment)
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("SET lock_timeout = '300ms'")
        with database.atomic():
            runs.apply_members(segment.id, runs.customer_query(runs.parse_definition(MOSCOW)), at=utcnow())
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM customer WHERE external_id = 'a'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM segment WHERE code = 'moscow'")
        assert members(segment) == {"a", "b"}
        other.execute("DELETE FROM customer WHERE external_id = 'a'")
        assert members(segment) == {"b"} == replayed(segment)
        # a segment deleted first: the run finds it gone and writes nothing
        with database.atomic():
            other.execute("BEGIN")
            other.execute("DELETE FROM segment WHERE code = 'moscow'")
            other.execute("COMMIT")
            with pytest.raises(LookupError):
                runs.apply_members(segment.id, runs.customer_query(runs.parse_definition(MOSCOW)), at=utcnow())
    assert not SegmentMember.select().exists() and not SegmentChange.select().exists()


def test_built_in_segments_are_named_in_the_accounts_language(db):
    # Created by `make run`, `flask db upgrade` or a job: in the account's language (DEFAULT_LANGUAGE).
    from webapp.i18n import language
    from webapp.rfm import service as rfm

    with language("ru"):
        system.ensure_system_segments()
        rfm.ensure_class_segments()
    names = {s.code: s.name for s in Segment.select()}
    assert names["system_active"] == "Активные клиенты (заказывали за последние 90 дней)"
    assert names["system_never_ordered"] == "Ни разу не заказывал"
    assert names["rfm_champions"] == "RFM: чемпионы" and names["rfm_cant_lose"] == "RFM: нельзя потерять"
    Segment.delete().execute()
    with language("vi"):
        system.ensure_system_segments()
    assert Segment.get(Segment.code == "system_lost").name == "Khách hàng đã mất (đơn cuối cách đây hơn 365 ngày)"
