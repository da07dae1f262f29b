"""The three tiny convolution-recovery examples of seed article 002 ("1D convolution in NumPy").

A Conv1D layer without bias, kernel size 2, ``padding="valid"``, fitted on one example should
recover the kernel that produced the targets. Keras kernel layout ``kernel_KxCxF`` (taps K, input
channels C, filters F); output ``y[t, f] = sum_k sum_c x[t + k, c] * kernel[k, c, f]``
(cross-correlation).

  * ``single``:   x ``[0, 3, 4, 5]`` (4, 1) -> y ``[6, 11, 14]`` (3, 1), kernel ``[1, 2]``;
  * ``channels``: x ``[[0, 0], [3, 6], [4, 7], [5, 8]]`` (4, 2) -> y ``[30, 57, 67]`` (3, 1), kernel
    rows ``[1, 3]`` and ``[2, 4]`` (3 equations, 4 unknowns: other kernels fit too, as the article
    found);
  * ``filters``:  x ``[0, 3, 4, 5]`` (4, 1) -> y ``[[6, 12], [11, 25], [14, 32]]`` (3, 2), filters
    ``[1, 2]`` and ``[3, 4]``.
"""

from __future__ import annotations

import numpy as np

from conv1dx.data.dataset import ArrayDataset, Split

EXAMPLES = ("single", "channels", "filters")
SOURCE = "Jussi Huotari, '1D convolution in NumPy and Keras' (blog post), toy examples"


def _example(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(x_TxC, y_TxF, kernel_KxCxF, unique)`` of the article's example ``name``."""
    if name == "single":
        x = np.array([0, 3, 4, 5], dtype=np.float32).reshape(4, 1)
        y = np.array([6, 11, 14], dtype=np.float32).reshape(3, 1)
        kernel = np.array([1, 2], dtype=np.float32).reshape(2, 1, 1)
        return x, y, kernel, True
    if name == "channels":
        x = np.array([[0, 0], [3, 6], [4, 7], [5, 8]], dtype=np.float32)
        y = np.array([30, 57, 67], dtype=np.float32).reshape(3, 1)
        kernel = np.array([[1, 3], [2, 4]], dtype=np.float32).reshape(2, 2, 1)
        return x, y, kernel, False
    if name == "filters":
        x = np.array([0, 3, 4, 5], dtype=np.float32).reshape(4, 1)
        y = np.array([[6, 12], [11, 25], [14, 32]], dtype=np.float32)
        kernel = np.array([[1, 3], [2, 4]], dtype=np.float32).reshape(2, 1, 2)
        return x, y, kernel, True
    raise ValueError(f"example must be one of {EXAMPLES}, got {name!r}.")


def valid_conv1d(x_NxTxC: np.ndarray, kernel_KxCxF: np.ndarray) -> np.ndarray:
    """Keras Conv1D, stride 1, ``padding="valid"``, no bias: ``(N, T, C) -> (N, T - K + 1, F)``."""
    taps = kernel_KxCxF.shape[0]
    windows_NxTxCxK = np.lib.stride_tricks.sliding_window_view(x_NxTxC, taps, axis=1)
    return np.einsum("ntck,kcf->ntf", windows_NxTxCxK, kernel_KxCxF).astype(np.float32)


def load_toy(
    example: str = "single",
    *,
    num_train: int = 0,
    num_test: int = 0,
    seed: int = 0,
    data_dir=None,
    archives=None,
    download: bool = True,
) -> ArrayDataset:
    """One article example as a regression ArrayDataset, optionally with more seeded examples.

    ``train`` holds the article's example first, then ``num_train`` generated ones; ``test`` (only
    when ``num_test > 0``) holds generated ones. Generated inputs are integers 0..9 with the
    article's shape ``(4, C)``; targets come from the same true kernel. ``x`` ``(N, 4, C)`` float32,
    ``y`` ``(N, 3, F)`` float32; ``metadata["kernel_KxCxF"]`` is the true kernel,
    ``metadata["kernel_unique"]`` whether the data determine it.
    ``data_dir``/``archives``/``download`` are accepted for a uniform loader signature.
    """
    for arg, value in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{arg} must be a non-negative int, got {value!r}.")
    x_TxC, y_TxF, kernel_KxCxF, unique = _example(example)
    rng = np.random.default_rng(seed)

    def generated(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.integers(0, 10, size=(n, *x_TxC.shape)).astype(np.float32)
        return x, valid_conv1d(x, kernel_KxCxF)

    x_train, y_train = generated(num_train)
    splits = {
        "train": Split(
            x=np.concatenate([x_TxC[None], x_train]), y=np.concatenate([y_TxF[None], y_train])
        )
    }
    if num_test:
        x_test, y_test = generated(num_test)
        splits["test"] = Split(x=x_test, y=y_test)
    return ArrayDataset(
        name=f"toy/{example}",
        splits=splits,
        num_classes=None,
        task="regression",
        metadata={
            "kernel_KxCxF": kernel_KxCxF,
            "kernel_unique": unique,
            "kernel_size": kernel_KxCxF.shape[0],
            "filters": kernel_KxCxF.shape[2],
            "source": SOURCE,
        },
    )
