"""Every experiment file composes and trains for an epoch on small data in its real format.

UCI HAR, WISDM and Jena run on fixture archives written in the original formats; IMDB on a fixture
archive in the aclImdb layout; the toy and synthetic sets are generated. Architectures are the documents'.
"""

import io
import tarfile
from pathlib import Path

import pytest

from conv1dx import nn
from conv1dx.train import compose_config, train
from tests.data_fixtures.jena import write_jena_zip
from tests.data_fixtures.uci_har import write_uci_har_zip
from tests.data_fixtures.wisdm import write_wisdm_tar
from tests.train_helpers import FAST

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


def _imdb_archive(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_aclImdb.tar.gz"
    words = ["great", "awful", "plot", "acting", "boring", "superb", "film", "movie"]
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for label, rating in (("pos", 9), ("neg", 2)):
                for rid in range(12):
                    text = " ".join(words[(rid + k + (label == "pos")) % 8] for k in range(30)).encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{rid}_{rating}.txt")
                    info.size = len(text)
                    tar.addfile(info, io.BytesIO(text))
    return path


def _overrides(name: str, tmp_path: Path) -> list[str]:
    archives = tmp_path / "archives"
    if name == "har":
        write_uci_har_zip(archives)
        return []
    if name == "wisdm":
        write_wisdm_tar(archives)
        return ["trainer.batch_size=8", "trainer.validation_split=0.25"]
    if name.startswith("jena"):
        write_jena_zip(archives, num_rows=9000)
        return ["dataset.train=[0,3000]", "dataset.val=[3001,5000]", "dataset.test=[5001,null]",
                "trainer.steps_per_epoch=2", "trainer.batch_size=16", "trainer.eval_batch_size=64"]
    if name == "imdb":
        return [f"+dataset.archive_file={_imdb_archive(archives)}", "dataset.num_words=20",
                "dataset.maxlen=40", "trainer.batch_size=8", "model.kernel_size=3"]
    if name == "sequence_classifier":
        return ["dataset.num_train=64", "dataset.num_test=32"]
    return []


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.slow
def test_experiment_trains_one_epoch(name, tmp_path):
    overrides = [f"+experiment={name}", "trainer.epochs=1", f"paths.output_dir={tmp_path / 'run'}",
                 f"paths.data_dir={tmp_path / 'data'}", f"paths.archives={tmp_path / 'archives'}", *FAST,
                 *_overrides(name, tmp_path)]
    report = train(compose_config(overrides))
    assert report["epochs_run"] == 1
    assert report["per_seed"], report
    if name.startswith("jena"):  # the common-sense baseline sits next to the model's MAE
        assert report["val_baseline_mae"] > 0 and report["test_baseline_mae_physical"] > 0
        assert "test_mae_physical" in report


def _model(name, input_shape, **facts):
    from omegaconf import OmegaConf

    from conv1dx.train.facts import dataset_facts

    cfg = compose_config([f"model={name}"])
    with dataset_facts(facts):
        layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    return nn.build_model(layers, input_shape)


@pytest.mark.parametrize("name,input_shape,facts,total", [
    ("imdb_convnet", (500,), {"vocab_size": 10000}, 1_315_937),
    ("wisdm_convnet", (80, 3), {"num_classes": 6}, 520_486),
    ("jena_conv_gru", (None, 14), {}, 13_697),
])
def test_document_parameter_counts(name, input_shape, facts, total):
    """The Keras summaries printed in the source documents."""
    assert nn.count_params(_model(name, input_shape, **facts)) == total


def test_imdb_summary_matches_the_keras_table():
    """Layer by layer, the table printed in Deep Learning with Python for the IMDB convnet."""
    text = nn.summary(_model("imdb_convnet", (500,), vocab_size=10000), print_fn=None)
    rows = [line.split() for line in text.splitlines() if line.split() and line.split()[-1][0].isdigit()
            and "params" not in line]
    assert [(r[0], " ".join(r[2:-1]), r[-1]) for r in rows] == [
        ("embedding", "(None, 500, 128)", "1,280,000"),
        ("conv1d", "(None, 494, 32)", "28,704"),
        ("max_pooling1d", "(None, 98, 32)", "0"),
        ("conv1d_1", "(None, 92, 32)", "7,200"),
        ("global_max_pooling1d", "(None, 32)", "0"),
        ("dense", "(None, 1)", "33"),
    ]
    assert "Total params: 1,315,937" in text and "Trainable params: 1,315,937" in text


SHARED_UCR = Path(__file__).parents[2] / "shared" / "datasets" / "ucr_uea"


@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_UCR.is_dir(), reason=f"{SHARED_UCR} is absent")
@pytest.mark.slow
def test_variable_length_ucr_set_trains_with_masks(tmp_path):
    """JapaneseVowels (12 channels, variable length): padding masks reach the masked global pooling."""
    report = train(compose_config([
        "dataset=ucr_uea", "dataset.name=JapaneseVowels", "trainer.epochs=15", "model.dropout=0.0",
        f"paths.archives={SHARED_UCR}", f"paths.output_dir={tmp_path / 'run'}",
        f"paths.data_dir={tmp_path / 'data'}", *FAST]))
    assert report["test_accuracy"] > 0.5  # 9 speakers: chance is about 0.11
