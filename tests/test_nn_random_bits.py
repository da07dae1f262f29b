"""The unrolled Threefry-2x32 behind dropout masks: known answers, JAX's stream, and uniformity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.nn import random_bits
from conv1dx.nn.dropout import keep_mask

# Known-answer vectors of Threefry-2x32 with 20 rounds (Random123's kat_vectors):
# (key0, key1, counter0, counter1) -> (out0, out1).
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344, 0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize(("inputs", "expected"), KNOWN_ANSWERS)
def test_threefry_matches_the_known_answers(inputs, expected):
    key0, key1, x0, x1 = (jnp.uint32(v) for v in inputs)
    out = random_bits.threefry2x32(key0, key1, jnp.asarray([x0]), jnp.asarray([x1]))
    assert [int(o[0]) for o in out] == list(expected)


def test_threefry_gives_the_words_jax_random_bits_is_built_from():
    # With partitionable Threefry (JAX's default), bits(key, (n,), uint32)[i] = out0 ^ out1 of
    # the hash of counter (0, i).
    key = jax.random.key(1234)
    data = jax.random.key_data(key)
    n = 1000
    high, low = random_bits.threefry2x32(data[0], data[1], jnp.zeros(n, jnp.uint32),
                                         jnp.arange(n, dtype=jnp.uint32))
    with jax.threefry_partitionable(True):
        expected = jax.random.bits(key, (n,), jnp.uint32)
    np.testing.assert_array_equal(np.asarray(high ^ low), np.asarray(expected))


def test_uniform_uint16_uses_four_distinct_lanes_of_each_hash():
    key = jax.random.key(7)
    data = np.asarray(jax.random.key_data(key))
    draws = np.asarray(random_bits.uniform_uint16(key, (3, 5)))  # 15 entries -> 4 hashes
    high, low = random_bits.threefry2x32(jnp.uint32(data[0]), jnp.uint32(data[1]),
                                         jnp.zeros(4, jnp.uint32), jnp.arange(4, dtype=jnp.uint32))
    high, low = np.asarray(high).astype(np.int64), np.asarray(low).astype(np.int64)
    lanes = np.concatenate([high % 65536, high // 65536, low % 65536, low // 65536])
    np.testing.assert_array_equal(draws.ravel(), lanes[:15])


def test_uniform_uint16_is_uniform_and_key_dependent():
    draws = np.asarray(random_bits.uniform_uint16(jax.random.key(0), (400, 250)))
    assert draws.min() >= 0 and draws.max() < 65536
    counts = np.bincount(draws.ravel() >> 12, minlength=16)  # 16 bins of 6,250 expected
    chi2 = np.sum((counts - 6250.0) ** 2 / 6250.0)
    assert chi2 < 37.7  # the 0.999 quantile of chi-square with 15 degrees of freedom
    other = np.asarray(random_bits.uniform_uint16(jax.random.key(1), (400, 250)))
    assert np.mean(draws == other) < 0.001
    # Neighbouring entries (different lanes of one hash or different hashes) are uncorrelated.
    flat = draws.ravel().astype(np.float64)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.02


def test_uniform_uint16_accepts_raw_and_other_keys():
    raw = np.asarray(random_bits.uniform_uint16(jax.random.PRNGKey(3), (10,)))
    typed = np.asarray(random_bits.uniform_uint16(jax.random.key(3), (10,)))
    np.testing.assert_array_equal(raw, typed)
    rbg = np.asarray(random_bits.uniform_uint16(jax.random.key(3, impl="rbg"), (1000,)))
    assert rbg.max() < 65536 and len(np.unique(rbg)) > 900


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9])
def test_keep_mask_drops_at_the_rate(rate):
    keep = np.asarray(keep_mask(jax.random.key(5), rate, (500, 200)))
    # Binomial standard deviation of the kept fraction is below 0.0022 for these sizes.
    assert abs(keep.mean() - (1 - rate)) < 0.01
