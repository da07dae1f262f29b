"""Keras 3 reference: the workload's model as `keras.Sequential`, trained with `model.fit`.

conv1dx layers take Keras' argument names, so each resolved spec `{"_target_": "conv1dx.nn.Conv1D",
...}` becomes `keras.layers.Conv1D(...)` with the same arguments. The backend (JAX or TensorFlow) is
chosen by the `KERAS_BACKEND` environment variable, which the coordinator sets before this process
imports Keras. Training is what a Keras user runs: `compile(optimizer, loss (from logits), metric)`
and `fit(x, y, batch_size, epochs=repeats, shuffle=True, verbose=0)` on in-memory NumPy arrays of
`steps * batch_size` examples, so an epoch is `steps` batches, as in the conv1dx epoch.
"""

from __future__ import annotations

from experiments.throughput import peer_spec, synthetic


def build_layer(keras, spec: dict):
    """One `keras.layers` layer from a resolved conv1dx layer spec (Bidirectional recursively)."""
    kind, kwargs = peer_spec.layer_kind(spec)
    if kind == "Bidirectional":
        kwargs["layer"] = build_layer(keras, kwargs["layer"])
    layer_class = getattr(keras.layers, kind, None)
    if layer_class is None:
        raise ValueError(f"keras.layers has no {kind}.")
    return layer_class(**kwargs)


def build_model(keras, workload: dict):
    """The compiled `keras.Sequential` of the workload (see the module docstring)."""
    dtype = "int32" if workload["x_dtype"].startswith("int") else "float32"
    layers = [keras.Input(shape=tuple(workload["input_shape"]), dtype=dtype)]
    layers += [build_layer(keras, spec) for spec in workload["layers"]]
    model = keras.Sequential(layers)
    name, args = peer_spec.optimizer_spec(workload["optimizer"])
    optimizer = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                 "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[name](**args)
    loss_name = peer_spec.loss_kind(workload["loss"])
    losses = keras.losses
    loss = {"binary_crossentropy": lambda: losses.BinaryCrossentropy(from_logits=True),
            "sparse_categorical_crossentropy":
                lambda: losses.SparseCategoricalCrossentropy(from_logits=True),
            "categorical_crossentropy": lambda: losses.CategoricalCrossentropy(from_logits=True),
            "mean_absolute_error": losses.MeanAbsoluteError,
            "mean_squared_error": losses.MeanSquaredError}[loss_name]()
    if workload["task"] != "classification":
        metric = keras.metrics.MeanAbsoluteError()
    elif loss_name == "binary_crossentropy":
        metric = keras.metrics.BinaryAccuracy(threshold=0.0)  # logits
    else:
        metric = keras.metrics.SparseCategoricalAccuracy()
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric])
    return model


class KerasRunner:
    """`run(repeats)` fits `repeats` epochs of `steps` batches; returns the examples trained on."""

    def __init__(self, workload: dict):
        import keras

        self.keras = keras
        keras.utils.set_random_seed(workload["seed"])
        self.model = build_model(keras, workload)
        self.x, self.y = synthetic.peer_arrays(workload, seed=workload["seed"])
        self.batch_size = int(workload["batch_size"])

    def run(self, repeats: int) -> int:
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=repeats, shuffle=True,
                       verbose=0)
        return repeats * len(self.x)

    def info(self) -> dict:
        info = {"version": self.keras.__version__, "backend": self.keras.backend.backend()}
        if info["backend"] == "tensorflow":
            import tensorflow as tf

            info["tensorflow"] = tf.__version__
            info["threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
        elif info["backend"] == "jax":
            import jax

            info["jax"] = jax.__version__
        return info
