"""Tests of the Keras-style tokenizer, pad_sequences and the IMDB builder (fixture, real data)."""

from __future__ import annotations

import io
import string
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conv1dx.data import imdb, tfds_io
from conv1dx.data.archives import DatasetError
from conv1dx.data.imdb import load_imdb, read_reviews_archive
from conv1dx.data.tokenizer import KERAS_FILTERS, Tokenizer, pad_sequences

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# ---------------------------------------------------------------- tokenizer


def test_split_lowercases_strips_breaks_and_keras_filters():
    tok = Tokenizer(10)
    assert tok.split("Great movie!<br /><br />It's GREAT,really.") == [
        "great",
        "movie",
        "it's",
        "great",
        "really",
    ]
    # Every Keras default filter character separates words; the apostrophe is not a filter.
    assert set(KERAS_FILTERS) == (set(string.punctuation) - {"'"}) | {"\t", "\n"}
    assert len(set(KERAS_FILTERS)) == len(KERAS_FILTERS)
    words = tok.split("a" + "b".join(KERAS_FILTERS) + "c")
    assert words == ["a"] + ["b"] * (len(KERAS_FILTERS) - 1) + ["c"]


def test_fit_keeps_top_words_by_frequency_with_first_seen_ties():
    texts = ["b a c", "c d a", "a e e c"]
    counts = Counter(w for t in texts for w in t.split())  # a:3 c:3 e:2 b:1 d:1
    tok = Tokenizer(num_words=5).fit(texts)  # ids 2, 3, 4
    # a and c tie at 3: a was seen first (Keras' stable sort keeps first-seen order).
    assert tok.words == ("a", "c", "e") and counts["a"] == counts["c"] == 3
    assert tok.word_index == {"a": 2, "c": 3, "e": 4}
    assert tok.vocab_size == 5
    seqs = tok.texts_to_sequences(["a b c d e zzz"])
    assert seqs == [[2, 1, 3, 1, 4, 1]]  # b, d (outside the top 3) and zzz -> OOV id 1
    assert max(max(s) for s in seqs) < 5


def test_unlimited_vocabulary_and_inverse():
    tok = Tokenizer(num_words=None).fit(["x y y", "z"])
    assert tok.words == ("y", "x", "z") and tok.vocab_size == 5
    assert tok.sequences_to_texts([[0, 0, 2, 3, 1]]) == ["y x <oov>"]


def test_tokenizer_errors():
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(2)
    with pytest.raises(ValueError, match="not fitted"):
        Tokenizer(10).texts_to_sequences(["a"])
    with pytest.raises(ValueError, match="at least one"):
        Tokenizer(10).fit([])


def test_save_load_round_trip(tmp_path):
    tok = Tokenizer(6).fit(["the cat sat on the mat", "the dog"])
    path = tok.save(tmp_path / "run" / "tokenizer.json")
    back = Tokenizer.load(path)
    assert back.words == tok.words and back.num_words == 6 and back.document_count == 2
    texts = ["The mat, the DOG and a bird"]
    assert back.texts_to_sequences(texts) == tok.texts_to_sequences(texts)
    with pytest.raises(ValueError, match="Not a saved"):
        Tokenizer.from_dict({"format": "other"})


