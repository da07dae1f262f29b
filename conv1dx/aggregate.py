"""`python -m conv1dx.aggregate <multirun dir> [--metrics m1,m2] [--out DIR]`: one table of a sweep.

Reads every job's report.json, groups jobs that differ only in `seed` (and the `trainer.seeds`
replicas inside a job) into one row with mean ± std and the number of seeds, writes `aggregate.md`
and `aggregate.csv` to the multirun directory (or --out) and prints the Markdown. Unfinished jobs
are listed with the error from their log. Exits 1 when no job finished.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from conv1dx import sweeps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conv1dx.aggregate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("multirun_dir", type=Path,
                        help="the directory a multirun wrote (its hydra.sweep.dir)")
    parser.add_argument("--metrics", help="comma-separated report.json keys (default: the "
                        "evaluated split's metrics, final_val_* and optimized_metric)")
    parser.add_argument("--out", type=Path,
                        help="where to write aggregate.md/.csv (default: the multirun dir)")
    args = parser.parse_args(argv)
    try:
        jobs = sweeps.read_jobs(args.multirun_dir)
    except ValueError as error:
        parser.error(str(error))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    table = sweeps.tabulate(jobs, metrics)
    absent = [m for m in table.metrics if not any(m in row.stats for row in table.rows)]
    if absent and table.rows:
        known = sorted({k for job in jobs for _, values in job.seeds for k in values})
        print(f"warning: no finished job reports {', '.join(absent)}; they report: "
              f"{', '.join(known)}", file=sys.stderr)
    out = args.out or args.multirun_dir
    out.mkdir(parents=True, exist_ok=True)
    markdown = sweeps.to_markdown(table)
    (out / "aggregate.md").write_text(markdown)
    rows = sweeps.to_csv_rows(table)
    with (out / "aggregate.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    print(markdown, end="")
    return 0 if table.rows else 1


if __name__ == "__main__":
    sys.exit(main())
