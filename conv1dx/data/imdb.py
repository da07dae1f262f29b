"""IMDB movie reviews (Maas et al., 2011): 25,000/25,000 labelled reviews as padded word ids.

Source: ``aclImdb_v1.tar.gz`` in its original layout
(``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``), read straight from the archive without
extracting it. It is looked up in the archives folder (``$CONV1DX_ARCHIVES``) and downloaded from
Stanford only if absent; accepted are the original file (84,125,825 bytes) and the 56,743,643-byte
repack kept in the shared datasets folder (same reviews, without the derived ``.feat`` files).

The TFDS builder (``conv1dx_imdb``, one config per tokenization setting) fits a Keras-style
:class:`~conv1dx.data.tokenizer.Tokenizer` on the TRAIN split only, stores the padded ids as
ArrayRecord files and the tokenizer in the dataset's metadata, so later loads only read arrays.

Why not the TFDS catalog ``imdb_reviews``: with TFDS 4.9.10 and no TensorFlow it cannot be prepared
(its ``dl_manager.iter_archive`` opens files with ``tf.io.gfile``); ``source="tfds"`` reads the
texts from a copy already prepared in ArrayRecord format in ``data_dir`` (e.g. on a machine with
TensorFlow).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
import zlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from conv1dx.data import tfds_io
from conv1dx.data.archives import ArchiveSpec, DatasetError, sha256sum
from conv1dx.data.archives import data_dir as resolve_data_dir
from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.tokenizer import Tokenizer, pad_sequences

IMDB_ARCHIVE = ArchiveSpec(
    filename="aclImdb_v1.tar.gz",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    size=84_125_825,
    # The repack in the shared datasets folder: identical review files, no derived .feat files.
    also_accept=((56_743_643, "e8a989b93e80d1e3ec6b204759c08b2be5761668516022ac1cdf681512746b00"),),
)
CLASS_NAMES = ("neg", "pos")
CITATION = (
    "Andrew L. Maas, Raymond E. Daly, Peter T. Pham, Dan Huang, Andrew Y. Ng and "
    "Christopher Potts. "
    "2011. Learning Word Vectors for Sentiment Analysis. ACL-HLT 2011, pages 142-150."
)
_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/([^/]+)$")
_FILENAME = re.compile(r"^(\d+)_(\d+)\.txt$")


@dataclasses.dataclass(frozen=True)
class Reviews:
    """Labelled reviews of one split ordered by (label, review id): all ``neg``, then ``pos``."""

    texts: tuple[str, ...]
    labels: np.ndarray  # (N,) int32, 0 = neg, 1 = pos
    review_ids: np.ndarray  # (N,) int32, the <id> of <id>_<rating>.txt (-1 when unknown)
    ratings: np.ndarray  # (N,) int32, the 1-10 star rating (-1 when unknown)


def _reviews(rows: list[tuple[int, int, int, str]]) -> Reviews:
    rows.sort(key=lambda r: (r[0], r[1]))
    return Reviews(
        texts=tuple(r[3] for r in rows),
        labels=np.asarray([r[0] for r in rows], dtype=np.int32),
        review_ids=np.asarray([r[1] for r in rows], dtype=np.int32),
        ratings=np.asarray([r[2] for r in rows], dtype=np.int32),
    )


def read_reviews_archive(path: str | os.PathLike) -> dict[str, Reviews]:
    """The labelled train/test reviews of an ``aclImdb`` tar(.gz), streamed without extraction."""
    rows: dict[str, list] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                match = _MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue
                split, label, filename = match.groups()
                name_match = _FILENAME.match(filename)
                if not name_match:
                    raise DatasetError(
                        f"{path}: member {member.name!r} is not named <id>_<rating>.txt as in the "
                        "original aclImdb layout. Fix: use the original aclImdb_v1.tar.gz."
                    )
                text = tar.extractfile(member).read().decode("utf-8", errors="replace")
                rows[split].append(
                    (CLASS_NAMES.index(label), int(name_match[1]), int(name_match[2]), text)
                )
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DatasetError(
            f"{path}: corrupt or truncated archive ({type(err).__name__}: {err}). "
            "Fix: delete it and download or copy aclImdb_v1.tar.gz again."
        ) from err
    for split, split_rows in rows.items():
        if not split_rows:
            raise DatasetError(
                f"{path}: no reviews under aclImdb/{split}/pos or aclImdb/{split}/neg. "
                "Fix: use the original aclImdb_v1.tar.gz layout."
            )
    return {split: _reviews(split_rows) for split, split_rows in rows.items()}


def read_reviews_catalog(data_dir: str | os.PathLike | None = None) -> dict[str, Reviews]:
    """Train/test texts of a TFDS catalog ``imdb_reviews/plain_text`` prepared as ArrayRecord."""
    root = resolve_data_dir(data_dir)
    try:
        builder = tfds.builder("imdb_reviews/plain_text", data_dir=os.fspath(root))
        prepared = builder.is_prepared()
    except Exception as err:  # noqa: BLE001 - any TFDS failure means "not usable here"
        prepared, builder = False, err
    file_format = getattr(builder.info.file_format, "value", None) if prepared else None
    if file_format != tfds_io.FILE_FORMAT:
        raise DatasetError(
            f"{root}/imdb_reviews/plain_text: no TFDS catalog copy in ArrayRecord format. "
            "Preparing it needs TensorFlow (TFDS' iter_archive uses tf.io.gfile). Fix: use "
            "source='archive' (the default), which reads aclImdb_v1.tar.gz without TensorFlow."
        )
    out = {}
    for split in ("train", "test"):
        examples = tfds_io.read_split(builder, split, keys=("text", "label"))
        texts = tuple(
            t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)
            for t in examples["text"]
        )
        unknown = np.full(len(texts), -1, dtype=np.int32)
        out[split] = Reviews(texts, examples["label"].astype(np.int32), unknown, unknown)
    return out


@dataclasses.dataclass(eq=False)
class ImdbConfig(tfds.core.BuilderConfig):
    """Tokenization setting; ``archive_file``/``source`` choose the text source (see load_imdb)."""

    num_words: int | None = 10000
    maxlen: int = 500
    padding: str = "pre"
    truncating: str = "pre"
    source: str = "archive"
    archive_file: str | None = None


class ImdbBuilder(tfds_io.ArrayRecordBuilder, skip_registration=True):
    """IMDB reviews as padded word ids, tokenizer fitted on train (saved in ``info.metadata``)."""

    name = "conv1dx_imdb"
    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = "IMDB Large Movie Review Dataset v1.0, word ids of a Keras-style tokenizer."
    HOMEPAGE = "https://ai.stanford.edu/~amaas/data/sentiment/"
    CITATION = CITATION

    def _features(self) -> tfds.features.FeaturesDict:
        return tfds.features.FeaturesDict(
            {
                "tokens": tfds.features.Tensor(shape=(self.builder_config.maxlen,), dtype=np.int32),
                "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                "rating": tfds.features.Scalar(dtype=np.int32),
                "review_id": tfds.features.Scalar(dtype=np.int32),
                "num_tokens": tfds.features.Scalar(dtype=np.int32),
            }
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        if cfg.source == "tfds":
            reviews, source = (
                read_reviews_catalog(self.data_dir_root),
                "tfds:imdb_reviews/plain_text",
            )
        else:
            path = (
                Path(cfg.archive_file) if cfg.archive_file else self.resolve_archive(IMDB_ARCHIVE)
            )
            reviews, source = read_reviews_archive(path), str(path)
        tokenizer = Tokenizer(cfg.num_words).fit(reviews["train"].texts)
        self.info.metadata.update(tokenizer=tokenizer.to_dict(), source=source)
        return {
            split: self._generate_examples(r, tokenizer.texts_to_sequences(r.texts))
            for split, r in reviews.items()
        }

    def _generate_examples(self, reviews: Reviews, sequences):
        cfg = self.builder_config
        tokens_NxT = pad_sequences(
            sequences, cfg.maxlen, padding=cfg.padding, truncating=cfg.truncating
        )
        for i, seq in enumerate(sequences):
            yield (
                i,
                {
                    "tokens": tokens_NxT[i],
                    "label": int(reviews.labels[i]),
                    "rating": int(reviews.ratings[i]),
                    "review_id": int(reviews.review_ids[i]),
                    "num_tokens": len(seq),
                },
            )


def _config(num_words, maxlen, padding, truncating, source, archive_file) -> ImdbConfig:
    Tokenizer(num_words)  # validates num_words
    pad_sequences([], 0, padding=padding, truncating=truncating)  # validates the modes
    if not isinstance(maxlen, int) or maxlen < 1:
        raise ValueError(f"maxlen must be a positive int, got {maxlen!r}.")
    if source not in ("archive", "tfds"):
        raise ValueError(f"source must be 'archive' or 'tfds', got {source!r}.")
    name = f"words{num_words or 'all'}_len{maxlen}_{padding}_{truncating}"
    if source == "tfds":
        name += "_tfdscatalog"
    if archive_file is not None:
        archive_file = os.fspath(Path(archive_file).expanduser().resolve())
        if not Path(archive_file).is_file():
            raise DatasetError(f"{archive_file}: archive_file does not exist. Fix: check the path.")
        name += f"_custom{sha256sum(archive_file)[:12]}"
    return ImdbConfig(
        name=name,
        num_words=num_words,
        maxlen=maxlen,
        padding=padding,
        truncating=truncating,
        source=source,
        archive_file=archive_file,
        description=f"IMDB word ids: {name}",
    )


def load_imdb(
    num_words: int | None = 10000,
    maxlen: int = 500,
    padding: str = "pre",
    truncating: str = "pre",
    *,
    source: str = "archive",
    archive_file: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    archives: str | os.PathLike | None = None,
    download: bool = True,
    shuffle_seed: int | None = 113,
) -> ArrayDataset:
    """IMDB as ``x`` ``(N, maxlen)`` int32 ids (0 pad, 1 OOV, < num_words), ``y`` ``(N,)`` int32.

    Splits ``train`` and ``test`` (25,000 each, 12,500 per class) in a fixed order shuffled with
    ``shuffle_seed`` (None keeps the archive's order: negatives then positives by review id).
    Extras per example: ``rating`` (1-10), ``review_id``, ``num_tokens`` (before padding/truncation).
    ``metadata`` holds ``tokenizer`` (a fitted Tokenizer; ``.save(path)`` stores it with a run),
    ``tokenizer_json`` and ``vocab_size`` (= num_words, the Embedding input size). ``archive_file``
    uses that tar.gz (original layout, checksum not verified) instead of ``aclImdb_v1.tar.gz``; it is
    prepared under its own config name so it never mixes with the real one.
    """
    config = _config(num_words, maxlen, padding, truncating, source, archive_file)
    builder = tfds_io.make_builder(
        ImdbBuilder, data_dir=data_dir, config=config, archives=archives, download=download
    )
    reused = tfds_io.prepare(builder)
    tokenizer_json = tfds_io.metadata_value(builder, "tokenizer")
    tokenizer = Tokenizer.from_dict(tokenizer_json)
    splits = {}
    for split in ("train", "test"):
        raw = tfds_io.read_split(builder, split)
        ordered = Split(
            x=raw["tokens"].astype(np.int32),
            y=raw["label"].astype(np.int32),
            extras={
                key: raw[key].astype(np.int32) for key in ("rating", "review_id", "num_tokens")
            },
        )
        # The archive lists all negative reviews, then all positive ones. Like Keras' imdb.load_data
        # (seed 113), mix them once with a fixed seed, so a held-out tail (validation_split) is balanced.
        order = np.random.default_rng(shuffle_seed).permutation(len(ordered))
        splits[split] = ordered.subset(order) if shuffle_seed is not None else ordered
    return ArrayDataset(
        name="imdb",
        splits=splits,
        num_classes=2,
        class_names=CLASS_NAMES,
        task="classification",
        metadata={
            "tokenizer": tokenizer,
            "tokenizer_json": tokenizer_json,
            "vocab_size": tokenizer.vocab_size,
            "maxlen": maxlen,
            "source": builder.info.metadata.get("source", ""),
            "citation": CITATION,
            **tfds_io.prepared_info(builder, reused),
        },
    )
