"""TFDS without TensorFlow: builder base writing ArrayRecord, prepare-once, bulk read to NumPy.

How it works (TFDS 4.9.x, no ``tensorflow`` installed):
  * a ``tfds.core.GeneratorBasedBuilder`` subclass with ``file_format="array_record"`` serializes
    each example with TFDS' own NumPy/protobuf code and ``download_and_prepare()`` writes
    ``<data_dir>/<name>/<config>/<version>/*.array_record-*`` plus ``dataset_info.json``;
  * ``builder.as_data_source(split)`` gives random access to the decoded examples (dicts of NumPy
    arrays); :func:`read_split` fetches all records in one ``__getitems__`` call and stacks them per
    feature.

A prepared dataset is found again by ``builder.is_prepared()`` and never regenerated; delete its
folder (printed by the CLI) to force a rebuild. Subclasses keep examples in generation order
(``disable_shuffling=True``) so row order is reproducible.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from conv1dx.data.archives import ArchiveSpec, DatasetError, resolve_archive
from conv1dx.data.archives import data_dir as resolve_data_dir

FILE_FORMAT = "array_record"


class ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of conv1dx builders: ArrayRecord output, generation order kept, runtime source options.

    Subclasses define ``name``, ``VERSION``, ``_features()`` (a ``tfds.features.FeaturesDict``),
    ``_split_generators`` and ``_generate_examples``; optionally ``DESCRIPTION``, ``HOMEPAGE`` and
    ``CITATION``. ``archives`` and ``download`` say where raw files come from; they are not part of
    the dataset's identity (two sources of the same data share one prepared copy). Facts computed
    while generating (a vocabulary, class names) go into ``self.info.metadata``, saved beside the
    records.
    """

    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike | None = None,
        config: Any = None,
        archives: str | os.PathLike | None = None,
        download: bool = True,
        **kwargs: Any,
    ) -> None:
        self.archives = archives
        self.download = download
        super().__init__(
            data_dir=os.fspath(resolve_data_dir(data_dir)),
            config=config,
            file_format=FILE_FORMAT,
            **kwargs,
        )

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        # TFDS 4.9.10's default needs the `importlib_resources` backport (declared for Python < 3.9
        # only) for classes defined inside a package; the source file is all it needs to know.
        try:
            return epath.Path(inspect.getfile(cls))
        except (TypeError, OSError):
            return None

    def _features(self) -> tfds.features.FeaturesDict:
        raise NotImplementedError

    def resolve_archive(self, spec: ArchiveSpec) -> Path:
        """``archives.resolve_archive`` with this builder's options; downloads (when no archives
        folder is configured) go to ``<this builder's data_dir>/downloads``."""
        return resolve_archive(
            spec, self.archives, download=self.download, data_dir_override=self.data_dir_root
        )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=self._features(),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
        )


class _DropAbslNoise(logging.Filter):
    """Hides TFDS' routine warnings about custom configs and not-yet-prepared folders."""

    NOISE = ("Using custom data configuration", "has no dataset_info.json")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.NOISE)


@contextlib.contextmanager
def _quiet_tfds():
    absl_logger = logging.getLogger("absl")
    noise = _DropAbslNoise()
    absl_logger.addFilter(noise)
    try:
        yield
    finally:
        absl_logger.removeFilter(noise)


def make_builder(builder_cls: type[ArrayRecordBuilder], **kwargs: Any) -> ArrayRecordBuilder:
    """``builder_cls(**kwargs)`` minus TFDS' routine warnings (custom config, not prepared)."""
    with _quiet_tfds():
        return builder_cls(**kwargs)


