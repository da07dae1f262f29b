"""Keras-compatible word tokenizer and ``pad_sequences`` for text classification (IMDB).

Text to words, as ``keras.preprocessing.text.text_to_word_sequence`` with defaults, plus removal of
the HTML line breaks ``<br />`` found in IMDB reviews: lowercase, replace ``<br />`` and every
character of ``filters`` by a space, split on whitespace.

Ids, as a Keras ``Tokenizer(num_words, oov_token=...)``: 0 = padding, 1 = out-of-vocabulary, then
the words by decreasing frequency in the texts given to :meth:`Tokenizer.fit` (ties: first seen
first, as Keras' stable sort does), keeping only ids ``< num_words`` so that
``Embedding(num_words, d)`` covers every id.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
PAD_ID = 0
OOV_ID = 1
FIRST_WORD_ID = 2
_FORMAT = "conv1dx.Tokenizer/1"


def _check_mode(argument: str, value: str) -> None:
    if value not in ("pre", "post"):
        raise ValueError(f"{argument} must be 'pre' or 'post' (Keras semantics), got {value!r}.")


class Tokenizer:
    """Word-level tokenizer with Keras semantics; fit on training texts only.

    Args:
      num_words: ids are kept below this (vocabulary = the ``num_words - 2`` most frequent words);
        ``None`` keeps every word seen in fit.
      filters: characters replaced by spaces (Keras' default set).
      lower: lowercase before filtering.
      strip_html_breaks: replace ``<br />`` by a space first (IMDB reviews contain them).
    """

    def __init__(
        self,
        num_words: int | None = 10000,
        *,
        filters: str = KERAS_FILTERS,
        lower: bool = True,
        strip_html_breaks: bool = True,
    ) -> None:
        if num_words is not None and (
            not isinstance(num_words, int) or num_words < FIRST_WORD_ID + 1
        ):
            raise ValueError(
                f"num_words must be an int >= 3 (ids 0 and 1 are padding and out-of-vocabulary) "
                f"or None, got {num_words!r}."
            )
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.strip_html_breaks = strip_html_breaks
        self._table = str.maketrans({c: " " for c in filters})
        self.words: tuple[str, ...] = ()
        self.word_index: dict[str, int] = {}
        self.document_count = 0

    @property
    def fitted(self) -> bool:
        return self.document_count > 0

    @property
    def vocab_size(self) -> int:
        """Embedding table size: ``num_words`` (``len(words) + 2`` when num_words is None)."""
        return self.num_words if self.num_words is not None else len(self.words) + FIRST_WORD_ID

    def split(self, text: str) -> list[str]:
        """The words of ``text`` (lowercased, ``<br />`` and filter characters removed)."""
        if self.lower:
            text = text.lower()
        if self.strip_html_breaks:
            text = text.replace("<br />", " ")
        return text.translate(self._table).split()

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from ``texts`` (the training split only); returns self."""
        counts: Counter[str] = Counter()
        n = 0
        for text in texts:
            counts.update(self.split(text))
            n += 1
        if n == 0:
            raise ValueError("Tokenizer.fit needs at least one text.")
        # Counter keeps first-seen order and sorted() is stable: ties stay first-seen first (Keras).
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        limit = None if self.num_words is None else self.num_words - FIRST_WORD_ID
        self._set_words(tuple(word for word, _ in ranked[:limit]))
        self.document_count = n
        return self

    def _set_words(self, words: Sequence[str]) -> None:
        self.words = tuple(words)
        self.word_index = {w: i + FIRST_WORD_ID for i, w in enumerate(self.words)}

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ValueError(
                "Tokenizer is not fitted: call fit(train_texts) or Tokenizer.load(path)."
            )

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text as a list of ids (unknown words -> 1)."""
        self._require_fitted()
        index = self.word_index
        return [[index.get(w, OOV_ID) for w in self.split(t)] for t in texts]

    def sequences_to_texts(self, sequences: Iterable[Sequence[int]]) -> list[str]:
        """Inverse of texts_to_sequences up to normalization: ids -> words (padding dropped)."""
        self._require_fitted()
        vocab = ("", "<oov>") + self.words
        return [" ".join(vocab[i] for i in seq if i != PAD_ID) for seq in sequences]

    def to_dict(self) -> dict:
        """JSON-serializable state (settings and the vocabulary in id order)."""
        self._require_fitted()
        return {
            "format": _FORMAT,
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "strip_html_breaks": self.strip_html_breaks,
            "document_count": self.document_count,
            "words": list(self.words),
        }

    @classmethod
    def from_dict(cls, state: dict) -> Tokenizer:
        if state.get("format") != _FORMAT:
            raise ValueError(f"Not a saved conv1dx Tokenizer (format {state.get('format')!r}).")
        tok = cls(
            state["num_words"],
            filters=state["filters"],
            lower=state["lower"],
            strip_html_breaks=state["strip_html_breaks"],
        )
        tok._set_words(state["words"])
        tok.document_count = int(state["document_count"])
        return tok

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer as JSON to ``path``; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    maxlen: int | None = None,
    *,
    padding: str = "pre",
    truncating: str = "pre",
    value: int = PAD_ID,
    dtype=np.int32,
) -> np.ndarray:
    """``(N, maxlen)`` array of the sequences, as Keras ``pad_sequences`` (defaults "pre"/"pre").

    Sequences longer than ``maxlen`` lose their start (``truncating="pre"``) or end ("post");
    shorter ones get ``value`` before (``padding="pre"``) or after ("post"). ``maxlen=None``: the
    longest length.
    """
    _check_mode("padding", padding)
    _check_mode("truncating", truncating)
    lengths = [len(s) for s in sequences]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    if maxlen < 0:
        raise ValueError(f"maxlen must be >= 0, got {maxlen}.")
    out_NxT = np.full((len(sequences), maxlen), value, dtype=dtype)
    if maxlen == 0:
        return out_NxT
    for i, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        if padding == "pre":
            out_NxT[i, maxlen - len(kept) :] = kept
        else:
            out_NxT[i, : len(kept)] = kept
    return out_NxT
