"""Has this job already run? `completed_report(cfg)` finds a finished run of the same config.

A sweep re-run into the same `hydra.sweep.dir` gives each job the directory of its earlier run. The
job is done when that directory holds a `report.json` not older than its `config.yaml` (the resolved
config `train` writes when it starts) and that recorded config equals the one about to run, up to
the keys in `VOLATILE_KEYS`: they change where and how a run is logged, not what it trains or
measures.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from conv1dx.sweeps import finished_report

log = logging.getLogger("conv1dx.train")

# Dotted keys (with everything under them) left out of the comparison.
VOLATILE_KEYS = ("hydra", "paths", "logger", "task_name", "optimized_metric", "trainer.resume",
                 "trainer.checkpoint")
# Stands for a value that is not compared: a dataset fact (`${data:...}`, known only inside `train`)
# or a value interpolated from a volatile key (`dataset.data_dir: ${paths.data_dir}`).
NOT_COMPARED = "<not compared>"


def _flatten(tree, prefix: str = "") -> dict:
    """{dotted key: leaf} of a nested dict/list tree (list items keyed by index; empty containers
    are leaves)."""
    if isinstance(tree, dict) and tree:
        items = tree.items()
    elif isinstance(tree, list) and tree:
        items = enumerate(tree)
    else:
        return {prefix: tree}
    flat = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _is_under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _prune(tree, volatile, skipped: set[str], prefix: str = ""):
    """A copy of `tree` without `volatile` keys and with the leaves at `skipped` -> NOT_COMPARED."""
    if isinstance(tree, dict):
        paths = {key: f"{prefix}.{key}" if prefix else str(key) for key in tree}
        return {key: _prune(value, volatile, skipped, paths[key]) for key, value in tree.items()
                if not _is_under(paths[key], volatile)}
    if isinstance(tree, list):
        return [_prune(value, volatile, skipped, f"{prefix}.{i}" if prefix else str(i))
                for i, value in enumerate(tree)]
    return NOT_COMPARED if prefix in skipped else tree


def config_differences(current: DictConfig, recorded: DictConfig,
                       volatile: tuple[str, ...] = VOLATILE_KEYS) -> list[str]:
    """The dotted keys where `current` (the composed job config, unresolved) and `recorded` (the
    resolved `config.yaml` of an earlier run) differ, ignoring `volatile` keys; empty if they agree.

    `current` is resolved here, except for leaves that interpolate a dataset fact (`${data:...}`),
    Hydra's runtime (`${hydra:...}`) or a volatile key: those are not compared. A value that cannot
    be resolved outside `train` makes the configs differ (reported as "<unresolvable: key>"), so a
    run is never skipped on a comparison that did not happen.
    """
    names = "|".join(re.escape(key) for key in volatile)
    volatile_ref = re.compile(r"\$\{\s*(data:|hydra:|(" + names + r")[.}])")
    raw = _prune(OmegaConf.to_container(current, resolve=False), volatile, set())
    skipped = {key for key, value in _flatten(raw).items()
               if isinstance(value, str) and volatile_ref.search(value)}
    try:
        mine = _flatten(OmegaConf.to_container(OmegaConf.create(_prune(raw, (), skipped)),
                                               resolve=True))
    except OmegaConfBaseException as error:
        return [f"<unresolvable: {getattr(error, 'full_key', None) or error}>"]
    theirs = _flatten(_prune(OmegaConf.to_container(recorded, resolve=False), volatile, set()))
    theirs = {key: value for key, value in theirs.items() if not _is_under(key, skipped)}
    theirs.update(dict.fromkeys(skipped, NOT_COMPARED))
    missing = object()
    return [key for key in dict.fromkeys([*mine, *theirs])
            if mine.get(key, missing) != theirs.get(key, missing)]


def completed_report(cfg: DictConfig) -> dict | None:
    """The report of a finished run of this same config in `cfg.paths.output_dir`, else None.

    None also when the directory's `report.json` predates its `config.yaml` (a later attempt started
    there and did not finish). A finished run of a different config is logged with the keys that
    differ.
    """
    run_dir = Path(cfg.paths.output_dir)
    report = finished_report(run_dir)
    if report is None or not (run_dir / "config.yaml").is_file():
        return None
    try:
        recorded = OmegaConf.load(run_dir / "config.yaml")
    except (OSError, ValueError, OmegaConfBaseException) as error:
        log.warning("cannot read %s (%s); training again", run_dir / "config.yaml", error)
        return None
    differences = config_differences(cfg, recorded)
    if differences:
        shown = ", ".join(differences[:5]) + (" ..." if len(differences) > 5 else "")
        log.info("%s holds a finished run of another config (differs in %s); training again",
                 run_dir, shown)
        return None
    return report
