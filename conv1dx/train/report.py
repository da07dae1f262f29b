"""Turn per-replica metric sums into epoch log rows and the final report of a run."""

from __future__ import annotations

import numpy as np


def replica_metrics(sums: dict, metrics, replica: int) -> dict:
    """Loss and task metrics of one replica from stacked sums (leading axis = replica)."""
    mine = {key: np.asarray(value)[replica] for key, value in sums.items()}
    count = float(mine["count"])
    result = {"loss": float(mine["loss"]) / max(count, 1.0)}
    result.update(metrics.finalize(mine, count))
    return result


def _scalars(values: dict) -> dict:
    return {k: v for k, v in values.items() if isinstance(v, (int, float))}


def epoch_row(epoch: int, sums: dict, metrics, seeds: list[int], *, lr, seconds: float,
              train_seconds: float, examples: int) -> dict:
    """One flat log row: `<split>_<metric>` means over replicas, `seed<s>/<split>_<metric>` each."""
    row: dict = {"epoch": epoch}
    per_seed: dict = {}
    for split, split_sums in sums.items():
        for i, seed in enumerate(seeds):
            for name, value in _scalars(replica_metrics(split_sums, metrics, i)).items():
                per_seed.setdefault(f"{split}_{name}", []).append(value)
                if len(seeds) > 1:
                    row[f"seed{seed}/{split}_{name}"] = value
    row.update({key: float(np.mean(values)) for key, values in per_seed.items()})
    row["lr"] = float(np.mean(lr))
    row["seconds"] = seconds  # the whole epoch, validation included
    # training throughput of the compiled epoch alone, all replicas together
    row["examples_per_second"] = examples * len(seeds) / train_seconds if train_seconds > 0 else 0.0
    return row


def final_report(test_name, test_sums, data, seeds, rows, early, last_epoch) -> dict:
    """Final metrics per seed and as mean ± std over seeds, with the per-class report and baseline."""
    report: dict = {"dataset": data.name, "seeds": seeds, "epochs_run": last_epoch,
                    "evaluated_split": test_name}
    per_seed = []
    if test_sums is not None:
        for i, seed in enumerate(seeds):
            metrics = replica_metrics(test_sums, data.metrics, i)
            per_seed.append({"seed": seed, **{f"{test_name}_{k}": v for k, v in metrics.items()}})
    if early is not None and early.best_epoch is not None:
        for entry, epoch in zip(per_seed, early.best_epoch, strict=True):
            entry["best_epoch"] = int(epoch)
    report["per_seed"] = per_seed
    scalar_keys = [k for k, v in (per_seed[0].items() if per_seed else []) if isinstance(v, float)]
    for key in scalar_keys:
        values = np.asarray([entry[key] for entry in per_seed])
        report[key] = float(values.mean())
        report[f"{key}_std"] = float(values.std())
    if rows:
        last = rows[-1]
        for entry in per_seed:
            prefix = f"seed{entry['seed']}/" if len(seeds) > 1 else ""
            for key, value in last.items():
                name = key[len(prefix):] if prefix and key.startswith(prefix) else key
                if (key.startswith(prefix) if prefix else "/" not in key) and \
                        name.startswith(("train_", "val_")):
                    entry[f"final_{name}"] = value
        for key, value in last.items():
            if key.startswith(("train_", "val_")) and "/" not in key:
                report[f"final_{key}"] = value
    report.update(data.baseline)
    return report


def summary_line(report: dict) -> str:
    """One line for the terminal: the evaluated split's metrics, mean +/- std over seeds."""
    split = report.get("evaluated_split")
    parts = []
    for key, value in report.items():
        if split and key.startswith(f"{split}_") and not key.endswith("_std") and isinstance(value, float):
            std = report.get(f"{key}_std")
            spread = f" +/- {std:.4f}" if std and len(report["seeds"]) > 1 else ""
            parts.append(f"{key} = {value:.4f}{spread}")
    seeds = report["seeds"]
    return (f"{report['dataset']} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}, "
            f"{report['epochs_run']} epochs): " + ", ".join(parts) + f"\nrun directory: {report['run_dir']}")