def test_pad_sequences_keras_semantics():
    seqs = [[1, 2, 3, 4, 5], [6, 7], []]
    np.testing.assert_array_equal(pad_sequences(seqs, 3), [[3, 4, 5], [0, 6, 7], [0, 0, 0]])
    np.testing.assert_array_equal(
        pad_sequences(seqs, 3, padding="post", truncating="post"), [[1, 2, 3], [6, 7, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        pad_sequences(seqs, 3, padding="post"), [[3, 4, 5], [6, 7, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        pad_sequences(seqs, 3, truncating="post"), [[1, 2, 3], [0, 6, 7], [0, 0, 0]]
    )
    full = pad_sequences(seqs)  # maxlen = longest
    assert full.shape == (3, 5) and full.dtype == np.int32
    np.testing.assert_array_equal(full[1], [0, 0, 0, 6, 7])
    with pytest.raises(ValueError, match="padding"):
        pad_sequences(seqs, 3, padding="middle")


# ------------------------------------------------------- fixture archive in the original layout

# (split, label, id, rating, text)
REVIEWS = [
    ("train", "pos", 0, 9, "Great movie, great cast!<br /><br />Loved it."),
    ("train", "pos", 1, 10, "A great, great film."),
    ("train", "neg", 0, 1, "Bad movie. Bad bad acting."),
    ("train", "neg", 1, 3, "Boring film, bad plot."),
    ("train", "neg", 2, 4, "Not great."),
    ("test", "pos", 0, 8, "great fun, superb superb superb"),
    ("test", "neg", 0, 2, "bad and boring"),
]


def _fixture_archive(path: Path) -> Path:
    def add(tar, name, data: bytes):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, "aclImdb/README", b"readme")
        add(tar, "aclImdb/imdb.vocab", b"the\nand\n")
        for split, label, rid, rating, text in reversed(
            REVIEWS
        ):  # order in the tar must not matter
            add(tar, f"aclImdb/{split}/{label}/{rid}_{rating}.txt", text.encode())
        add(tar, "aclImdb/train/unsup/0_0.txt", b"unlabelled superb superb superb superb")
        add(tar, "aclImdb/train/urls_pos.txt", b"http://example\n")
    return path


def test_read_reviews_archive_orders_by_label_then_id(tmp_path):
    reviews = read_reviews_archive(_fixture_archive(tmp_path / "a.tar.gz"))
    train = reviews["train"]
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(train.review_ids, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(train.ratings, [1, 3, 4, 9, 10])
    assert train.texts[3] == REVIEWS[0][4] and len(reviews["test"].texts) == 2


def _expected_ids(num_words: int, maxlen: int) -> dict[str, np.ndarray]:
    """Word ids computed from the definitions with plain Python (train-only vocabulary, pre/pre)."""

    def words(text):
        text = text.lower().replace("<br />", " ")
        return "".join(" " if c in KERAS_FILTERS else c for c in text).split()

    ordered = {
        s: sorted((r for r in REVIEWS if r[0] == s), key=lambda r: (r[1] != "neg", r[2]))
        for s in ("train", "test")
    }
    counts, first_seen = {}, {}
    for r in ordered["train"]:
        for w in words(r[4]):
            counts[w] = counts.get(w, 0) + 1
            first_seen.setdefault(w, len(first_seen))
    vocab = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))[: num_words - 2]
    index = {w: i + 2 for i, w in enumerate(vocab)}
    out = {}
    for split, rows in ordered.items():
        x = np.zeros((len(rows), maxlen), np.int32)
        for i, r in enumerate(rows):
            ids = [index.get(w, 1) for w in words(r[4])][-maxlen:]
            x[i, maxlen - len(ids) :] = ids
        out[split] = x
    return out


def test_load_imdb_fixture_end_to_end(tmp_path, monkeypatch):
    archive = _fixture_archive(tmp_path / "fixture.tar.gz")
    ds = load_imdb(num_words=6, maxlen=5, archive_file=archive, data_dir=tmp_path / "data",
                   shuffle_seed=None)
    expected = _expected_ids(6, 5)
    for split in ("train", "test"):
        np.testing.assert_array_equal(ds[split].x, expected[split], err_msg=split)
    np.testing.assert_array_equal(ds["train"].y, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(ds["train"].extras["rating"], [1, 3, 4, 9, 10])
    np.testing.assert_array_equal(ds["test"].extras["num_tokens"], [3, 5])
    assert ds.metadata["vocab_size"] == 6 and ds.input_shape == (5,)
    # Fitted on train only: "superb" (3x in test, 4x in unsup) is out of vocabulary.
    tok = ds.metadata["tokenizer"]
    assert "superb" not in tok.word_index and tok.document_count == 5
    assert ds.metadata["tokenizer_json"]["words"] == list(tok.words)
    assert ds.metadata["reused_cache"] is False

    def must_not_run(self, *args):
        raise AssertionError("a prepared dataset must not be regenerated")

    monkeypatch.setattr(imdb.ImdbBuilder, "_split_generators", must_not_run)
    again = load_imdb(num_words=6, maxlen=5, archive_file=archive, data_dir=tmp_path / "data",
                      shuffle_seed=None)
    assert again.metadata["reused_cache"] is True
    np.testing.assert_array_equal(again["test"].x, ds["test"].x)


def test_default_order_is_a_fixed_shuffle_of_the_same_reviews(tmp_path):
    archive = _fixture_archive(tmp_path / "fixture.tar.gz")
    kwargs = dict(num_words=6, maxlen=5, archive_file=archive, data_dir=tmp_path / "data")
    ordered = load_imdb(**kwargs, shuffle_seed=None)["train"]
    shuffled = load_imdb(**kwargs)["train"]
    again = load_imdb(**kwargs)["train"]
    np.testing.assert_array_equal(shuffled.x, again.x)
    assert not np.array_equal(shuffled.extras["review_id"] * 2 + shuffled.y,
                              ordered.extras["review_id"] * 2 + ordered.y)
    key = lambda split: sorted(zip(split.y.tolist(), split.extras["review_id"].tolist(), strict=True))  # noqa: E731
    assert key(shuffled) == key(ordered)


def test_post_padding_config_is_a_separate_prepared_copy(tmp_path):
    archive = _fixture_archive(tmp_path / "fixture.tar.gz")
    post = load_imdb(num_words=6, maxlen=5, padding="post", archive_file=archive, data_dir=tmp_path,
                     shuffle_seed=None)
    pre = load_imdb(num_words=6, maxlen=5, archive_file=archive, data_dir=tmp_path,
                    shuffle_seed=None)
    assert post.metadata["prepared_path"] != pre.metadata["prepared_path"]
    # Same ids, only the padding side differs: "bad and boring" -> 3 tokens.
    np.testing.assert_array_equal(post["test"].x[0, :3], pre["test"].x[0, 2:])
    assert not post["test"].x[0, 3:].any()


def test_fixture_with_wrong_checksum_is_refused_as_the_real_archive(tmp_path):
    (tmp_path / "arch").mkdir()
    _fixture_archive(tmp_path / "arch" / "aclImdb_v1.tar.gz")
    with pytest.raises(DatasetError, match="truncated or wrong file|checksum"):
        load_imdb(data_dir=tmp_path / "data", archives=tmp_path / "arch", download=False)


def test_corrupt_and_missing_archives(tmp_path):
    archive = _fixture_archive(tmp_path / "fixture.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_reviews_archive(archive)
    with pytest.raises(DatasetError, match="aclImdb_v1.tar.gz"):
        load_imdb(data_dir=tmp_path / "d", archives=tmp_path / "empty", download=False)
    with pytest.raises(ValueError, match="maxlen"):
        load_imdb(maxlen=0, data_dir=tmp_path)
    with pytest.raises(ValueError, match="truncating"):
        load_imdb(truncating="both", data_dir=tmp_path)


class _CatalogStandIn(tfds_io.ArrayRecordBuilder, skip_registration=True):
    """Writes what a TF-equipped machine's ``imdb_reviews/plain_text`` (ArrayRecord) would hold."""

    name = "imdb_reviews"
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="plain_text")]

    def _features(self):
        return tfds.features.FeaturesDict(
            {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples([("good good film", 1), ("bad film", 0)]),
            "test": self._generate_examples([("good bad ugly", 1)]),
        }

    def _generate_examples(self, rows):
        for i, (text, label) in enumerate(rows):
            yield i, {"text": text, "label": label}


def test_source_tfds_reads_a_prepared_catalog_copy(tmp_path):
    with pytest.raises(DatasetError, match="needs TensorFlow"):
        load_imdb(source="tfds", data_dir=tmp_path)
    tfds_io.prepare(tfds_io.make_builder(_CatalogStandIn, data_dir=tmp_path, config="plain_text"))
    ds = load_imdb(num_words=5, maxlen=4, source="tfds", data_dir=tmp_path, shuffle_seed=None)
    # Train vocabulary: good (2), film (2) -> ids 2, 3; bad -> 4.
    np.testing.assert_array_equal(ds["train"].x, [[0, 2, 2, 3], [0, 0, 4, 3]])
    np.testing.assert_array_equal(ds["test"].x, [[0, 2, 4, 1]])
    np.testing.assert_array_equal(ds["train"].y, [1, 0])
    assert ds.metadata["source"] == "tfds:imdb_reviews/plain_text"


# ---------------------------------------------------------------- the real archive (MANIFEST.md)


@pytest.mark.slow
@pytest.mark.real_data
def test_real_imdb_archive(tmp_path):
    if not (SHARED / "aclImdb_v1.tar.gz").is_file():
        pytest.skip(f"{SHARED / 'aclImdb_v1.tar.gz'} is absent")
    start = time.perf_counter()
    ds = load_imdb(data_dir=tmp_path, archives=SHARED, download=False)
    prepare_s = time.perf_counter() - start
    for split in ("train", "test"):
        s = ds[split]
        assert s.x.shape == (25_000, 500) and s.x.dtype == np.int32
        np.testing.assert_array_equal(np.bincount(s.y), [12_500, 12_500])
        assert 0 <= s.x.min() and s.x.max() < 10_000
    # Rating counts from MANIFEST.md.
    train = ds["train"]
    pos = Counter(train.extras["rating"][train.y == 1].tolist())
    assert pos == {7: 2_496, 8: 3_009, 9: 2_263, 10: 4_732}
    test = ds["test"]
    assert Counter(test.extras["rating"][test.y == 0].tolist()) == {
        1: 5_022,
        2: 2_302,
        3: 2_541,
        4: 2_635,
    }
    assert ds.metadata["vocab_size"] == 10_000 and len(ds.metadata["tokenizer"].words) == 9_998
    start = time.perf_counter()
    again = load_imdb(data_dir=tmp_path, archives=SHARED, download=False)
    load_s = time.perf_counter() - start
    assert again.metadata["reused_cache"] and np.array_equal(again["train"].x, train.x)
    print(f"IMDB prepare {prepare_s:.1f} s, reload {load_s:.1f} s")
    assert prepare_s < 60, f"preparing IMDB took {prepare_s:.0f} s (budget 60 s)"
