"""Segment engine speed on the demo data set (issue 4, item 6).

    .venv/bin/python bench/segments.py --sqlite bench/data/demo_1000000.db
    .venv/bin/python bench/segments.py --postgres postgresql://postgres:postgres@127.0.0.1:5432/segmento_bench
    .venv/bin/python bench/segments.py --sqlite ... --postgres ... --pandas sqlite --markdown

For each definition below: the engine's count and full member list, the same
question written by hand in SQL on the same database, and (with --pandas)
the same question in pandas over the tables loaded in memory from that
database (load time reported apart). Each timing is the best of --repeat runs
(default 3) after one warm-up; the machine's load average is printed with the
figures, as the box is shared. Peak RSS while listing a 1M-member result is
measured in a fresh subprocess (`--rss-child`), so pandas cannot inflate it.

The evaluation time is fixed (`--at`, default: the newest order's day), so
the engine, the hand-written SQL and pandas answer the same question; every
answer is checked to be identical (count and ids) before anything is printed.
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp import engine  # noqa: E402
from webapp.db import database, init_database, is_postgres  # noqa: E402
from webapp.engine.compiler import count_query  # noqa: E402

TZ = "UTC"


def _in(*items):
    return [{"value": v, "exclude": False} for v in items]


BIRTHDAY_3_DAYS = {
    "entity": "customer",
    "filters": [{"field": "birth_date", "op": "relative", "from_days": 0, "to_days": 3, "ignore_year": True}],
}
WON_MEMBERSHIPS = {
    "entity": "deal",
    "filters": [
        {"field": "pipeline", "op": "in", "values": _in("Memberships")},
        {"field": "stage_kind", "op": "in", "values": _in("won")},
    ],
}

# (name, what it asks, definition)
DEFINITIONS = [
    (
        "customer_fields",
        "women in Moscow who accept email",
        {
            "blocks": [
                {
                    "entity": "customer",
                    "filters": [
                        {"field": "gender", "op": "in", "values": _in("female")},
                        {"field": "city", "op": "in", "values": _in("Москва")},
                        {"field": "email_consent", "op": "is", "value": True},
                    ],
                }
            ]
        },
    ),
    (
        "custom_fields",
        "favourite destination Vietnam or Thailand, with pets",
        {
            "blocks": [
                {
                    "entity": "customer",
                    "filters": [
                        {"field": "custom.favourite_destination", "op": "in", "values": _in("Vietnam", "Thailand")},
                        {"field": "custom.pets", "op": "between", "from": 1},
                    ],
                }
            ]
        },
    ),
    ("birthday_3_days", "birthday in the next 3 days, ignoring the year", {"blocks": [BIRTHDAY_3_DAYS]}),
    (
        "orders_count_sum",
        "3 or more orders for 10,000 or more in total (all orders)",
        {
            "blocks": [
                {
                    "entity": "order",
                    "having": [
                        {"agg": "count", "op": "between", "from": 3},
                        {"agg": "sum", "op": "between", "from": 10000},
                    ],
                }
            ]
        },
    ),
    (
        "group_90_days",
        "bought urinary care cat food in the last 90 days",
        {
            "blocks": [
                {
                    "entity": "order",
                    "filters": [
                        {"field": "product_group", "op": "in", "values": _in("Pet food/Cat food/Urinary care")},
                        {"field": "ordered_at", "op": "relative", "from_days": -90},
                    ],
                }
            ]
        },
    ),
    (
        "no_order_180_days",
        "no order in the last 180 days (never ordered included)",
        {
            "blocks": [
                {
                    "entity": "order",
                    "filters": [{"field": "ordered_at", "op": "relative", "from_days": -180}],
                    "having": [{"agg": "count", "op": "between", "from": 0, "to": 0}],
                }
            ]
        },
    ),
    ("deals_won_pipeline", "won a deal in the Memberships pipeline", {"blocks": [WON_MEMBERSHIPS]}),
    (
        "email_open_30_days",
        "last email open more than 30 days ago",
        {
            "blocks": [
                {
                    "entity": "message",
                    "filters": [
                        {"field": "channel", "op": "in", "values": _in("email")},
                        {"field": "kind", "op": "in", "values": _in("opened")},
                    ],
                    "having": [{"agg": "last_at", "op": "relative", "to_days": -31}],
                }
            ]
        },
    ),
    (
        "three_blocks_any",
        "birthday soon, or 50,000+ spent, or a won membership",
        {
            "match": "any",
            "blocks": [
                BIRTHDAY_3_DAYS,
                {"entity": "order", "having": [{"agg": "sum", "op": "between", "from": 50000}]},
                WON_MEMBERSHIPS,
            ],
        },
    ),
    (
        "everyone_but_moscow",
        "everyone but Moscow (about 850,000 members)",
        {
            "blocks": [
                {
                    "entity": "customer",
                    "filters": [{"field": "city", "op": "in", "values": [{"value": "Москва", "exclude": True}]}],
                }
            ]
        },
    ),
]


# --- the same questions by hand in SQL -----------------------------------------------
# Written the way a person who knows the schema would, with the rollup where
# it fits; `%s` placeholders (SQLite gets `?`). Each returns customer ids.


def _hand_sql(name, k):
    """(SQL selecting customer ids, params) for question `name`; k: today, field ids, dialect."""
    today = k["today"]

    def day(offset):
        return datetime.datetime.combine(today + datetime.timedelta(days=offset), datetime.time())

    def md_range(lo, hi):
        lo, hi = lo.month * 100 + lo.day, hi.month * 100 + hi.day
        if lo <= hi:
            return "c.birth_md BETWEEN %s AND %s", [lo, hi]
        return "(c.birth_md >= %s OR c.birth_md <= %s)", [lo, hi]

    birthday, birthday_params = md_range(today, today + datetime.timedelta(days=3))
    won = (
        "SELECT d.customer_id FROM deal d JOIN pipeline p ON p.id = d.pipeline_id "
        "JOIN stage s ON s.id = d.stage_id WHERE p.name_ci = %s AND s.kind = %s"
    )
    if name == "customer_fields":
        return (
            "SELECT c.id FROM customer c WHERE c.gender = %s AND c.city_ci = %s AND c.email_consent = %s",
            ["female", "москва", True],
        )
    if name == "custom_fields":
        return (
            "SELECT c.id FROM customer c "
            "JOIN custom_value d ON d.record_id = c.id AND d.field_id = %s "
            "JOIN custom_value p ON p.record_id = c.id AND p.field_id = %s "
            "WHERE d.value_ci IN (%s, %s) AND p.value_num >= %s",
            [k["fields"]["favourite_destination"], k["fields"]["pets"], "vietnam", "thailand", 1],
        )
    if name == "birthday_3_days":
        return f"SELECT c.id FROM customer c WHERE {birthday}", birthday_params
    if name == "orders_count_sum":
        return (
            "SELECT s.customer_id FROM customer_order_stats s WHERE s.orders_count >= %s AND s.total_cents >= %s",
            [3, 1000000],
        )
    if name == "group_90_days":
        return (
            "SELECT DISTINCT o.customer_id FROM orders o JOIN order_item i ON i.order_id = o.id "
            "JOIN product p ON p.id = i.product_id JOIN product_group g ON g.id = p.group_id "
            "WHERE o.ordered_at >= %s AND (g.path_ci = %s OR g.path_ci LIKE %s)",
            [day(-90), "pet food/cat food/urinary care", "pet food/cat food/urinary care/%"],
        )
    if name == "no_order_180_days":
        return (
            "SELECT c.id FROM customer c WHERE NOT EXISTS "
            "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.ordered_at >= %s)",
            [day(-180)],
        )
    if name == "deals_won_pipeline":
        return "SELECT DISTINCT x.customer_id FROM (" + won + ") x", ["memberships", "won"]
    if name == "email_open_30_days":
        return (
            "SELECT m.customer_id FROM message_event m WHERE m.channel = %s AND m.kind = %s "
            "GROUP BY m.customer_id HAVING MAX(m.occurred_at) < %s",
            ["email", "opened", day(-30)],
        )
    if name == "three_blocks_any":
        return (
            f"SELECT c.id FROM customer c WHERE {birthday} "
            "UNION SELECT s.customer_id FROM customer_order_stats s WHERE s.total_cents >= %s "
            "UNION " + won,
            birthday_params + [5000000, "memberships", "won"],
        )
    if name == "everyone_but_moscow":
        return "SELECT c.id FROM customer c WHERE c.city_ci IS NULL OR c.city_ci <> %s", ["москва"]
    raise KeyError(name)


def _sql(sql):
    return sql if is_postgres() else sql.replace("%s", "?")


def hand_count(name, k):
    sql, params = _hand_sql(name, k)
    return database.execute_sql(_sql(f"SELECT COUNT(*) FROM ({sql}) x"), params).fetchone()[0]


def hand_ids(name, k):
    sql, params = _hand_sql(name, k)
    rows = []
    for batch in _fetch_batches(_sql(f"SELECT x.* FROM ({sql}) x ORDER BY 1"), params):
        rows.extend(r[0] for r in batch)
    return rows


def _fetch_batches(sql, params, size=10000):
    if is_postgres():
        with database.atomic():
            database.execute_sql("SET LOCAL cursor_tuple_fraction = 1.0")  # as the engine does
            cursor = database.connection().cursor(name="hand")
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(size):
                yield rows
            cursor.close()
    else:
        cursor = database.execute_sql(sql, params)
        while rows := cursor.fetchmany(size):
            yield rows


# --- the same questions in pandas ------------------------------------------------------


def pandas_load(k):
    """The tables the questions read, as DataFrames (from the bound database)."""
    import pandas as pd

    def frame(sql, params=(), dates=()):
        cursor = database.execute_sql(_sql(sql), list(params))
        columns = [d[0] for d in cursor.description]
        df = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
        for column in dates:
            df[column] = pd.to_datetime(df[column], format="mixed" if not is_postgres() else None)
        return df

    fields = k["fields"]
    return {
        "customer": frame("SELECT id, gender, city_ci, email_consent, birth_md FROM customer"),
        "custom_value": frame(
            "SELECT field_id, record_id, value_ci, value_num FROM custom_value WHERE field_id IN (%s, %s)",
            [fields["favourite_destination"], fields["pets"]],
        ).astype({"value_num": "float"}),
        "orders": frame("SELECT id, customer_id, ordered_at, total_cents FROM orders", dates=["ordered_at"]),
        "order_item": frame("SELECT order_id, product_id FROM order_item"),
        "product": frame("SELECT id, group_id FROM product"),
        "product_group": frame("SELECT id, path_ci FROM product_group"),
        "deal": frame("SELECT customer_id, pipeline_id, stage_id FROM deal"),
        "pipeline": frame("SELECT id, name_ci FROM pipeline"),
        "stage": frame("SELECT id, kind FROM stage"),
        "message_event": frame(
            "SELECT customer_id, channel, kind, occurred_at FROM message_event", dates=["occurred_at"]
        ).astype({"channel": "category", "kind": "category"}),
    }


def pandas_ids(name, t, k):
    """Sorted customer ids answering question `name` over the DataFrames `t`."""
    import numpy as np
    import pandas as pd

    today = pd.Timestamp(k["today"])
    c = t["customer"]

    def birthday_ids():
        lo = k["today"]
        hi = lo + datetime.timedelta(days=3)
        lo, hi = lo.month * 100 + lo.day, hi.month * 100 + hi.day
        md = c["birth_md"]
        mask = md.between(lo, hi) if lo <= hi else (md >= lo) | (md <= hi)
        return c.loc[mask, "id"].to_numpy()

    def won_ids():
        d = (
            t["deal"]
            .merge(t["pipeline"], left_on="pipeline_id", right_on="id")
            .merge(t["stage"], left_on="stage_id", right_on="id")
        )
        return d.loc[(d["name_ci"] == "memberships") & (d["kind"] == "won"), "customer_id"].unique()

    def order_totals():
        return t["orders"].groupby("customer_id")["total_cents"].agg(["count", "sum"])

    if name == "customer_fields":
        ids = c.loc[(c["gender"] == "female") & (c["city_ci"] == "москва") & (c["email_consent"] == 1), "id"]
    elif name == "custom_fields":
        cv = t["custom_value"]
        dest = cv.loc[
            (cv["field_id"] == k["fields"]["favourite_destination"]) & cv["value_ci"].isin(["vietnam", "thailand"]),
            "record_id",
        ]
        pets = cv.loc[(cv["field_id"] == k["fields"]["pets"]) & (cv["value_num"] >= 1), "record_id"]
        ids = c.loc[c["id"].isin(dest) & c["id"].isin(pets), "id"]
    elif name == "birthday_3_days":
        ids = birthday_ids()
    elif name == "orders_count_sum":
        g = order_totals()
        ids = g.index[(g["count"] >= 3) & (g["sum"] >= 1000000)]
    elif name == "group_90_days":
        o = t["orders"]
        recent = o.loc[o["ordered_at"] >= today - pd.Timedelta(days=90), ["id", "customer_id"]]
        groups = t["product_group"]
        wanted = groups.loc[
            (groups["path_ci"] == "pet food/cat food/urinary care")
            | groups["path_ci"].str.startswith("pet food/cat food/urinary care/"),
            "id",
        ]
        products = t["product"].loc[t["product"]["group_id"].isin(wanted), "id"]
        items = t["order_item"]
        orders_with = items.loc[items["product_id"].isin(products), "order_id"]
        ids = recent.loc[recent["id"].isin(orders_with), "customer_id"].unique()
    elif name == "no_order_180_days":
        o = t["orders"]
        recent = o.loc[o["ordered_at"] >= today - pd.Timedelta(days=180), "customer_id"]
        ids = c.loc[~c["id"].isin(recent), "id"]
    elif name == "deals_won_pipeline":
        ids = won_ids()
    elif name == "email_open_30_days":
        m = t["message_event"]
        opened = m.loc[(m["channel"] == "email") & (m["kind"] == "opened")]
        last = opened.groupby("customer_id")["occurred_at"].max()
        ids = last.index[last < today - pd.Timedelta(days=30)]
    elif name == "three_blocks_any":
        g = order_totals()
        ids = np.union1d(np.union1d(birthday_ids(), g.index[g["sum"] >= 5000000]), won_ids())
    elif name == "everyone_but_moscow":
        ids = c.loc[c["city_ci"].isna() | (c["city_ci"] != "москва"), "id"]
    else:
        raise KeyError(name)
    return np.sort(np.asarray(ids, dtype=np.int64))


# --- running ----------------------------------------------------------------------------


def timed(fn, repeat, cpu=None):
    """(result, best wall seconds of `repeat` runs); `cpu` (a list) gets the
    process CPU seconds of that best run (SQLite works in-process, so on SQLite
    this is the query's own cost, whatever else the machine is doing)."""
    best, result, best_cpu = None, None, None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        elapsed, used = time.perf_counter() - started, time.process_time() - started_cpu
        if best is None or elapsed < best:
            best, best_cpu = elapsed, used
    if cpu is not None:
        cpu.append(best_cpu)
    return result, best


def context(at):
    from webapp.models import CustomField

    fields = {f.code: f.id for f in CustomField.select().where(CustomField.entity == "customer")}
    return {"today": engine.today_at(at, TZ), "at": at, "fields": fields}


def default_at():
    newest = database.execute_sql("SELECT MAX(ordered_at) FROM orders").fetchone()[0]
    if isinstance(newest, str):
        newest = datetime.datetime.fromisoformat(newest)
    return datetime.datetime.combine(newest.date(), datetime.time(12))


def bind(url):
    init_database(url)
    database.connect(reuse_if_open=True)


def run_backend(label, url, args, pandas_tables=None):
    bind(url)
    at = datetime.datetime.fromisoformat(args.at) if args.at else default_at()
    k = context(at)
    rows = []
    for name, what, raw in DEFINITIONS:
        if args.only and name not in args.only:
            continue
        definition = engine.parse_definition(raw)
        sql = count_query(definition, at=at, tz=TZ).sql()[0]
        # one untimed run each: the timed runs read warm caches, as a busy server would
        engine.count(definition, at=at, tz=TZ)
        hand_count(name, k)
        cpu = []
        n, t_count = timed(lambda: engine.count(definition, at=at, tz=TZ), args.repeat, cpu)
        hn, t_hand_count = timed(lambda: hand_count(name, k), args.repeat, cpu)
        ids, t_list = timed(lambda: list(engine.member_ids(definition, at=at, tz=TZ)), args.repeat)
        hids, t_hand_list = timed(lambda: hand_ids(name, k), args.repeat)
        if not (n == hn == len(ids) == len(hids)) or ids != hids:
            sys.exit(f"{label} {name}: engine {n}/{len(ids)} ids, by hand {hn}/{len(hids)} ids: answers differ")
        row = {
            "name": name,
            "what": what,
            "members": n,
            "count_s": t_count,
            "hand_count_s": t_hand_count,
            "list_s": t_list,
            "hand_list_s": t_hand_list,
            "rollup": "customer_order_stats" in sql,
            "count_cpu_s": cpu[0],
            "hand_count_cpu_s": cpu[1],
        }
        if pandas_tables is not None:
            pids, t_pandas = timed(lambda: pandas_ids(name, pandas_tables, k), args.repeat)
            if list(pids) != ids:
                sys.exit(f"{label} {name}: pandas gives {len(pids)} ids, the engine {len(ids)}: answers differ")
            row["pandas_s"] = t_pandas
        rows.append(row)
        print(
            f"{label:10} {name:20} {n:>8} count {t_count:6.2f}s cpu {cpu[0]:5.2f}s (hand {t_hand_count:6.2f}s "
            f"cpu {cpu[1]:5.2f}s)  "
            f"list {t_list:6.2f}s (hand {t_hand_list:6.2f}s)"
            + (f"  pandas {row['pandas_s']:6.2f}s" if "pandas_s" in row else ""),
            flush=True,
        )
    return {"label": label, "at": at.isoformat(" "), "rows": rows}


def _peak_rss_mb():
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's
    # peak (pandas) across fork and exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(url):
    """Peak RSS of this process while listing every customer (the largest possible result)."""
    bind(url)
    everyone = engine.parse_definition({"blocks": []})
    base = _peak_rss_mb()
    started = time.perf_counter()
    members = sum(1 for _ in engine.member_ids(everyone, tz=TZ))
    elapsed = time.perf_counter() - started
    print(json.dumps({"members": members, "base_mb": base, "peak_mb": _peak_rss_mb(), "seconds": elapsed}))


def measure_rss(url):
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", url], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_average():
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def markdown(results, rss, pandas_load_s, started_load, ended_load):
    lines = []
    for result in results:
        label = result["label"]
        in_process = label == "SQLite"
        lines += [
            f"**{label}** (evaluated at {result['at']} UTC; wall time, best of the timed runs"
            + ("; CPU: this process, which runs SQLite)" if in_process else ")"),
            "",
            "| definition | members | count | by hand | ratio"
            + (" | count CPU | by hand CPU" if in_process else "")
            + " | member list | by hand | ratio"
            + (" | pandas | engine list / pandas |" if "pandas_s" in result["rows"][0] else " |"),
            "|---|--:|--:|--:|--:|"
            + ("--:|--:|" if in_process else "")
            + "--:|--:|--:|"
            + ("--:|--:|" if "pandas_s" in result["rows"][0] else ""),
        ]
        for r in result["rows"]:
            cpu = f"| {r['count_cpu_s']:.3f} s | {r['hand_count_cpu_s']:.3f} s " if in_process else ""
            line = (
                f"| {r['name']}{' (rollup)' if r['rollup'] else ''} | {r['members']:,} | {r['count_s']:.3f} s "
                f"| {r['hand_count_s']:.3f} s | {r['count_s'] / max(r['hand_count_s'], 1e-9):.2f} {cpu}"
                f"| {r['list_s']:.3f} s | {r['hand_list_s']:.3f} s "
                f"| {r['list_s'] / max(r['hand_list_s'], 1e-9):.2f} |"
            )
            if "pandas_s" in r:
                line += f" {r['pandas_s']:.3f} s | {r['list_s'] / max(r['pandas_s'], 1e-9):.2f} |"
            lines.append(line)
        lines.append("")
        if label in rss:
            x = rss[label]
            lines.append(
                f"Peak RSS listing all {x['members']:,} customers through `member_ids`: "
                f"{x['peak_mb']:.0f} MB (process after imports and connect: {x['base_mb']:.0f} MB; "
                f"{x['seconds']:.1f} s)."
            )
            lines.append("")
    if pandas_load_s is not None:
        lines.append(f"pandas: loading the tables into memory took {pandas_load_s:.0f} s (not in the figures above).")
    lines.append(f"Load average (1/5/15 min) at start: {started_load}; at end: {ended_load} (2 shared cores).")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", help="SQLite file of the demo data")
    parser.add_argument("--postgres", help="PostgreSQL URL of the demo data")
    parser.add_argument("--pandas", choices=["sqlite", "postgres"], help="also answer in pandas, loaded from this one")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per figure (best is kept)")
    parser.add_argument("--at", help="evaluation time, naive UTC ISO (default: the newest order's day, 12:00)")
    parser.add_argument("--only", nargs="*", help="definition names to run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown block for bench/RESULTS.md")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child)
    targets = []
    if args.sqlite:
        targets.append(("SQLite", "sqlite:///" + str(Path(args.sqlite).resolve())))
    if args.postgres:
        targets.append(("PostgreSQL", args.postgres))
    if not targets:
        parser.error("give --sqlite and/or --postgres")
    started_load = load_average()
    results, rss, pandas_load_s = [], {}, None
    for label, url in targets:
        tables = None
        if args.pandas and label.lower().startswith(args.pandas[:6]):
            bind(url)
            started = time.perf_counter()
            tables = pandas_load(context(datetime.datetime.fromisoformat(args.at) if args.at else default_at()))
            pandas_load_s = time.perf_counter() - started
            print(f"pandas: tables loaded in {pandas_load_s:.0f} s", flush=True)
        if not args.no_rss:
            rss[label] = measure_rss(url)
            print(f"{label}: {rss[label]}", flush=True)
        results.append(run_backend(label, url, args, tables))
        del tables
    if args.markdown:
        print()
        print(markdown(results, rss, pandas_load_s, started_load, load_average()))


if __name__ == "__main__":
    main()
