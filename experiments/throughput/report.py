"""Turning measurements into the study's outputs: run context, summary statistics, Markdown tables.

`run_context(command)` records the command, date, git commit, machine and load; `summarize(model)`
derives medians, GFLOP/s, % of peak and conv1dx's ratio from the raw per-round numbers;
`markdown(results)` renders the README's tables; `update_readme(path, text)` replaces the block
between the README's `<!-- results:start -->` and `<!-- results:end -->` markers, so no number in it
is typed by hand; `publish` writes a study's results.json and results.md (and its README block).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _git(repo: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    """CPU model, logical cores, cores this process may use, memory, Python and OS."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kib = 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "memory_gib": round(mem_kib / 2**20, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def run_context(command: str, repo: Path) -> dict:
    status = _git(repo, "status", "--porcelain")
    now = datetime.datetime.now().astimezone()
    return {"command": command, "date": now.isoformat(timespec="seconds"),
            "git": {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": bool(status)},
            "machine": machine(), "load_average_start": load_average()}


def context_line(context: dict) -> str:
    """A `run_context` as the two lines a study prints first: command, then commit (marked when the
    tree had uncommitted changes), CPU, usable cores and the load average at the start."""
    git, machine = context["git"], context["machine"]
    dirty = " (uncommitted changes)" if git["dirty"] else ""
    load = context["load_average_start"]
    return (f"Command: {context['command']}\nCommit {git['commit'][:7]}{dirty}; {machine['cpu']}, "
            f"{machine['usable_cores']} cores; load average {load} at start")


def summarize(model: dict, peak_gflops: float) -> None:
    """Add medians, GFLOP/s, % of `peak_gflops` and conv1dx's speed-up over each framework."""
    base = model["frameworks"].get("conv1dx")
    base_median = statistics.median(base["examples_per_s"]) if base else None
    for result in model["frameworks"].values():
        rates = result["examples_per_s"]
        median = statistics.median(rates)
        result["median_examples_per_s"] = median
        result["gflops"] = median * model["flops_per_example"] / 1e9
        result["percent_of_peak"] = 100.0 * result["gflops"] / peak_gflops if peak_gflops else None
        result["conv1dx_speedup"] = base_median / median if base_median else None


def _fmt(value, digits=0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def markdown(results: dict) -> str:
    """The README's block: context lines, a per-framework table and a conv1dx-ratio table."""
    ctx, peak = results["context"], results["peak"]
    git = ctx["git"]["commit"][:12] + (" (uncommitted changes)" if ctx["git"]["dirty"] else "")
    m = ctx["machine"]
    lines = [
        f"Command: `{ctx['command']}`  ",
        f"Date: {ctx['date']}; commit {git}  ",
        f"Machine: {m['cpu']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores, "
        f"{m['memory_gib']} GiB; load average {ctx['load_average_start']} at start, "
        f"{results.get('load_average_end')} at end  ",
        f"float32 matmul peak, best of rounds: {_fmt(peak['best_gflops'], 1)} GFLOP/s "
        f"(n = {peak['n']}; "
        f"NumPy best {_fmt(max(r['numpy_gflops'] for r in peak['rounds']), 1)}, JAX best "
        f"{_fmt(max(r['jax_gflops'] for r in peak['rounds']), 1)}; median round "
        f"{_fmt(peak['median_gflops'], 1)})  ",
        f"Settings: {results['settings']['rounds']} interleaved rounds, epochs of "
        f"{results['settings']['steps']} batches, timed blocks of at least "
        f"{results['settings']['block_seconds']} s",
    ]
    for name, reason in results.get("skipped", {}).items():
        lines[-1] += "  "
        lines.append(f"Skipped {name}: {reason}")
    lines += ["", "| model | batch | framework | examples/s (median) | min – max | conv1dx ÷ it "
              "| compile s | GFLOP/s | % of peak | peak RSS MiB |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for model in results["models"]:
        for name, r in model["frameworks"].items():
            lines.append(
                f"| {model['experiment']} | {model['batch_size']} | {name} | "
                f"{_fmt(r['median_examples_per_s'])} | {_fmt(min(r['examples_per_s']))} – "
                f"{_fmt(max(r['examples_per_s']))} | {_fmt(r['conv1dx_speedup'], 2)} | "
                f"{_fmt(r['compile_s'], 1)} | {_fmt(r['gflops'], 1)} | "
                f"{_fmt(r['percent_of_peak'], 1)} | {_fmt(r['peak_rss_mib'])} |")
    peers = sorted({n for m in results["models"] for n in m["frameworks"] if n != "conv1dx"})
    if peers and any("conv1dx" in m["frameworks"] for m in results["models"]):
        lines += ["", "conv1dx's examples/s divided by each framework's (> 1: conv1dx is faster):",
                  "", "| model | training FLOPs / example | conv1dx examples/s | "
                  + " | ".join(f"÷ {p}" for p in peers) + " |",
                  "|---|---:|---:|" + "---:|" * len(peers)]
        for model in results["models"]:
            fw = model["frameworks"]
            if "conv1dx" not in fw:
                continue
            ratios = " | ".join(_fmt(fw[p]["conv1dx_speedup"], 2) if p in fw else "—"
                                for p in peers)
            lines.append(f"| {model['experiment']} | {model['flops_per_example'] / 1e6:,.1f} M | "
                         f"{_fmt(fw['conv1dx']['median_examples_per_s'])} | {ratios} |")
    return "\n".join(lines) + "\n"


def update_readme(path: Path, text: str) -> None:
    """Replace the README block between the START and END markers with `text`."""
    readme = Path(path).read_text()
    if START not in readme or END not in readme:
        raise ValueError(f"{path} has no {START} ... {END} block to write the results into.")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    Path(path).write_text(f"{head}{START}\n{text}{END}{tail}")


def publish(results: dict, text: str, out: Path, readme: Path | None = None) -> None:
    """Write `results` to out/results.json and `text` to out/results.md, print `text`, and write it
    into `readme`'s results block when one is given."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(text)
    print(text)
    if readme is not None:
        update_readme(readme, text)
