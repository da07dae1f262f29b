"""The embedding-convolution study (experiments/embedding_conv) runs end to end on a tiny setting."""

import pytest

from experiments.embedding_conv import bench


def test_arguments_are_checked():
    assert bench.parse_args(["--vocabularies", "5,7"]).vocabularies == [5, 7]
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])


@pytest.mark.slow
def test_the_study_prints_both_tables(capsys):
    bench.main(["--vocabularies", "100", "--rounds", "1", "--steps", "1"])
    out = capsys.readouterr().out
    pair = next(line for line in out.splitlines() if line.startswith("| 100 |"))
    share, unfused, fused, ratio = (float(cell) for cell in pair.split("|")[2:6])
    assert share == pytest.approx(100 / (128 * 494), abs=0.01) and unfused > 0 and fused > 0
    assert ratio == pytest.approx(unfused / fused, rel=0.02)
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith(("| off", "| on"))}
    assert set(rows) == {"off", "on"} and float(rows["off"].split("|")[2].replace(",", "")) > 0
