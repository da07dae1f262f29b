"""Dataset facts for configs: `${data:num_classes}`, `${data:vocab_size}`, ... resolved at build time.

Model configs refer to what the loaded dataset says instead of repeating numbers. The values exist only
while `dataset_facts(...)` is active (inside `train`), so nothing is written back into the config and no
state outlives one run.
"""

from __future__ import annotations

import contextlib
import contextvars

from omegaconf import OmegaConf

_FACTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("conv1dx_data_facts", default=None)


def _resolve(name: str):
    facts = _FACTS.get()
    if facts is None:
        raise ValueError(
            f"${{data:{name}}} is resolved from the loaded dataset: resolve it inside train(cfg) or "
            "inside `with conv1dx.train.dataset_facts({...}):`."
        )
    if name not in facts or facts[name] is None:
        known = ", ".join(sorted(k for k, v in facts.items() if v is not None))
        raise ValueError(f"${{data:{name}}}: this dataset has no fact {name!r}; it has: {known}.")
    value = facts[name]
    return list(value) if isinstance(value, tuple) else value


OmegaConf.register_new_resolver("data", _resolve, replace=True)


@contextlib.contextmanager
def dataset_facts(facts: dict):
    """Make `facts` visible to `${data:...}` interpolations for the duration of the block."""
    token = _FACTS.set(dict(facts))
    try:
        yield
    finally:
        _FACTS.reset(token)
