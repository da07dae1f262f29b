"""Command line: ``python -m conv1dx.data list`` and ``... prepare <name> [key=value ...]``.

Examples::

    python -m conv1dx.data prepare synthetic num_train=500
    python -m conv1dx.data prepare ucr_uea/GunPoint --archives ../shared/datasets/ucr_uea
    python -m conv1dx.data prepare imdb num_words=10000 maxlen=500 --archives ../shared/datasets

``prepare`` builds the dataset once per data dir (a second run reuses it and says so), then prints
its splits, shapes, dtypes and class balance. Exit status 1 with a one-line message on a dataset
error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from conv1dx.data import registry
from conv1dx.data.archives import DatasetError


def parse_value(text: str):
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"``/``"True"`` -> True, ``"null"``/``"None"`` -> None,
    anything else stays a string."""
    aliases = {"True": True, "False": False, "None": None}
    if text in aliases:
        return aliases[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(pairs: list[str]) -> dict:
    """``["num_words=100", "padding=post"]`` -> ``{"num_words": 100, "padding": "post"}``."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"option {pair!r} must look like key=value (e.g. maxlen=200).")
        options[key] = parse_value(value)
    return options


def _list() -> int:
    for name in registry.names():
        try:
            doc = (registry.get_loader(name).__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
        except (ValueError, ImportError) as err:
            summary = f"(unavailable: {err})"
        print(f"{name:10s} {summary}")
    print("ucr_uea takes name=<Dataset> or the form ucr_uea/<Dataset>, e.g. ucr_uea/BasicMotions.")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    options = parse_options(args.options)
    options.update(data_dir=args.data_dir, archives=args.archives, download=not args.no_download)
    start = time.perf_counter()
    dataset = registry.load(args.name, **options)
    seconds = time.perf_counter() - start
    path = dataset.metadata.get("prepared_path")
    if path is None:
        print(f"{dataset.name}: generated in memory in {seconds:.2f} s (nothing to cache)")
    elif dataset.metadata.get("reused_cache"):
        print(f"{dataset.name}: reusing prepared dataset at {path} (loaded in {seconds:.2f} s)")
    else:
        print(f"{dataset.name}: prepared dataset at {path} in {seconds:.2f} s")
    print(dataset.describe())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conv1dx.data", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the registered datasets")
    prep = commands.add_parser("prepare", help="prepare a dataset and print its splits")
    prep.add_argument("name", help="dataset name, e.g. synthetic, imdb, ucr_uea/BasicMotions")
    prep.add_argument("options", nargs="*", help="loader options as key=value")
    prep.add_argument(
        "--data-dir", default=None, help="prepared datasets folder ($CONV1DX_DATA_DIR)"
    )
    prep.add_argument(
        "--archives", default=None, help="downloaded archives folder ($CONV1DX_ARCHIVES)"
    )
    prep.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    args = parser.parse_args(argv)
    try:
        return _list() if args.command == "list" else _prepare(args)
    except (DatasetError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
