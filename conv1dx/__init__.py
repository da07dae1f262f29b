"""conv1dx: 1D convolutional networks on sequences with JAX, Flax NNX, optax and Hydra."""

__version__ = "0.1.0"
