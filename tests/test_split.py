import numpy as np
import pytest

from stages import split


def make_interim(folder, per_class=(50, 30, 20, 40, 60, 10, 30, 50, 20, 40)):
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = np.arange(len(labels), dtype=np.float32)[:, None, None] * np.ones((1, 28, 28), np.float32)
    np.save(folder / "images.npy", images)
    np.save(folder / "labels.npy", labels)
    return labels


def load(folder, name):
    with np.load(folder / f"{name}.npz") as data:
        return data["images"], data["labels"]


def test_sets_are_disjoint_cover_everything_and_keep_images_with_labels(tmp_path):
    labels = make_interim(tmp_path / "interim")
    split.main(tmp_path / "interim", tmp_path / "out", test_size=0.2, validation_size=0.1, seed=1)
    ids = {}
    for name in ("train", "validation", "test"):
        images, part_labels = load(tmp_path / "out", name)
        ids[name] = images[:, 0, 0].astype(int)
        np.testing.assert_array_equal(labels[ids[name]], part_labels)  # each image kept its label
    assert not set(ids["test"]) & set(ids["train"])
    assert not set(ids["test"]) & set(ids["validation"])
    assert not set(ids["validation"]) & set(ids["train"])
    assert sorted(np.concatenate(list(ids.values()))) == list(range(len(labels)))


def test_split_is_80_20_and_stratified(tmp_path):
    labels = make_interim(tmp_path / "interim")
    split.main(tmp_path / "interim", tmp_path / "out", test_size=0.2, validation_size=0.1, seed=1)
    _, test_labels = load(tmp_path / "out", "test")
    assert len(test_labels) == round(len(labels) * 0.2)
    np.testing.assert_array_equal(np.bincount(test_labels), np.round(np.bincount(labels) * 0.2))


@pytest.mark.parametrize("seed_b, same", [(7, True), (8, False)])
def test_seeded(tmp_path, seed_b, same):
    make_interim(tmp_path / "interim")
    split.main(tmp_path / "interim", tmp_path / "a", 0.2, 0.1, seed=7)
    split.main(tmp_path / "interim", tmp_path / "b", 0.2, 0.1, seed=seed_b)
    a, b = load(tmp_path / "a", "test")[0], load(tmp_path / "b", "test")[0]
    assert np.array_equal(a, b) == same


def test_stratified_split_fraction_per_class():
    labels = np.array([0] * 10 + [1] * 20)
    held, kept = split.stratified_split(labels, 0.3, np.random.default_rng(0))
    assert sorted(np.bincount(labels[held])) == [3, 6]
    assert len(held) + len(kept) == 30 and not set(held) & set(kept)


def test_missing_input_says_what_to_run(tmp_path):
    from stages.common.errors import PipelineError

    with pytest.raises(PipelineError, match="run the normalize stage first"):
        split.main(tmp_path / "nothing", tmp_path / "out", 0.2, 0.1, 0)
    assert not (tmp_path / "out").exists()


def test_an_array_header_that_claims_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    from stages.common.errors import PipelineError

    make_interim(tmp_path / "interim")
    with open(tmp_path / "interim" / "images.npy", "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 28, 28)})
    with pytest.raises(PipelineError, match=r"images.npy is corrupt or not what the normalize stage writes \(its "
                                            r"header says shape \(1000000000, 28, 28\) of float32, 3,136,000,000,000 "
                                            r"bytes, but 0 bytes follow it\); delete it and run the normalize stage"):
        split.main(tmp_path / "interim", tmp_path / "out", 0.2, 0.1, 0)
