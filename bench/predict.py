"""Predictions on a demo database: fit and score, and a count on a predicted field.

    .venv/bin/python bench/predict.py --database sqlite:////tmp/predict_1m.db

On a copy of a `flask demo-data --customers 1000000` database (it replaces the
stored scores). Measures, in this process:
1. fit + score (webapp.predictions.service.compute_now: the SQL summaries, both
   fits, the page's figures, every customer's scores written back): wall time
   per step and the peak RSS of the process (targets: < 60 s, < 500 MB);
2. `engine.count` of "predicted.p_alive below 0.3" and of "predicted.clv above
   5,000", best of 5 (target: < 0.75 s).
Prints the load average before and after, as the machine is shared.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.db import database, init_database, upgrade  # noqa: E402


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--database", required=True, help="sqlite:///path or postgresql://... (a copy!)")
    p.add_argument("--time-unit", default="week")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    init_database(args.database)
    with database:
        upgrade()
        from webapp import engine
        from webapp.models import Customer, Order
        from webapp.predictions import service

        print(f"customers {Customer.select().count():,}, orders {Order.select().count():,}")
        steps = []
        started = time.monotonic()

        def progress(step, label, done=None, total=None):
            if not steps or steps[-1][0] != label:
                steps.append((label, time.monotonic()))

        fit = service.create_fit(trigger="bench", time_unit=args.time_unit)
        fit = service.execute_fit(fit.id, on_progress=progress)
        total = time.monotonic() - started
        steps.append(("end", time.monotonic()))
        for (label, t0), (_next, t1) in zip(steps, steps[1:], strict=False):
            print(f"  {label}: {t1 - t0:.1f} s")
        print(f"fit + score: {total:.1f} s, status {fit.status}, scored {fit.scored:,}, peak RSS {rss_mb():.0f} MB")
        print(f"  BG/NBD {fit.bgnbd}\n  Gamma-Gamma {fit.gamma_gamma}")
        for name, flt in (
            ("p_alive below 0.3", {"field": "predicted.p_alive", "op": "between", "to": 0.3}),
            ("clv above 5,000", {"field": "predicted.clv", "op": "between", "from": 5000}),
        ):
            definition = {
                "version": 1,
                "match": "all",
                "blocks": [{"entity": "customer", "match": "all", "filters": [flt]}],
            }
            times = []
            for _ in range(5):
                t0 = time.monotonic()
                n = engine.count(definition)
                times.append(time.monotonic() - t0)
            print(f"count {name}: {n:,} customers, best {min(times):.3f} s, median {sorted(times)[2]:.3f} s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
