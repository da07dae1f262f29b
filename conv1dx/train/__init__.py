"""conv1dx.train: the Hydra application and the optax training engine.

`train(cfg) -> dict` is the whole interface; `compose_config(overrides)` builds a config from conv1dx's
conf/ for notebooks and tests, exactly as `python -m conv1dx.train <overrides>` would.
"""

from conv1dx.train.config import compose_config, config_dir
from conv1dx.train.engine import NonFiniteLossError, train
from conv1dx.train.facts import dataset_facts
from conv1dx.train.load import load_model
from conv1dx.train.report import summary_line

__all__ = ["NonFiniteLossError", "compose_config", "config_dir", "dataset_facts", "load_model",
           "summary_line", "train"]
