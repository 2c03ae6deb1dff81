"""open_dataset over every source, splits, and bad files inside datasets."""

import json
import pickle

import numpy as np
import pytest
import torch

from cnnlab.data import open_dataset
from cnnlab.errors import CnnlabError

from .conftest import make_truncated, photo, save


def test_digits_default():
    splits = open_dataset("digits")
    assert len(splits.train) + len(splits.val) == 1797
    assert len(splits.val) == pytest.approx(0.2 * 1797, abs=10)
    assert splits.classes == [str(i) for i in range(10)] and splits.input_size == (1, 32, 32)
    image, label = splits.train[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32) and isinstance(label, int)
    assert len(splits.mean) == 3 and 0.1 < splits.mean[0] < 0.5
    val_counts = splits.class_counts("val")
    assert min(val_counts.values()) >= 30  # stratified: every class is in val
    again = open_dataset("digits", in_chans=1)
    assert again.train[0][0].shape == (1, 32, 32)
    assert again.train.targets == splits.train.targets  # same seed, same split
    assert open_dataset("digits", seed=1).train.targets != splits.train.targets


def test_folder_with_train_and_val(tmp_path):
    root = tmp_path / "ds"
    for part, n in (("train", 4), ("validation", 2)):
        for c in ("a", "b"):
            for i in range(n):
                save(photo(seed=i), root / part / c / f"{i}.png")
    splits = open_dataset(str(root))
    assert splits.classes == ["a", "b"] and (len(splits.train), len(splits.val)) == (8, 4)
    assert splits.input_size is None and splits.mean == (0.485, 0.456, 0.406)
    assert splits.train[0][0].shape == (3, 30, 40)


@pytest.mark.parametrize("extra", ["val", "cats"])
def test_ambiguous_folders_are_errors(tmp_path, extra):
    for part in ("train", "test", extra):
        save(photo(), tmp_path / "ds" / part / "a" / "0.png")
    with pytest.raises(CnnlabError, match="validation folders|mixes split folders"):
        open_dataset(str(tmp_path / "ds"))


def test_single_folder_needs_a_fraction(class_folder):
    with pytest.raises(CnnlabError, match="val split"):
        open_dataset(str(class_folder))


def test_fraction_split_is_stratified_seeded_and_saved(class_folder, tmp_path):
    split_file = tmp_path / "split.json"
    splits = open_dataset(str(class_folder), val_split=0.34, seed=3, split_file=str(split_file))
    assert splits.class_counts("val") == {"cat": 2, "dog": 2, "eel": 2}
    saved = json.loads(split_file.read_text())
    assert len(saved["val"]) == 6 and all(not p.startswith("/") for p in saved["val"])
    # reuse: the file wins over a different seed
    again = open_dataset(str(class_folder), val_split=0.34, seed=99, split_file=str(split_file))
    assert [p for p, _ in again.val.samples] == [p for p, _ in splits.val.samples]


def test_bad_files_are_skipped_and_reported(class_folder, tmp_path):
    (class_folder / "cat" / "empty.jpg").write_bytes(b"")
    make_truncated(class_folder / "dog" / "half.jpg")
    (class_folder / "notes.txt").write_text("ignored: not an image name")
    splits = open_dataset(str(class_folder), val_split=0.5, split_file=str(tmp_path / "s.json"))
    assert [p.split("/")[-1] for p, _ in splits.report.skipped] == ["empty.jpg"]  # header scan
    # the truncated body is only found on decoding; the loader moves on to the next file
    index = next(i for part in (splits.train, splits.val) for i, (p, _) in enumerate(part.samples)
                 if p.endswith("half.jpg"))
    part = splits.train if any(p.endswith("half.jpg") for p, _ in splits.train.samples) else splits.val
    image, label = part[index]
    assert image.dtype == torch.uint8
    assert part.report.counts == {"empty file": 1, "truncated": 1}


def test_tiny_classes_are_handled_and_said(tmp_path, caplog):
    for c, n in (("big", 6), ("one", 1), ("none", 0)):
        for i in range(n):
            save(photo(seed=i), tmp_path / "ds" / c / f"{i}.png")
    (tmp_path / "ds" / "none").mkdir(parents=True, exist_ok=True)
    (tmp_path / "ds" / "none" / "bad.png").write_bytes(b"")
    splits = open_dataset(str(tmp_path / "ds"), val_split=0.5)
    assert splits.classes == ["big", "one"]
    assert splits.class_counts("val") == {"big": 3, "one": 0}
    assert "single image" in caplog.text and "no readable image" in caplog.text


