"""Shared helpers for the training tests: compose real configs and shrink them."""

from conv1dx.train import compose_config

FAST = ["logger.tensorboard=false", "logger.plots=false", "logger.progress=false"]


def tiny_config(tmp_path, *overrides):
    """The real composed config with the run directory and data directory in `tmp_path`."""
    return compose_config([f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
                           *FAST, *overrides])