def prepare(builder: tfds.core.DatasetBuilder) -> bool:
    """Generate ``builder``'s ArrayRecord files unless already there; return True when reused.

    TFDS writes into a temporary folder and renames it when complete, so an interrupted run leaves
    no half-prepared dataset behind; when two processes prepare the same dataset at once, the one
    whose rename fails reuses the other's copy.
    """
    with _quiet_tfds():
        if builder.is_prepared():
            return True
        try:
            builder.download_and_prepare(
                file_format=FILE_FORMAT,
                download_dir=os.fspath(Path(builder.data_dir_root) / "downloads"),
            )
        except BaseException:
            if builder.is_prepared():
                # Another process (e.g. a parallel sweep job) finished first and TFDS' final
                # rename onto its folder failed here: use that copy.
                builder.info.read_from_directory(builder.data_path)
                return True
            _remove_empty_parents(Path(builder.data_path), stop=Path(builder.data_dir_root))
            raise
    return False


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """Delete ``path`` and its parents up to (excluding) ``stop`` while they are empty folders."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:  # not empty or not there
            if path.exists():
                return
        path = path.parent


def _fixed_numeric_features(builder: tfds.core.DatasetBuilder) -> dict[str, tuple] | None:
    """``{name: (shape, dtype, proto list field)}`` when every top-level feature is a fixed-shape
    numeric ``Tensor``/``Scalar``/``ClassLabel`` stored unencoded (so decoding is the identity);
    None otherwise."""
    features = builder.info.features
    out = {}
    for key, feature in features.items():
        if (
            not isinstance(feature, tfds.features.Tensor)
            or getattr(feature, "_encoding", None) != tfds.features.Encoding.NONE
        ):
            return None
        info = feature.get_serialized_info()
        dtype = np.dtype(info.np_dtype)
        if any(d is None for d in info.shape) or dtype.kind not in "biuf":
            return None
        field = "float_list" if dtype.kind == "f" else "int64_list"
        out[key] = (tuple(info.shape), np.dtype(feature.np_dtype), field)
    return out


def _read_fixed(
    source, n: int, spec: dict[str, tuple], names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Fast path: parse raw tf.train.Example records once and copy each feature's value list."""
    from tensorflow_datasets.proto import tf_example_pb2

    records = source.data_source.__getitems__(range(n))
    protos = [tf_example_pb2.Example.FromString(r).features.feature for r in records]
    out = {}
    for key in names:
        shape, dtype, field = spec[key]
        wire = np.float32 if field == "float_list" else np.int64
        if shape == ():
            flat = np.array([getattr(p[key], field).value[0] for p in protos], dtype=wire)
        else:
            flat = np.concatenate(
                [np.asarray(getattr(p[key], field).value, dtype=wire) for p in protos]
            )
        out[key] = flat.reshape((n, *shape)).astype(dtype, copy=False)
    return out


def read_split(
    builder: tfds.core.DatasetBuilder, split: str, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """All examples of ``split`` as ``{feature: stacked array}`` (leading axis N, generation order).

    Features whose examples differ in shape (variable-length series) come back as a list of arrays.
    ``keys`` restricts which features are returned. When every feature is a fixed-shape numeric
    tensor, the records are parsed in one pass without TFDS' per-example decoding (about 3x faster;
    the result is identical, see tests/test_data_core.py).
    """
    source = builder.as_data_source(split)
    n = len(source)
    if n == 0:
        return {}
    names = list(keys) if keys is not None else list(builder.info.features.keys())
    fixed = _fixed_numeric_features(builder)
    if fixed is not None:
        return _read_fixed(source, n, fixed, names)
    examples = source.__getitems__(range(n))
    out: dict[str, Any] = {}
    for key in names:
        values = [np.asarray(ex[key]) for ex in examples]
        if all(v.shape == values[0].shape for v in values):
            out[key] = np.stack(values)
        else:
            out[key] = values
    return out


def prepared_info(builder: tfds.core.DatasetBuilder, reused: bool) -> dict[str, Any]:
    """Metadata entries describing where the prepared copy lives and whether it was reused."""
    return {"prepared_path": os.fspath(builder.data_path), "reused_cache": reused}


def metadata_value(builder: tfds.core.DatasetBuilder, key: str) -> Any:
    """``builder.info.metadata[key]``, or a DatasetError explaining how to rebuild a stale copy."""
    metadata = builder.info.metadata or {}
    if key not in metadata:
        raise DatasetError(
            f"{builder.data_path}: prepared dataset lacks metadata {key!r} (written by an older "
            f"version?). Fix: delete {builder.data_path} and prepare it again."
        )
    return metadata[key]
