"""RFM class segments: membership from the scores (checked against the class
table applied to pandas scores), entries and exits logged when a recompute
moves customers, triggers firing, the builder's segment block, the API, and
the run through the real queue."""

import datetime

from conftest import work_off
from redis import Redis
from rq.job import Job

from webapp import engine
from webapp.activation import triggers
from webapp.models import (
    Customer,
    RfmRun,
    RfmSettings,
    Segment,
    SegmentChange,
    SegmentMember,
    SegmentRun,
    Task,
    TriggerExecution,
)
from webapp.rfm import jobs
from webapp.rfm import service as rfm
from webapp.segments import realtime, runs, schedule
from webapp.segments import service as segments

from .conftest import AS_OF, expected_classes, expected_quintiles, expected_values

CODES = {"champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost"}


def members(code):
    segment = Segment.get(Segment.code == code)
    return {c for (c,) in SegmentMember.select(SegmentMember.customer).where(SegmentMember.segment == segment).tuples()}


def compute_as_of(as_of):
    RfmSettings.update(as_of=as_of).where(RfmSettings.id == rfm.get_settings().id).execute()
    return rfm.compute_now(trigger="user", tz="UTC")


def test_class_segments_hold_the_cells_of_the_table(orders):
    run = compute_as_of(AS_OF)
    assert run.status == "done"
    want = expected_classes(expected_quintiles(expected_values(orders)))
    assert set(want) == CODES
    for key, ids in want.items():
        segment = Segment.get(Segment.code == f"rfm_{key}")
        assert (segment.system, segment.source, segment.type, segment.size) == (True, "rfm", "dynamic", len(ids))
        assert members(f"rfm_{key}") == ids, key
    assert sum(len(ids) for ids in want.values()) == run.scored
    # the engine's segment block reads them like any stored membership
    definition = engine.parse_definition(
        {
            "version": 1,
            "blocks": [
                {
                    "entity": "segment",
                    "filters": [
                        {"field": "segment", "op": "in", "values": [{"value": "rfm_champions"}, {"value": "rfm_loyal"}]}
                    ],
                }
            ],
        }
    )
    assert {c for (c,) in engine.customer_query(definition).tuples()} == want["champions"] | want["loyal"]


def test_recompute_logs_entries_and_exits(orders):
    early = AS_OF - datetime.timedelta(days=60)
    compute_as_of(early)
    before = expected_classes(expected_quintiles(expected_values(orders, as_of=early)))
    # the classes' log only (the score segments log theirs too: tests/rfm/test_score_segments.py)
    class_log = SegmentChange.select().join(Segment).where(Segment.code.in_([f"rfm_{key}" for key in CODES]))
    first_change = class_log.count()
    compute_as_of(AS_OF)
    after = expected_classes(expected_quintiles(expected_values(orders)))
    moved = 0
    for key in CODES:
        segment = Segment.get(Segment.code == f"rfm_{key}")
        run = SegmentRun.select().where(SegmentRun.segment == segment).order_by(SegmentRun.id.desc()).get()
        log = list(SegmentChange.select().where(SegmentChange.run == run.id))
        entered = {c.customer_id for c in log if c.change == "entered"}
        exited = {c.customer_id for c in log if c.change == "exited"}
        assert entered == after[key] - before[key], key
        assert exited == before[key] - after[key], key
        assert (run.trigger, run.status, run.entered, run.exited, run.size) == (
            "rfm",
            "done",
            len(entered),
            len(exited),
            len(after[key]),
        )
        moved += len(entered) + len(exited)
    assert moved > 0 and class_log.count() > first_change
    # the same scores again: nothing moves
    compute_as_of(AS_OF)
    assert class_log.count() == first_change + moved


def test_trigger_on_a_class_fires(orders, make_user):
    owner = make_user()
    rfm.ensure_class_segments()
    champions = Segment.get(Segment.code == "rfm_champions")
    trigger = triggers.save(
        {
            "name": "Thank the champions",
            "segment_id": champions.id,
            "event": "entered",
            "active": "1",
            "steps": [
                {
                    "action": "task",
                    "delay_value": 0,
                    "delay_unit": "seconds",
                    "only_members": "1",
                    "text": "Thank {{ first_name }}",
                }
            ],
        },
        user=owner,
    )
    compute_as_of(AS_OF)
    want = expected_classes(expected_quintiles(expected_values(orders)))["champions"]
    assert want
    assert triggers.consume() == len(want)
    triggers.run_due()
    assert {e.customer_id for e in TriggerExecution.select().where(TriggerExecution.trigger == trigger)} == want
    assert {t.customer_id for t in Task.select()} == want


