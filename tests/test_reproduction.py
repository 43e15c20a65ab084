"""The parts of `python -m reproduction.check` that need no training (tests/e2e/test_reproduction.py
runs the command): the host's fingerprint, the spread, verdicts and the host table."""

import statistics
from pathlib import Path

import pytest

from reproduction import check, host
from stages.common.errors import PipelineError
from stages.common.params import load_params
from stages.common.sweeps import read_rows
from studies.learning_rate import load_runs, seed_cells, technique

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("flags", "best", "runs"), [
    ({"sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw"}, "AVX512", "AVX2"),
    ({"sse4_1", "avx", "avx2", "fma"}, "AVX2", "AVX2"),
    ({"sse4_1", "avx"}, "AVX", "AVX"),
    ({"sse4_1"}, "SSE41", "SSE41"),
    ({"neon", "asimd"}, "none", "none"),
])
def test_the_instruction_set_is_the_cpus_best_capped_at_avx2(flags, best, runs):
    assert host.best_isa(flags) == best
    assert host.capped_isa(best) == runs


def test_the_fingerprint_has_what_decides_the_bits():
    found = host.fingerprint(2)
    arithmetic = found["arithmetic"]
    assert arithmetic["threads"] == 2 and arithmetic["isa"] in ("AVX2", "AVX", "SSE41", "none")
    l1, l2, l3 = arithmetic["eigen_cache_bytes"]  # Eigen's own reading of the caches
    assert 0 < l1 < l2 <= l3
    assert found["visible_cores"] >= 1 and found["caches"]
    assert host.fingerprint(0)["arithmetic"]["threads"] == "one per visible core"
    assert host.same_arithmetic(found, host.fingerprint(2)) and not host.same_arithmetic(found, host.fingerprint(3))


@pytest.mark.parametrize(("here", "inside", "text"), [
    (0.9216, True, "accuracy 0.921600 against 0.921400 (+0.000200, 0.10 seed sd (0.0020): inside the seed spread, "
                   "±2 sd)"),
    (0.9176, True, "accuracy 0.917600 against 0.921400 (-0.003800, 1.90 seed sd (0.0020): inside the seed spread, "
                   "±2 sd)"),
    (0.9164, False, "accuracy 0.916400 against 0.921400 (-0.005000, 2.50 seed sd (0.0020): OUTSIDE the seed "
                    "spread, ±2 sd)"),
])
def test_a_metric_is_inside_the_spread_within_two_seed_sds(here, inside, text):
    metric = check.Metric("accuracy", 0.9214, here, 0.002)
    assert metric.inside is inside
    assert metric.describe() == text


def test_without_a_documented_spread_no_difference_counts_as_inside():
    metric = check.Metric("loss", 0.30, 0.30001, None)
    assert not metric.inside
    assert "no seed spread is documented for it" in metric.describe()


@pytest.mark.parametrize("model", ["conv1", "conv2", "conv3"])
def test_the_spread_is_the_studys_for_the_defaults(model):
    cells = [cell for cell in seed_cells(load_runs("lr_seeds", REPO / "sweeps"))
             if cell.technique == check.SPREAD_TECHNIQUE and cell.model == model]
    [cell] = cells
    assert check.seed_spread(REPO, model)["accuracy"] == pytest.approx(statistics.stdev(cell.tests))
    assert check.seed_spread(REPO, model)["loss"] > 0


def test_the_spreads_cell_trains_as_the_defaults_do():
    params = load_params(REPO / "params.yaml")
    rows = [row for row in read_rows(REPO / "sweeps" / f"{check.SPREAD_SWEEP}.tsv")
            if technique(row) == check.SPREAD_TECHNIQUE]
    assert len(rows) >= 3
    for row in rows:
        assert (row["optimizer"], float(row["lr"]), row["train.schedule"], float(row["train.label_smoothing"]),
                int(row["epochs"])) == (params["optimizer"], params["lr"], params["train"]["schedule"],
                                        params["train"]["label_smoothing"], params["epochs"])


def test_recording_a_host_adds_or_replaces_its_row(tmp_path):
    table = tmp_path / "hosts.yaml"
    fingerprint = {"cpu": "x", "arithmetic": {"isa": "AVX2", "threads": 2}}
    same = [check.ModelResult("conv1", [], True, [])]
    check.record_host(table, [], "a", fingerprint, same)
    check.record_host(table, check.read_hosts(table), "b", fingerprint,
                      [check.ModelResult("conv1", [], False, [check.Metric("accuracy", 0.5, 0.51, 0.02)])])
    check.record_host(table, check.read_hosts(table), "a", fingerprint, same)
    rows = check.read_hosts(table)
    assert [(row["name"], row["result"]) for row in rows] == [("b", "conv1 accuracy +0.010000"), ("a", "identical")]


def test_a_damaged_host_table_is_refused_with_one_line(tmp_path):
    table = tmp_path / "hosts.yaml"
    table.write_text("just: a mapping\n")
    with pytest.raises(PipelineError, match="is not a list of hosts"):
        check.read_hosts(table)


def test_the_committed_host_table_is_readable():
    for row in check.read_hosts(REPO / check.HOSTS):
        assert {"name", "cpu", "arithmetic", "result"} <= set(row)
