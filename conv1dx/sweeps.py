"""Read the jobs of a Hydra multirun directory; tabulate their final metrics, mean ± std over seeds.

A job is a directory holding `.hydra/overrides.yaml`. It finished when its `report.json` (written
by `conv1dx.train.train` at the end) is at least as new as its `config.yaml` (written at the
start). Jobs whose overrides differ only in `seed` form one row together with the `trainer.seeds`
replicas inside each job (`report["per_seed"]`); a row's std is NumPy's population std (ddof=0)
over all its seeds, as in report.json. `tabulate` and `to_markdown` are pure; `read_jobs` reads.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import OmegaConf

SEED_KEY = "seed"


@dataclass(frozen=True)
class Job:
    """One job: its overrides as (key, value) pairs, `seeds` as (seed, {metric: value}) pairs."""

    name: str
    overrides: tuple[tuple[str, str], ...]
    seeds: tuple[tuple[int, dict], ...] = ()
    status: str = "ok"  # "ok", "failed" (its log shows an error) or "incomplete"
    error: str | None = None
    optimized_metric: str | None = None
    evaluated_split: str | None = None


@dataclass(frozen=True)
class Row:
    """Finished jobs that differ only in seed: `stats[metric] = (mean, std, number of values)`."""

    params: dict
    seeds: tuple[int, ...]
    stats: dict
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    params: tuple[str, ...]  # override keys that vary between jobs (the table's leading columns)
    common: tuple[str, ...]  # overrides every job shares, as "key=value"
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    unfinished: tuple[Job, ...]


def parse_overrides(lines) -> tuple[tuple[str, str], ...]:
    """[("optimizer.learning_rate", "0.001"), ...] from Hydra override strings (without "+")."""
    parsed = []
    for override in OverridesParser.create().parse_overrides(list(lines)):
        key = override.key_or_group + (f"@{override.package}" if override.package else "")
        written = override.input_line.strip()
        if override.type == OverrideType.DEL:
            value = "(deleted)"
        elif written.startswith(override.get_key_element() + "="):  # as typed: `false`, not `False`
            value = written[len(override.get_key_element()) + 1:]
        else:
            value = override.get_value_element_as_str()
        parsed.append((key, value))
    return tuple(parsed)


def seed_metrics(report: dict, last_row: dict | None = None) -> list[tuple[int, dict]]:
    """(seed, {metric: value}) per replica of one report.

    Per-seed entries come from `report["per_seed"]`; `final_<x>` metrics (means over replicas in the
    report) from `last_row["seed<s>/<x>"]`, the last row of metrics.jsonl, and are left out when a
    multi-seed job has no such row. Other report scalars (baselines, epochs_run) are shared.
    """
    seeds = [int(s) for s in report.get("seeds", [])]
    shared = {k: float(v) for k, v in report.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("_std")}
    per_seed = report.get("per_seed") or [{} for _ in seeds]
    result = []
    for seed, entry in zip(seeds, per_seed, strict=True):
        values = dict(shared)
        values.update({k: float(v) for k, v in entry.items()
                       if k != "seed" and isinstance(v, (int, float)) and not isinstance(v, bool)})
        if len(seeds) > 1:
            for key in [k for k in values if k.startswith("final_")]:
                found = (last_row or {}).get(f"seed{seed}/{key[len('final_'):]}")
                if found is None:
                    del values[key]
                else:
                    values[key] = float(found)
        result.append((seed, values))
    return result


def default_metrics(jobs) -> list[str]:
    """The evaluated split's metrics, final validation metrics and each job's optimized_metric."""
    names: dict[str, None] = {}
    for job in jobs:
        for _, values in job.seeds:
            for key in values:
                evaluated = job.evaluated_split and key.startswith(f"{job.evaluated_split}_")
                if (evaluated or key.startswith("final_val_")) and "_baseline_" not in key:
                    names.setdefault(key)
        if job.optimized_metric and job.seeds:
            names.setdefault(job.optimized_metric)
    return list(names)


def tabulate(jobs, metrics=None) -> Table:
    """Group finished jobs by their non-seed overrides, in order of first appearance."""
    jobs = list(jobs)
    metrics = list(metrics) if metrics else default_metrics(jobs)
    settings = [dict(o for o in job.overrides if o[0] != SEED_KEY) for job in jobs]
    keys = list(dict.fromkeys(k for s in settings for k in s))
    varying = [k for k in keys if len({s.get(k) for s in settings}) > 1]
    common = [f"{k}={settings[0][k]}" for k in keys if k not in varying] if jobs else []
    groups: dict[tuple, list[Job]] = {}
    for job, setting in zip(jobs, settings, strict=True):
        if job.status == "ok":
            groups.setdefault(tuple(setting.get(k) for k in varying), []).append(job)
    rows = []
    for values, members in groups.items():
        replicas = [replica for job in members for replica in job.seeds]
        stats = {}
        for metric in metrics:
            found = np.asarray([v[metric] for _, v in replicas if metric in v], dtype=np.float64)
            if found.size:
                stats[metric] = (float(found.mean()), float(found.std()), int(found.size))
        rows.append(Row(params=dict(zip(varying, values, strict=True)),
                        seeds=tuple(seed for seed, _ in replicas), stats=stats,
                        jobs=tuple(job.name for job in members)))
    return Table(params=tuple(varying), common=tuple(common), metrics=tuple(metrics),
                 rows=tuple(rows), unfinished=tuple(job for job in jobs if job.status != "ok"))


def format_number(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e5 or not math.isfinite(value):
        return f"{value:.4f}"
    return f"{value:.3e}"


def format_stat(stat) -> str:
    """"mean ± std" ("mean" alone for one value; "–" for none)."""
    if stat is None:
        return "–"
    mean, std, count = stat
    return format_number(mean) if count == 1 else f"{format_number(mean)} ± {format_number(std)}"


def _cell(text) -> str:
    return str("" if text is None else text).replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """The table (parameters, seeds, n, metrics as mean ± std), then the unfinished jobs."""
    lines = []
    if table.common:
        lines += ["Common overrides: " + " ".join(f"`{o}`" for o in table.common), ""]
    header = [*table.params, "seeds", "n", *table.metrics]
    lines += ["| " + " | ".join(_cell(h) for h in header) + " |",
              "|" + "|".join("---" for _ in header) + "|"]
    for row in table.rows:
        cells = [*(row.params[k] for k in table.params), ",".join(map(str, row.seeds)),
                 str(len(row.seeds)), *(format_stat(row.stats.get(m)) for m in table.metrics)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if table.unfinished:
        lines += ["", f"Failed or incomplete jobs ({len(table.unfinished)}):"]
        for job in table.unfinished:
            overrides = " ".join(f"{k}={v}" for k, v in job.overrides)
            error = f": {job.error}" if job.error else ""
            lines.append(f"- `{job.name}` ({job.status}) `{overrides}`{error}")
    return "\n".join(lines) + "\n"


def to_csv_rows(table: Table) -> list[dict]:
    """Flat rows for CSV: one per group (status ok), then one per unfinished job (n = 0)."""
    rows = []
    for row in table.rows:
        out = {**row.params, "seeds": " ".join(map(str, row.seeds)), "n": len(row.seeds)}
        for metric in table.metrics:
            mean, std, _ = row.stats.get(metric, (None, None, 0))
            out[f"{metric}_mean"], out[f"{metric}_std"] = mean, std
        rows.append({**out, "jobs": " ".join(row.jobs), "status": "ok", "error": ""})
    for job in table.unfinished:
        params = dict(job.overrides)
        rows.append({**{k: params.get(k, "") for k in table.params},
                     "seeds": params.get(SEED_KEY, ""), "n": 0, "jobs": job.name,
                     "status": job.status, "error": job.error or ""})
    return rows


# ----------------------------------------------------------------------------------------- reading

def finished_report(run_dir: str | Path) -> dict | None:
    """A run directory's report.json when its run finished (report not older than config.yaml)."""
    report_path, config_path = Path(run_dir) / "report.json", Path(run_dir) / "config.yaml"
    if not report_path.is_file():
        return None
    if config_path.is_file() and report_path.stat().st_mtime < config_path.stat().st_mtime:
        return None  # a later attempt started here and has not finished
    try:
        return json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None


