"""The files of a run directory that are written once: config, run info, summary, model spec, report."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from conv1dx.train.run_info import run_info

# What a fresh (not resumed) run replaces when it reuses a directory.
RUN_OUTPUTS = ("checkpoints", "tensorboard", "metrics.jsonl", "metrics.csv", "report.json", "curves.png")


def clear_previous_run(run_dir: Path) -> None:
    """Remove an earlier run's outputs so a fresh run into a used directory never mixes with them."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_atomically(path: Path, text: str) -> None:
    """Write `text` so readers see the old file or the whole new one, never a partial one."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def write_run_files(session) -> None:
    """config.yaml (resolved), run_info.json, summary.txt and model.json (for `load_model`)."""
    run_dir = session.run_dir
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(session.resolved)))
    (run_dir / "run_info.json").write_text(json.dumps(run_info(session.seeds), indent=2))
    (run_dir / "summary.txt").write_text(session.summary + "\n")
    model = {"layers": session.layers, "input_shape": list(session.data.input_shape),
             "seeds": session.seeds, "restores_best": session.keep_best}
    (run_dir / "model.json").write_text(json.dumps(model, indent=2))
