"""Read a workload's resolved conv1dx config nodes into framework-neutral specs for the references.

The Keras and PyTorch references are built from the same resolved layer specs, optimizer and loss as
the conv1dx run (see `workload.describe`), so their architectures cannot drift from the configs:

  * `layer_kind(spec)` -> ("Conv1D", {keras arguments});
  * `optimizer_spec(node)` -> ("adam" | "adamw" | "rmsprop" | "sgd", {learning_rate, ...}) in Keras'
    argument names;
  * `loss_kind(node)` -> "binary_crossentropy" | "sparse_categorical_crossentropy" |
    "categorical_crossentropy" | "mean_absolute_error" | "mean_squared_error" (all from logits).

Anything the references do not reproduce (schedules, clipping, label smoothing) is a ValueError.
"""

from __future__ import annotations

LAYER_PREFIX = "conv1dx.nn."

_OPTIMIZERS = {
    "optax.adam": ("adam", {"b1": "beta_1", "b2": "beta_2", "eps": "epsilon"}),
    "optax.adamw": ("adamw", {"b1": "beta_1", "b2": "beta_2", "eps": "epsilon",
                              "weight_decay": "weight_decay"}),
    "optax.rmsprop": ("rmsprop", {"decay": "rho", "eps": "epsilon", "momentum": "momentum"}),
    "optax.sgd": ("sgd", {"momentum": "momentum", "nesterov": "nesterov"}),
}
_LOSSES = {
    "BinaryCrossentropy": "binary_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "MeanAbsoluteError": "mean_absolute_error",
    "MeanSquaredError": "mean_squared_error",
}


def layer_kind(spec: dict) -> tuple[str, dict]:
    """("Conv1D", kwargs) for a resolved layer spec `{"_target_": "conv1dx.nn.Conv1D", ...}`."""
    target = spec.get("_target_", "")
    if not target.startswith(LAYER_PREFIX):
        raise ValueError(f"Layer spec {spec!r} is not a conv1dx.nn layer; the references cannot "
                         "build it.")
    return target[len(LAYER_PREFIX):], {k: v for k, v in spec.items() if k != "_target_"}


def optimizer_spec(node: dict) -> tuple[str, dict]:
    """(name, Keras-named arguments) of a resolved `conv1dx.train.optim.Optimizer` node."""
    for key in ("schedule", "clip_norm", "clip_value"):
        if node.get(key) is not None:
            raise ValueError(f"optimizer.{key} is set; the reference implementations use a "
                             "constant learning rate without clipping. Benchmark without it.")
    transform = dict(node["transform"])
    target = transform.pop("_target_")
    transform.pop("_partial_", None)
    if target not in _OPTIMIZERS:
        raise ValueError(f"No reference optimizer for {target}; known: {', '.join(_OPTIMIZERS)}.")
    name, names = _OPTIMIZERS[target]
    if target == "optax.rmsprop" and transform.pop("eps_in_sqrt", False):
        raise ValueError("optax.rmsprop with eps_in_sqrt=True has no Keras/PyTorch equivalent.")
    unknown = sorted(set(transform) - set(names))
    if unknown:
        raise ValueError(f"{target} arguments {unknown} have no reference equivalent.")
    args = {names[key]: value for key, value in transform.items() if value is not None}
    return name, {"learning_rate": float(node["learning_rate"]), **args}


def loss_kind(node: dict) -> str:
    """The reference loss name of a resolved `conv1dx.train.losses` node (outputs are logits)."""
    name = node["_target_"].rsplit(".", 1)[-1]
    if name not in _LOSSES:
        raise ValueError(f"No reference loss for {node['_target_']}; known: {', '.join(_LOSSES)}.")
    if node.get("label_smoothing"):
        raise ValueError("label_smoothing is not reproduced by the reference implementations.")
    return _LOSSES[name]