def test_class_segments_are_not_evaluated_or_redefined(orders, queue_server):
    compute_as_of(AS_OF)
    segment = Segment.get(Segment.code == "rfm_lost")
    size = segment.size
    try:
        runs.request_run(segment)
    except runs.RunSkipped as exc:
        assert "RFM" in str(exc)
    else:
        raise AssertionError("an RFM class was queued for a definition run")
    assert segment.code not in {s.code for s in realtime.dynamic_segments_in_order()}
    assert not schedule.schedule_due() or all(r.segment.source == "definition" for r in schedule.schedule_due())
    # renaming keeps its definition and type, and queues nothing
    definition = segment.definition
    segments.update_segment(
        segment,
        {
            "code": "rfm_lost",
            "name": "Lost (RFM)",
            "type": "static",
            "active": True,
            "in_analytics": True,
            "definition": {"version": 1, "blocks": []},
        },
    )
    segment = Segment.get_by_id(segment.id)
    assert (segment.name, segment.type, segment.definition, segment.size) == ("Lost (RFM)", "dynamic", definition, size)
    assert not SegmentRun.select().where(SegmentRun.segment == segment, SegmentRun.status == "queued").exists()


def test_job_through_the_real_queue_reports_progress(orders, queue_server):
    RfmSettings.update(as_of=AS_OF).where(RfmSettings.id == rfm.get_settings().id).execute()
    run = jobs.request_run(tz="UTC")
    assert run.status == "queued"
    assert jobs.request_run(tz="UTC").id == run.id  # never two at once
    work_off(queue_server)
    run = RfmRun.get_by_id(run.id)
    assert run.status == "done", run.error
    meta = Job.fetch(jobs.job_id(run.id), connection=Redis.from_url(queue_server)).get_meta()
    assert meta["step"] == meta["steps"] == rfm.STEPS
    want = expected_quintiles(expected_values(orders))
    assert run.scored == len(want) and run.as_of == AS_OF
    assert members("rfm_champions") == expected_classes(want)["champions"]


def test_nightly_job_is_scheduled_and_recomputes(orders, queue_server):
    from croniter import croniter

    from webapp.cron import periodic
    from webapp.queue import connection

    [(func, every, queue)] = [p for p in periodic() if p[0] is jobs.nightly_job]
    assert isinstance(every, str) and croniter.is_valid(every) and queue == "default"
    RfmSettings.update(as_of=AS_OF).where(RfmSettings.id == rfm.get_settings().id).execute()
    # every worker's cron queues it: one that finds another's lock does nothing
    connection().set("segmento:lock:rfm-nightly", "running", px=10000)
    assert jobs.nightly_job() is None and not RfmRun.select().exists()
    connection().delete("segmento:lock:rfm-nightly")
    run_id = jobs.nightly_job()
    run = RfmRun.get_by_id(run_id)
    assert (run.trigger, run.status, run.as_of) == ("nightly", "done", AS_OF)
    assert members("rfm_lost") == expected_classes(expected_quintiles(expected_values(orders)))["lost"]
    # a run under way (its worker alive) is not doubled
    RfmRun.create(status="running", trigger="user", config=run.config, as_of=AS_OF, started_at=run.finished_at)
    assert jobs.nightly_job() is None


def test_api_serves_class_segments(client, make_user, orders):
    from webapp.accounts.service import create_token

    compute_as_of(AS_OF)
    _token, secret = create_token(make_user(), "tests")
    headers = {"Authorization": f"Bearer {secret}"}
    want = expected_classes(expected_quintiles(expected_values(orders)))["champions"]
    data = client.get("/api/v1/segments/rfm_champions", headers=headers).get_json()
    assert (data["source"], data["system"], data["size"]) == ("rfm", True, len(want))
    got, cursor = set(), None
    while True:
        page = client.get(
            "/api/v1/segments/rfm_champions/members",
            headers=headers,
            query_string={"limit": 7, **({"cursor": cursor} if cursor else {})},
        ).get_json()
        got |= {item["external_id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == {x for (x,) in Customer.select(Customer.external_id).where(Customer.id.in_(list(want))).tuples()}
    response = client.post("/api/v1/segments/rfm_champions/recompute", headers=headers)
    assert response.status_code == 409 and "RFM" in response.get_json()["error"]["message"]
    history = client.get("/api/v1/segments/rfm_champions/history", headers=headers).get_json()
    assert history["items"] and {i["change"] for i in history["items"]} == {"entered"}
    assert {i["external_id"] for i in history["items"]} <= got
