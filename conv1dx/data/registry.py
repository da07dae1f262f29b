"""Dataset names -> loader functions, imported lazily so one missing module never breaks the others.

``load("synthetic", num_train=500)`` calls ``conv1dx.data.synthetic.load_synthetic(num_train=500)``;
``load("ucr_uea/GunPoint")`` is shorthand for ``load("ucr_uea", name="GunPoint")``.
Each loader accepts ``data_dir``, ``archives`` and ``download`` and returns an ``ArrayDataset``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import MappingProxyType

from conv1dx.data.dataset import ArrayDataset

LOADERS = MappingProxyType(
    {
        "ucr_uea": "conv1dx.data.ucr_uea:load_ucr_uea",
        "imdb": "conv1dx.data.imdb:load_imdb",
        "toy": "conv1dx.data.toy:load_toy",
        "synthetic": "conv1dx.data.synthetic:load_synthetic",
        "uci_har": "conv1dx.data.uci_har:load_uci_har",
        "wisdm": "conv1dx.data.wisdm:load_wisdm",
        "jena": "conv1dx.data.jena:load_jena",
    }
)
# Datasets whose ``name=`` argument may be given after a slash ("ucr_uea/GunPoint", "toy/channels").
_SUBNAME_ARG = MappingProxyType({"ucr_uea": "name", "toy": "example"})


def names() -> tuple[str, ...]:
    """Registered dataset names (``ucr_uea`` takes ``name=`` or ``ucr_uea/<Name>``)."""
    return tuple(LOADERS)


def split_name(name: str) -> tuple[str, dict]:
    """``"ucr_uea/GunPoint"`` -> ``("ucr_uea", {"name": "GunPoint"})``; plain names pass through."""
    base, _, sub = name.partition("/")
    if not sub:
        return name, {}
    if base not in _SUBNAME_ARG:
        raise ValueError(
            f"dataset {name!r}: only {sorted(_SUBNAME_ARG)} accept '<dataset>/<name>'."
        )
    return base, {_SUBNAME_ARG[base]: sub}


def get_loader(name: str) -> Callable[..., ArrayDataset]:
    """The loader function registered as ``name`` (imported on first use)."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)}.")
    module_name, _, function = LOADERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ValueError(
            f"dataset {name!r} is registered but {module_name} is not installed."
        ) from err
    return getattr(module, function)


def load(dataset: str, /, **kwargs) -> ArrayDataset:
    """Load ``dataset`` (see :func:`names`) with the loader's keyword arguments."""
    base, implied = split_name(dataset)
    clash = set(implied) & set(kwargs)
    if clash:
        raise ValueError(
            f"dataset {dataset!r}: {sorted(clash)} given both in the name and as argument."
        )
    return get_loader(base)(**implied, **kwargs)
