"""Seeded synthetic sequence classification: which frequency does the noisy burst oscillate at?

Each example is ``seq_len`` steps of Gaussian noise (std ``noise``) plus one windowed sine burst of
``burst_len`` steps at a random offset, with random phase and amplitude in [0.8, 1.2]. Class ``k``'s
burst has frequency ``(k + 1) * freq_step`` cycles per step, so the label is decided by a local
pattern whose position varies: a natural task for Conv1D + global pooling (seed article 004: input
(100, 1), 10 classes).
"""

from __future__ import annotations

import numpy as np

from conv1dx.data.dataset import ArrayDataset, Split


def class_frequencies(num_classes: int, freq_step: float) -> np.ndarray:
    """``(K,)`` burst frequency of each class in cycles per step."""
    return (np.arange(num_classes) + 1) * freq_step


def make_examples(
    rng: np.random.Generator,
    labels_N: np.ndarray,
    *,
    seq_len: int,
    burst_len: int,
    freqs_K: np.ndarray,
    noise: float,
) -> np.ndarray:
    """``(N, seq_len, 1)`` float32 sequences for the given class ids ``labels_N``."""
    n = len(labels_N)
    steps_W = np.arange(burst_len)
    envelope_W = np.hanning(burst_len)
    phase_N = rng.uniform(0, 2 * np.pi, size=n)
    amplitude_N = rng.uniform(0.8, 1.2, size=n)
    offset_N = rng.integers(0, seq_len - burst_len + 1, size=n)
    burst_NxW = (
        amplitude_N[:, None]
        * envelope_W[None, :]
        * np.sin(2 * np.pi * freqs_K[labels_N][:, None] * steps_W[None, :] + phase_N[:, None])
    )
    x_NxT = noise * rng.standard_normal((n, seq_len))
    rows_NxW = np.repeat(np.arange(n)[:, None], burst_len, axis=1)
    x_NxT[rows_NxW, offset_N[:, None] + steps_W[None, :]] += burst_NxW
    return x_NxT[:, :, None].astype(np.float32)


def load_synthetic(
    num_train: int = 2000,
    num_test: int = 500,
    *,
    seq_len: int = 100,
    num_classes: int = 10,
    burst_len: int = 32,
    freq_step: float = 0.03,
    noise: float = 0.5,
    seed: int = 0,
    data_dir=None,
    archives=None,
    download: bool = True,
) -> ArrayDataset:
    """Splits ``train``/``test``: ``x`` ``(N, seq_len, 1)`` float32, ``y`` ``(N,)`` int32, balanced.

    Deterministic for a given ``seed`` (train and test use independent streams). Frequencies must
    stay below the Nyquist limit 0.5. ``data_dir``/``archives``/``download`` are accepted for a
    uniform loader signature; generation takes milliseconds, so nothing is cached.
    """
    for arg, value in (
        ("num_train", num_train),
        ("num_test", num_test),
        ("num_classes", num_classes),
    ):
        if not isinstance(value, int) or value < (2 if arg == "num_classes" else 0):
            raise ValueError(
                f"{arg} must be an int >= {2 if arg == 'num_classes' else 0}, got {value!r}."
            )
    if not 1 <= burst_len <= seq_len:
        raise ValueError(f"burst_len must lie in [1, seq_len={seq_len}], got {burst_len}.")
    freqs_K = class_frequencies(num_classes, freq_step)
    if freq_step <= 0 or freqs_K[-1] >= 0.5:
        raise ValueError(
            f"freq_step must be > 0 with num_classes * freq_step < 0.5 (Nyquist), got "
            f"{num_classes} * {freq_step} = {freqs_K[-1]:.3f}."
        )
    splits = {}
    for index, (split, n) in enumerate((("train", num_train), ("test", num_test))):
        rng = np.random.default_rng([seed, index])
        labels_N = rng.permutation(np.arange(n) % num_classes).astype(np.int32)
        x_NxTx1 = make_examples(
            rng, labels_N, seq_len=seq_len, burst_len=burst_len, freqs_K=freqs_K, noise=noise
        )
        splits[split] = Split(x=x_NxTx1, y=labels_N)
    return ArrayDataset(
        name="synthetic",
        splits=splits,
        num_classes=num_classes,
        class_names=tuple(f"{f:.3f}cyc/step" for f in freqs_K),
        task="classification",
        metadata={
            "frequencies": freqs_K,
            "noise": noise,
            "burst_len": burst_len,
            "seed": seed,
            "source": "conv1dx.data.synthetic (seeded generator)",
        },
    )