def test_csv_list(tmp_path):
    rows = ["path,label"]
    for i in range(6):
        for label in ("x", "y"):
            save(photo(seed=i), tmp_path / "img" / f"{label}{i}.png")
            rows.append(f"img/{label}{i}.png,{label}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    splits = open_dataset(str(tmp_path / "list.csv"), val_split=0.5)
    assert splits.classes == ["x", "y"] and len(splits.val) == 6
    (tmp_path / "split.csv").write_text(
        "\n".join(r + (",train" if i % 3 else ",val") for i, r in enumerate(rows[1:]))
    )
    assert len(open_dataset(str(tmp_path / "split.csv")).val) == 4


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (root / name).write_bytes(pickle.dumps(batch))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    splits = open_dataset(f"cifar10:{tmp_path}")
    assert (len(splits.train), len(splits.val)) == (50, 10) and splits.input_size == (3, 32, 32)
    assert splits.classes[3] == "c3" and splits.train[0][0].shape == (3, 32, 32)
    first = torch.from_numpy(
        pickle.loads((root / "data_batch_1").read_bytes())[b"data"][0].reshape(3, 32, 32)
    )
    assert torch.equal(splits.train[0][0], first)


def test_cifar_pickle_with_code_is_refused(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": print}))
    with pytest.raises(CnnlabError, match="not allowed"):
        open_dataset(f"cifar10:{tmp_path}")


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 5)):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 256, (n, 28, 28))))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(np.arange(n) % 10))
    splits = open_dataset(f"fashion-mnist:{tmp_path}", in_chans=1)
    assert (len(splits.train), len(splits.val)) == (20, 5) and splits.classes[9] == "ankle boot"
    assert splits.train[0][0].shape == (1, 28, 28)
    assert len(open_dataset(f"mnist:{tmp_path}", val_split=0.5).train) == 10


def test_unknown_spec_is_one_line_error(tmp_path):
    with pytest.raises(CnnlabError, match="unknown data") as info:
        open_dataset(str(tmp_path / "nope"))
    assert "\n" not in str(info.value)
    with pytest.raises(CnnlabError, match="not a folder"):
        open_dataset(f"cifar10:{tmp_path / 'nope'}")


def test_bad_file_report_shares_skips_through_its_log(tmp_path):
    import multiprocessing as mp

    from cnnlab.data.report import BadFileReport

    main = BadFileReport()
    main.add("early.jpg", "empty file", quiet=True)  # found by the header screen, before any worker
    log = tmp_path / "skipped.tsv"
    main.attach_log(log)
    ctx = mp.get_context("fork")  # as DataLoader workers on Linux: each process has its own copy
    workers = [ctx.Process(target=_skip_in_worker, args=(main, k)) for k in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert len(main) == 1  # the workers' copies are separate ...
    paths = sorted(p for p, _ in main.sync().skipped)  # ... until the log is merged
    assert paths == ["early.jpg", "shared.jpg", "w0.jpg", "w1.jpg", "w2.jpg"]
    assert len(log.read_text().splitlines()) == 5  # 'shared.jpg' is logged once, by the first worker
    resumed = BadFileReport()
    resumed.attach_log(log, write_existing=False)  # a resumed run keeps the earlier entries
    assert sorted(p for p, _ in resumed.skipped) == paths
    assert dict(resumed.skipped)["w1.jpg"] == "truncated: cut short"  # multi-line reasons become one line


def _skip_in_worker(report, k: int) -> None:
    import time

    time.sleep(0.2 * k)  # the first worker logs 'shared.jpg' before the others look
    report.add(f"w{k}.jpg", "truncated: cut\nshort", quiet=True)
    report.add("shared.jpg", "corrupt: bad marker", quiet=True)


def test_evaluation_leaves_unreadable_files_out_instead_of_counting_a_neighbour_twice(tmp_path):
    from cnnlab import create_model
    from cnnlab.data import ImageFileDataset, build_transform
    from cnnlab.engine.evaluate import evaluate



    good = [(str(save(photo(seed=i), tmp_path / f"{i}.png")), i % 2) for i in range(5)]
    bad = [(str(make_truncated(tmp_path / f"t{i}.jpg")), 0) for i in range(3)]
    samples = [good[0], bad[0], good[1], good[2], bad[1], bad[2], good[3], good[4]]  # batch 2 (of 3): all bad
    ds = ImageFileDataset(samples, ["a", "b"], transform=build_transform(
        "none", train=False, input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3))
    model = create_model("lenet5_relu", num_classes=2)
    for workers in (0, 2):
        result = evaluate(model, ds, batch_size=2, num_classes=2, device=torch.device("cpu"), workers=workers)
        assert result.count == 5 and int(result.confusion.sum()) == 5
    assert ds.on_bad == "next" and ds[1][0].shape == (3, 32, 32)  # training keeps substituting
    assert sorted(p for p, _ in ds.report.skipped) == sorted(p for p, _ in bad)
