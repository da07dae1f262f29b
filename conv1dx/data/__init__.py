"""Datasets for conv1dx: TFDS ArrayRecord builders (no TensorFlow) loaded as NumPy ArrayDatasets.

``conv1dx.data.load(name, **kwargs)`` loads any registered dataset (``conv1dx.data.names()``); the
command line ``python -m conv1dx.data prepare <name>`` prepares one and prints its splits.
"""

from conv1dx.data.archives import ArchiveSpec, DatasetError, archives_dir, data_dir, resolve_archive
from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.registry import get_loader, load, names

__all__ = [
    "ArchiveSpec",
    "ArrayDataset",
    "DatasetError",
    "Split",
    "archives_dir",
    "data_dir",
    "get_loader",
    "load",
    "names",
    "resolve_archive",
]
