"""The seeds study's Markdown: context, times and ratio, where the time went, metric agreement."""

from __future__ import annotations

import statistics

SPLIT_COLUMNS = (("startup_s", "start-up"), ("first_epoch_s", "epoch 1 (compiles)"),
                 ("other_epochs_s", "epochs 2..E"), ("between_epochs_s", "between epochs"),
                 ("finish_s", "finish"))


def _gap(value: float) -> str:
    if value == 0:
        return "0"
    return "∞" if value == float("inf") else f"{value:.1e}"


def _context(results: dict) -> list[str]:
    ctx, settings = results["context"], results["settings"]
    git = ctx["git"]["commit"][:7] + (" (uncommitted changes)" if ctx["git"]["dirty"] else "")
    m = ctx["machine"]
    overrides = " ".join(settings["overrides"]) or "none"
    return [
        f"Command: `{ctx['command']}`  ",
        f"Date: {ctx['date']}; commit {git}; the whole study took "
        f"{results['duration_s'] / 60:.1f} min  ",
        f"Machine: {m['cpu']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores, "
        f"{m['memory_gib']} GiB; load average {ctx['load_average_start']} at start, "
        f"{results['load_average_end']} at end  ",
        f"Settings: {settings['seeds']} seeds from {settings['first_seed']}; extra overrides: "
        f"{overrides}; warm-up run per workload: {'yes' if settings['warmup'] else 'no'}; "
        f"metrics agree when no difference exceeds {settings['atol']:g}",
    ]


def _times(results: dict) -> list[str]:
    n = results["settings"]["seeds"]
    lines = ["", f"| workload | dataset, epochs | {n} separate runs, s | {n} seeds together, s "
             "| together ÷ separate | ≤ 1/3? | test accuracy (mean ± std over seeds) "
             "| per-seed metrics agree |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for w in results["workloads"]:
        accuracy = w["test_metrics"].get("test_accuracy")
        shown = (f"{statistics.mean(accuracy):.3f} ± {statistics.pstdev(accuracy):.3f}"
                 if accuracy else "—")
        worst = max([*w["final_max_abs_diff"].values(), *w["curves_max_abs_diff"].values()],
                    default=float("inf"))
        lines.append(f"| {w['workload']} | {w['dataset']}, {w['epochs']} | "
                     f"{w['separate']['total_s']:.1f} | {w['together']['total_s']:.1f} | "
                     f"{w['ratio']:.2f} | {'yes' if w['ratio'] <= 1 / 3 else 'no'} | {shown} | "
                     f"{'yes' if w['agree'] else 'NO'} (max {_gap(worst)}) |")
    return lines


def _split(results: dict) -> list[str]:
    n = results["settings"]["seeds"]
    lines = ["", "Where the time went, in seconds (the separate runs summed):", "",
             "| workload | runs | " + " | ".join(title for _, title in SPLIT_COLUMNS)
             + " | total |",
             "|---|---|" + "---:|" * (len(SPLIT_COLUMNS) + 1)]
    for w in results["workloads"]:
        for label, part in ((f"{n} separate", w["separate"]), ("together", w["together"])):
            cells = " | ".join(f"{part['split_s'][key]:.2f}" for key, _ in SPLIT_COLUMNS)
            lines.append(f"| {w['workload']} | {label} | {cells} | {part['total_s']:.1f} |")
    return lines


def _agreement(results: dict) -> list[str]:
    finals = list(dict.fromkeys(k for w in results["workloads"] for k in w["final_max_abs_diff"]))
    curves = list(dict.fromkeys(k for w in results["workloads"] for k in w["curves_max_abs_diff"]))
    lines = ["", "Largest |together − separate| over seeds: final metrics (`report.json`), then "
             "every epoch of the logged curves (`metrics.jsonl`):", "",
             "| workload | " + " | ".join(finals + [f"{k} (curve)" for k in curves]) + " |",
             "|---|" + "---:|" * (len(finals) + len(curves))]
    for w in results["workloads"]:
        cells = [_gap(w["final_max_abs_diff"][k]) if k in w["final_max_abs_diff"] else "—"
                 for k in finals]
        cells += [_gap(w["curves_max_abs_diff"][k]) if k in w["curves_max_abs_diff"] else "—"
                  for k in curves]
        lines.append(f"| {w['workload']} | " + " | ".join(cells) + " |")
    return lines


def _commands(results: dict) -> list[str]:
    lines = ["", "The timed runs (each also gets `hydra.run.dir`, `paths.data_dir` and "
             "`paths.compilation_cache_dir` in a temporary directory):", ""]
    for w in results["workloads"]:
        lines.append(f"* {w['workload']}: `{_short(w['separate']['command'])}` and "
                     f"`{_short(w['together']['command'])}`")
    return lines


def _short(command: list[str]) -> str:
    """The command without the interpreter's path and the run/data directories (temporary)."""
    temporary = ("hydra.run.dir=", "paths.data_dir=", "paths.compilation_cache_dir=")
    kept = [word for word in command[1:] if not word.startswith(temporary)]
    return "python " + " ".join(kept)


def markdown(results: dict) -> str:
    lines = (_context(results) + _times(results) + _split(results) + _agreement(results)
             + _commands(results))
    return "\n".join(lines) + "\n"
