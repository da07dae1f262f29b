"""`python -m conv1dx.train [overrides]`: compose the config and call `train(cfg)`.

Returns the metric named by `optimized_metric` so Hydra sweepers (Optuna) can optimize it. A job
whose directory already holds a finished run of the same config (a sweep re-run into the same
`hydra.sweep.dir`) is skipped and returns the recorded metric.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from conv1dx.train.completed import completed_report
from conv1dx.train.config import config_dir
from conv1dx.train.parallel import maybe_initialize_distributed
from conv1dx.train.report import summary_line

log = logging.getLogger("conv1dx.train")


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from conv1dx.train.engine import train

    maybe_initialize_distributed()
    report = completed_report(cfg)
    if report is not None:
        log.info("skipping completed job %s", cfg.paths.output_dir)
    else:
        try:
            report = train(cfg)
        except Exception:
            log.exception("run failed; its directory keeps the config and logs written so far")
            raise
    print(summary_line(report))
    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in report:
            raise KeyError(f"optimized_metric {metric!r} is not in the report; it has {sorted(report)}.")
        return float(report[metric])
    return None


if __name__ == "__main__":
    main()
