"""The persistent compilation cache: a re-run loads its compiled programs, same numbers."""

import contextlib
import os

import jax
import pytest

from conv1dx.train import train
from conv1dx.train.compilation_cache import use_compilation_cache
from tests.train_helpers import tiny_config


@contextlib.contextmanager
def cache_events():
    """Counts of JAX's persistent-cache hit and miss events recorded inside the block."""
    counts = {"/jax/compilation_cache/cache_hits": 0, "/jax/compilation_cache/cache_misses": 0}

    def listen(event, **kwargs):
        if event in counts:
            counts[event] += 1

    jax.monitoring.register_event_listener(listen)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_listener(listen)


@pytest.fixture(autouse=True)
def restore_suite_cache():
    yield
    use_compilation_cache(None)  # back to JAX's settings, then to the suite's shared folder
    use_compilation_cache(os.environ.get("CONV1DX_COMPILATION_CACHE"))


@pytest.mark.slow
def test_a_rerun_loads_its_programs_from_the_cache_with_identical_results(tmp_path):
    cache = tmp_path / "cache"
    overrides = ("trainer.epochs=2", "trainer.validation_split=0.25",
                 f"paths.compilation_cache_dir={cache}")
    with cache_events() as first_events:
        first = train(tiny_config(tmp_path / "first", *overrides))
    entries = sorted(cache.iterdir())
    assert any("conv1dx_train_epoch" in path.name for path in entries)
    assert first_events["/jax/compilation_cache/cache_misses"] > 0
    with cache_events() as second_events:
        second = train(tiny_config(tmp_path / "second", *overrides))
    assert second_events["/jax/compilation_cache/cache_hits"] > 0
    assert second_events["/jax/compilation_cache/cache_misses"] == 0
    assert sorted(cache.iterdir()) == entries  # nothing new was compiled
    assert _numbers(first) == _numbers(second)


def _numbers(report: dict) -> dict:
    """The report without its timings and run directory."""
    return {key: value for key, value in report.items() if "second" not in key and key != "run_dir"}


@pytest.mark.slow
def test_null_hands_the_cache_back_to_jax_settings(tmp_path, monkeypatch):
    """In a process where a user set JAX's own cache folder: two folders, then null. JAX ends with
    the user's folder and JAX's own compile-time threshold."""
    from conv1dx.train import compilation_cache

    monkeypatch.setattr(compilation_cache, "_active", None)  # as in a fresh process
    monkeypatch.setattr(compilation_cache, "_jax_own", None)
    own_dir = str(tmp_path / "users_own")
    jax.config.update("jax_compilation_cache_dir", own_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    use_compilation_cache(None)  # nothing enabled by conv1dx yet: JAX's settings untouched
    assert jax.config.jax_compilation_cache_dir == own_dir
    for folder in ("a", "b"):
        assert use_compilation_cache(tmp_path / folder) == tmp_path / folder
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / folder)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    train(tiny_config(tmp_path, "trainer.epochs=1", "paths.compilation_cache_dir=null"))
    assert jax.config.jax_compilation_cache_dir == own_dir
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0


@pytest.mark.parametrize("spelled", ["", "null", "None"])
def test_an_empty_or_null_environment_value_means_no_folder(spelled):
    assert use_compilation_cache(spelled) is None


def test_the_default_folder_is_under_the_log_dir_unless_an_environment_variable_moves_it(
        tmp_path, monkeypatch):
    from conv1dx.train import compose_config

    monkeypatch.delenv("CONV1DX_COMPILATION_CACHE")
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    assert compose_config([f"paths.log_dir={tmp_path}"]).paths.compilation_cache_dir == \
        f"{tmp_path}/compilation_cache"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/jax/own")
    assert compose_config([]).paths.compilation_cache_dir == "/jax/own"
    monkeypatch.setenv("CONV1DX_COMPILATION_CACHE", "/conv1dx/own")
    assert compose_config([]).paths.compilation_cache_dir == "/conv1dx/own"


def test_a_folder_that_cannot_be_created_names_the_setting(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"paths.compilation_cache_dir=.*a_file/cache.*null"):
        use_compilation_cache(blocker / "cache")
