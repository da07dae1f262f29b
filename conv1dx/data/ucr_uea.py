"""UCR/UEA time series classification archive: any dataset by name, as a TFDS ArrayRecord builder.

Sources, first found wins (no network unless all local ones are missing and ``download=True``):
  1. ``<archives>/<Name>_TRAIN.ts`` + ``_TEST.ts``, or ``<archives>/<Name>/<Name>_TRAIN.ts`` +
     ``_TEST.ts``;
  2. the copy shipped inside conv1dx (``conv1dx/data/resources/<Name>/``; BasicMotions);
  3. ``<archives>/<Name>.zip``, else downloaded from
     ``https://www.timeseriesclassification.com/aeon-toolkit/<Name>.zip`` (no known checksum).

Loaded splits: ``x`` ``(N, T, C)`` float32, right-padded with 0 to the longest series of either
split, ``lengths`` ``(N,)`` int32 for variable-length sets (None when all series have length T),
``y`` ``(N,)`` int32 class ids in the order of the train file's ``@classLabel`` header line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from conv1dx.data import tfds_io
from conv1dx.data.archives import (
    ArchiveSpec,
    DatasetError,
    archives_dir,
    resolve_archive,
    safe_extract,
)
from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.ts_format import TsData, pad_series, read_ts

URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"
RESOURCES = Path(__file__).with_name("resources")
CITATION = (
    "Hoang Anh Dau et al., 'The UCR Time Series Archive', IEEE/CAA Journal of Automatica "
    "Sinica 6(6), 2019; Anthony Bagnall et al., 'The UEA multivariate time series "
    "classification archive, 2018', arXiv:1811.00075."
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"ucr_uea: name must be a dataset name of the archive such as 'BasicMotions' "
            f"(letters, digits, '_' or '-'), got {name!r}."
        )
    return name


def _pair_in(folder: Path, name: str) -> tuple[Path, Path] | None:
    train, test = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
    return (train, test) if train.is_file() and test.is_file() else None


def locate_ts_files(
    name: str, archives=None, *, download: bool = True, data_dir=None
) -> tuple[Path, Path, str]:
    """``(train_path, test_path, source)`` of dataset ``name``; see the module docstring."""
    _check_name(name)
    folder = archives_dir(archives)
    places = ([folder, folder / name] if folder is not None else []) + [RESOURCES / name]
    for place in places:
        if pair := _pair_in(place, name):
            return pair[0], pair[1], str(place)
    spec = ArchiveSpec(filename=f"{name}.zip", url=URL.format(name=name))
    try:
        zip_path = resolve_archive(spec, archives, download=download, data_dir_override=data_dir)
    except DatasetError as err:
        looked = ", ".join(str(p) for p in places)
        raise DatasetError(
            f"{name}_TRAIN.ts and {name}_TEST.ts: not in {looked}; and {err} Also check the "
            f"spelling of {name!r} (names are case-sensitive)."
        ) from None
    extracted = safe_extract(zip_path, zip_path.parent / "extracted" / name)
    for train in sorted(extracted.rglob(f"{name}_TRAIN.ts")):
        if pair := _pair_in(train.parent, name):
            return pair[0], pair[1], str(zip_path)
    raise DatasetError(
        f"{zip_path}: holds no {name}_TRAIN.ts and {name}_TEST.ts. Fix: check that the zip is the "
        f"archive's {name}.zip, or place the two .ts files in $CONV1DX_ARCHIVES."
    )


def _align_labels(train: TsData, test: TsData, test_path: Path) -> np.ndarray:
    """Test label ids re-expressed in the train header's class order."""
    order = {label: i for i, label in enumerate(train.header.class_labels)}
    missing = [label for label in test.header.class_labels if label not in order]
    if missing:
        raise DatasetError(
            f"{test_path}: class labels {missing} are not in the train file's @classLabel line "
            f"{list(order)}. Fix: use a matching _TRAIN/_TEST pair."
        )
    remap = np.asarray([order[label] for label in test.header.class_labels], dtype=np.int32)
    return remap[test.labels]