def last_error(log_text: str) -> str | None:
    """The exception line of the last traceback in a job log, else its last ERROR record."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if starts:
        for line in lines[starts[-1] + 1:]:
            if line.strip() and not line.startswith((" ", "\t")):
                return line.strip()[:300]
    errors = [line for line in lines if re.search(r"\]\[(ERROR|CRITICAL)\]", line)]
    return errors[-1].split("] - ", 1)[-1][:300] if errors else None


def find_job_dirs(root: str | Path) -> list[Path]:
    """Directories under `root` (itself included) with `.hydra/overrides.yaml`, in numeric order."""
    found = {path.parent.parent for path in Path(root).rglob(".hydra/overrides.yaml")}

    def order(path: Path):
        parts = path.relative_to(root).parts
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]

    return sorted(found, key=order)


def read_job(root: str | Path, directory: Path) -> Job:
    overrides = parse_overrides(OmegaConf.load(directory / ".hydra" / "overrides.yaml") or [])
    name = str(directory.relative_to(root)) if directory != Path(root) else directory.name
    config_path = directory / ".hydra" / "config.yaml"
    optimized = (OmegaConf.load(config_path).get("optimized_metric") if config_path.is_file()
                 else None)
    report = finished_report(directory)
    if report is None:
        logs = sorted(directory.glob("*.log"))
        errors = [last_error(log.read_text(errors="replace")) for log in logs]
        error = next((e for e in errors if e), None)
        return Job(name, overrides, status="failed" if error else "incomplete", error=error,
                   optimized_metric=optimized)
    metrics_path = directory / "metrics.jsonl"
    rows = metrics_path.read_text().splitlines() if metrics_path.is_file() else []
    last_row = json.loads(rows[-1]) if rows and rows[-1].strip() else None
    return Job(name, overrides, tuple(seed_metrics(report, last_row)), optimized_metric=optimized,
               evaluated_split=report.get("evaluated_split"))


def read_jobs(root: str | Path) -> list[Job]:
    """Every job under a multirun directory (or a single run directory)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory; pass a Hydra multirun directory "
                         "(e.g. outputs/train/multiruns/<date>_<time>).")
    directories = find_job_dirs(root)
    if not directories:
        raise ValueError(f"{root} holds no Hydra jobs (no */.hydra/overrides.yaml); pass the "
                         "directory a multirun wrote (its hydra.sweep.dir).")
    return [read_job(root, directory) for directory in directories]