class UcrUeaBuilder(tfds_io.ArrayRecordBuilder, skip_registration=True):
    """One UCR/UEA dataset per config (config name = dataset name); series stored unpadded."""

    name = "conv1dx_ucr_uea"
    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = "A dataset of the UCR/UEA time series classification archive, from its .ts files."
    HOMEPAGE = "https://www.timeseriesclassification.com"
    CITATION = CITATION

    def _features(self) -> tfds.features.FeaturesDict:
        return tfds.features.FeaturesDict(
            {
                # (T_i, C); BYTES encoding allows both axes to vary between datasets and cases.
                "x": tfds.features.Tensor(
                    shape=(None, None), dtype=np.float32, encoding=tfds.features.Encoding.BYTES
                ),
                "label": tfds.features.Scalar(dtype=np.int32),
            }
        )

    def _split_generators(self, dl_manager):
        name = self.builder_config.name
        train_path, test_path, source = locate_ts_files(
            name, self.archives, download=self.download, data_dir=self.data_dir_root
        )
        train, test = read_ts(train_path), read_ts(test_path)
        if train.num_channels != test.num_channels:
            raise DatasetError(
                f"{test_path}: has {test.num_channels} dimensions but {train_path} has "
                f"{train.num_channels}. Fix: use a matching _TRAIN/_TEST pair."
            )
        test_labels = _align_labels(train, test, test_path)
        self.info.metadata.update(
            class_names=list(train.header.class_labels),
            problem_name=train.header.problem_name or name,
            source=source,
        )
        return {
            "train": self._generate_examples(train.series, train.labels),
            "test": self._generate_examples(test.series, test_labels),
        }

    def _generate_examples(self, series, labels):
        for i, (case_TxC, label) in enumerate(zip(series, labels, strict=True)):
            yield i, {"x": case_TxC, "label": int(label)}


def load_ucr_uea(
    name: str = "BasicMotions",
    *,
    fill_missing: float | None = 0.0,
    data_dir: str | os.PathLike | None = None,
    archives: str | os.PathLike | None = None,
    download: bool = True,
) -> ArrayDataset:
    """Load UCR/UEA dataset ``name`` (e.g. ``"GunPoint"``, ``"BasicMotions"``) as an ArrayDataset.

    Splits ``train``/``test`` (the archive's fixed split): ``x`` ``(N, T, C)`` float32, ``y``
    ``(N,)`` int32, ``lengths`` ``(N,)`` int32 for variable-length sets. Missing values (``?``/NaN)
    are replaced by ``fill_missing`` (``None`` keeps NaN); ``metadata["num_missing"]`` counts them
    per split. Prepared once per ``data_dir``; later calls only read the ArrayRecord files.
    """
    _check_name(name)
    config = tfds.core.BuilderConfig(name=name, description=f"UCR/UEA dataset {name}")
    builder = tfds_io.make_builder(
        UcrUeaBuilder, data_dir=data_dir, config=config, archives=archives, download=download
    )
    reused = tfds_io.prepare(builder)
    raw = {split: tfds_io.read_split(builder, split) for split in ("train", "test")}
    steps = max(max(len(case) for case in r["x"]) for r in raw.values())
    splits, num_missing, variable = {}, {}, False
    for split, r in raw.items():
        x_NxTxC, lengths_N = pad_series(list(r["x"]), steps)
        variable |= bool((lengths_N != steps).any())
        nan_mask = np.isnan(x_NxTxC)
        num_missing[split] = int(nan_mask.sum())
        if fill_missing is not None:
            x_NxTxC[nan_mask] = fill_missing
        splits[split] = Split(x=x_NxTxC, y=r["label"].astype(np.int32), lengths=lengths_N)
    if not variable:
        for split in splits.values():
            split.lengths = None
    class_names = tuple(tfds_io.metadata_value(builder, "class_names"))
    return ArrayDataset(
        name=f"ucr_uea/{name}",
        splits=splits,
        num_classes=len(class_names),
        class_names=class_names,
        task="classification",
        metadata={
            "source": builder.info.metadata.get("source", ""),
            "citation": CITATION,
            "equal_length": not variable,
            "num_missing": num_missing,
            **tfds_io.prepared_info(builder, reused),
        },
    )
