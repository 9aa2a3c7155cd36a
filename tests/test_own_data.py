"""Your own data: image folders (layouts, stable splits, bad files, odd formats), the exported
image-bytes signature, fine-tuning a folder run on other classes, and texts of your own."""

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml
from conftest import SMOKE, fashion_train
from PIL import Image

from apps.image_classification.folders import decode_image
from apps.sequence_modeling import texts
from training.errors import ConfigError, DataError
from training.folder_data import list_labelled_files
from training.pipeline import train
from training.registry import load_config
from training.run_dir import RunDir

BAD_FILES = {"tshirt/notes.txt": b"not an image", "tshirt/.DS_Store": b"\0\1",
             "trouser/empty.jpg": b"", "pullover/cut.png": None,  # None: a PNG cut short
             "tshirt/\udcff.png": None,  # a name that is not UTF-8 (as os.listdir gives it)
             "trouser/huge.png": "huge"}  # 2,000 x 2,000 pixels in 4 KB: over the folder_run's limit


def fashion_folder(root, classes=("tshirt", "trouser", "pullover"), per_class=40, bad=True):
    """Real Fashion-MNIST images of the first len(classes) classes as root/<class>/<n>.png."""
    images, labels = fashion_train()
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == label)[:per_class]:
            Image.fromarray(images[i, ..., 0]).save(root / name / f"{i}.png")
    if bad:
        for rel, content in BAD_FILES.items():
            if content is None:
                content = next((root / rel).parent.glob("*.png")).read_bytes()[:60]
            elif content == "huge":
                content = tf.io.encode_png(tf.zeros((2000, 2000, 1), tf.uint8)).numpy()
            (root / rel).write_bytes(content)
    return root


def touch(root, rels):
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def test_a_file_keeps_its_split_when_files_are_added(tmp_path):
    touch(tmp_path, [f"{c}/{i}.png" for c in "ab" for i in range(200)])
    before = list_labelled_files(tmp_path, (".png",), 0.1, 0.2)
    assert before.class_names == ["a", "b"]
    sizes = {s: len(v) for s, v in before.splits.items()}
    assert 60 <= sizes["test"] <= 100 and 20 <= sizes["validation"] <= 50  # 20% and 10% of 80%
    touch(tmp_path, [f"{c}/new{i}.png" for c in "ab" for i in range(100)])
    after = list_labelled_files(tmp_path, (".png",), 0.1, 0.2)
    for split in before.splits:
        assert set(before.splits[split]) <= set(after.splits[split])


def test_only_regular_files_with_utf8_names_are_listed(tmp_path, capsys):
    import os

    touch(tmp_path, [f"{c}/{i}.png" for c in "ab" for i in range(3)])
    os.mkfifo(tmp_path / "a" / "x.png")  # reading it would wait for a writer forever
    (tmp_path / "a" / "dir.png").mkdir()
    (tmp_path / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "b" / os.fsdecode(b"\xff\xfe.png")).write_bytes(b"")  # a Latin-1 name
    (tmp_path / os.fsdecode(b"c\xe9")).mkdir()
    (tmp_path / os.fsdecode(b"c\xe9") / "1.png").write_bytes(b"")
    listing = list_labelled_files(tmp_path, (".png",), 0.0, 0.0)
    assert listing.class_names == ["a", "b"]
    assert sorted(rel for rel, _ in listing.splits["train"]) == [f"{c}/{i}.png" for c in "ab"
                                                                 for i in range(3)]
    assert sorted(listing.skipped) == ["a/x.png", "b/gone.png", os.fsdecode(b"b/\xff\xfe.png")]
    assert capsys.readouterr().out == (f"Skipped 1 class folder(s) whose names are not valid "
                                       f"UTF-8 (rename them to train on them): {tmp_path}/c\ufffd\n")


def test_split_folders_and_class_filter(tmp_path):
    touch(tmp_path, [f"train/{c}/{i}.jpg" for c in "abc" for i in range(50)]
          + [f"test/{c}/{i}.jpg" for c in "ab" for i in range(5)] + ["train/a/readme.md"])
    listing = list_labelled_files(tmp_path, (".jpg",), 0.2, 0.5, classes=["a", "b"])
    assert listing.class_names == ["a", "b"]
    assert sorted(listing.splits["test"]) == sorted((f"test/{c}/{i}.jpg", k) for k, c in
                                                    enumerate("ab") for i in range(5))
    assert len(listing.splits["train"]) + len(listing.splits["validation"]) == 100  # test_split unused
    assert listing.skipped == ["train/a/readme.md"]
    touch(tmp_path, ["test/z/1.jpg"])
    with pytest.raises(DataError, match="test has class folder.s. z that .*train lacks"):
        list_labelled_files(tmp_path, (".jpg",), 0.2, 0.5)


@pytest.mark.parametrize("rels, found", [([], "0 class folder"), (["only/1.png", "empty/x.txt"], "1 class")])
def test_fewer_than_two_classes_names_the_layout(tmp_path, rels, found):
    touch(tmp_path, rels)
    with pytest.raises(DataError, match=f"holds {found}.*at least two.*DIR/<class>/<files>"):
        list_labelled_files(tmp_path, (".png",), 0.1, 0.2, what="images")


def _encoded(image, fmt, **kw):
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def test_odd_image_formats_decode_to_the_configured_size_and_channels():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    files = {
        "cmyk_jpeg": _encoded(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "png_16_bit": _encoded(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
        "palette_png": _encoded(Image.fromarray(rgb).convert("P"), "PNG"),
        "rgba_png": _encoded(Image.fromarray(rgb).convert("RGBA"), "PNG"),
        "bmp": _encoded(Image.fromarray(rgb), "BMP"),
        "animated_gif": _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    }
    for name, data in files.items():
        for channels in (1, 3):
            image = decode_image(data, (16, 16), channels)
            assert image.shape == (16, 16, channels) and image.dtype == tf.uint8, name
    gray = rgb[..., 0]  # a gray PNG at its own size comes back pixel for pixel, in 1 or 3 channels
    assert np.array_equal(decode_image(_encoded(Image.fromarray(gray), "PNG"), (20, 30), 1)[..., 0], gray)
    assert np.array_equal(decode_image(_encoded(Image.fromarray(rgb), "PNG"), (20, 30), 3), rgb)


def test_transparent_pixels_are_drawn_on_the_background_and_blank_images_are_counted(
        tmp_path, capsys):
    # A symbolic icon: RGB all 0, the shape in alpha alone. Decoded to RGB it was blank.
    alpha = np.zeros((12, 12), np.uint8)
    alpha[3:9, 3:9] = 255
    alpha[0, 0] = 128  # half transparent: halfway to the background
    icon = Image.fromarray(np.dstack([np.zeros((12, 12, 3), np.uint8), alpha]), "RGBA")
    on_white = decode_image(_encoded(icon, "PNG"), (12, 12), 1).numpy()[..., 0]
    assert on_white[5, 5] == 0 and on_white[1, 1] == 255 and on_white[0, 0] == 127
    assert decode_image(_encoded(icon, "PNG"), (12, 12), 3, background=0).numpy().max() == 0
    palette = Image.fromarray(np.where(alpha == 255, 1, 0).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 0, 0, 0])  # both entries black, entry 0 transparent
    palette.info["transparency"] = 0
    drawn = decode_image(_encoded(palette, "PNG", transparency=0), (12, 12), 1).numpy()[..., 0]
    assert drawn[5, 5] == 0 and drawn[1, 1] == 255

    for i in range(20):  # a class of fully transparent images: blank once decoded
        for label, image in (("shape", icon), ("empty", Image.new("RGBA", (12, 12)))):
            (tmp_path / "icons" / label).mkdir(parents=True, exist_ok=True)
            image.save(tmp_path / "icons" / label / f"{i}.png")
    from apps.image_classification.folders import FolderImages

    FolderImages(tmp_path / "icons", validation_split=0, test_split=0).dataset("train")
    assert capsys.readouterr().out.strip() == (
        "warning: 20 of 40 train images are one flat colour once decoded (transparent ones are "
        "drawn on data.background=255); check that the folders hold what you expect")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """One epoch on a 3-class folder with bad files; (run dir, metrics, printed output)."""
    root = tmp_path_factory.mktemp("own")
    data = fashion_folder(root / "photos")
    config = load_config("image_classification", None, SMOKE + [
        f"data.dir={data}", f"run_dir={root / 'run'}", f"export.dir={root / 'export'}",
        "data.test_split=0.25", "data.max_image_pixels=1000000"])
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        metrics = train(config)
    return root, metrics, capture.getvalue()


def test_a_folder_trains_with_its_class_names_and_one_line_about_skipped_files(folder_run):
    root, metrics, printed = folder_run
    skipped = [line for line in printed.splitlines() if line.startswith("Skipped")]
    assert skipped == [
        "Skipped 1 of 126 images larger than data.max_image_pixels=1,000,000: trouser/huge.png "
        "(2000x2000)",
        "Skipped 5 of 126 files that are not readable images (damaged, other types, not regular "
        "files, names that are not UTF-8): pullover/cut.png, trouser/empty.jpg, tshirt/.DS_Store, "
        "tshirt/notes.txt, tshirt/\ufffd.png"]
    assert metrics["class_names"] == ["pullover", "trouser", "tshirt"]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() > 0
    # The misclassified test images are named by their files, so they can be opened or relabelled.
    with open(RunDir(root / "run").mistakes_csv, newline="") as f:
        mistakes = list(csv.DictReader(f))
    assert len(mistakes) == metrics["mistakes"] == matrix.sum() - np.trace(matrix)
    for row in mistakes:
        assert Path(row["example"]).is_file() and Path(row["example"]).parent.name == row["true"]
    assert [float(r["probability"]) for r in mistakes] == sorted(
        (float(r["probability"]) for r in mistakes), reverse=True)
    if mistakes:
        assert RunDir(root / "run").mistakes_png.stat().st_size > 0
    loaded = tf.saved_model.load(metrics["export"])
    png = [tf.io.encode_png(image).numpy() for image in fashion_train()[0][:2]]
    by_bytes = loaded.signatures["image_bytes"](image_bytes=tf.constant(png))
    by_array = loaded.signatures["serving_default"](image=tf.constant(fashion_train()[0][:2]))
    assert set(by_bytes["class_name"].numpy()) <= {b"pullover", b"trouser", b"tshirt"}
    np.testing.assert_array_equal(by_bytes["class_name"], by_array["class_name"])
    np.testing.assert_allclose(by_bytes["probabilities"], by_array["probabilities"], atol=1e-6)
def test_fine_tuning_from_the_run_on_other_classes_loads_all_but_the_head(folder_run, capsys):
    root, _, _ = folder_run
    data = fashion_folder(root / "other", classes=("dress", "coat"), bad=False)
    config = load_config("image_classification", None, SMOKE + [
        f"data.dir={data}", f"run_dir={root / 'tuned'}", "export.enabled=false", "epochs=2",
        f"model.init_from={root / 'run'}", "model.freeze_backbone=true",
        "model.unfreeze_after_epochs=1"])
    metrics = train(config)
    printed = capsys.readouterr().out
    assert "its classes (pullover, trouser, tshirt) are not this run's: a new head" in printed
    assert "not loaded (initialised afresh): probabilities (other classes)" in printed
    assert "Epochs 2-2: every layer trains, learning rate 0.0002" in printed
    assert metrics["epochs_completed"] == 2
    assert len(metrics["confusion_matrix"]) == 2


def test_augment_auto_follows_the_run_a_model_starts_from(folder_run, capsys):
    # A backbone trained without augmentation, fine-tuned with it, scored 2.7 points lower.
    from training.registry import get_app

    root, _, _ = folder_run
    assert yaml.safe_load(RunDir(root / "run").config.read_text())["model"]["augment"] is False
    for extra, augment, why in (
            ([f"model.init_from={root / 'run'}"], False, f"as {root / 'run'} was trained"),
            ([], True, "for 30 epochs (on above 10)")):
        config = load_config("image_classification", None, [
            f"data.dir={root / 'photos'}", "epochs=30", *extra])
        get_app(config.app)(config).resolve_auto()
        assert config.model.augment is augment
        assert capsys.readouterr().out.splitlines()[-1] == (
            f"model.augment=auto: {'on' if augment else 'off'} {why}")


def test_texts_from_folders_and_a_csv_skip_what_cannot_be_read(tmp_path, capsys):
    for i in range(30):
        for label, word in (("neg", "awful"), ("pos", "great")):
            (tmp_path / "texts" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "texts" / label / f"{i}.txt").write_text(f"a {word} film, number {i}")
    (tmp_path / "texts" / "neg" / "empty.txt").write_text("  \n")
    (tmp_path / "texts" / "pos" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "texts" / "pos" / "urls.md").write_text("http://x")
    listing = texts.text_folders(tmp_path / "texts", 0.1, 0.2)
    assert listing.class_names == ["neg", "pos"]
    assert sum(len(t) for t, _ in listing.splits.values()) == 60
    assert capsys.readouterr().out.splitlines() == [
        "Skipped 3 of 63 files that are empty, not UTF-8 text or not .txt: neg/empty.txt, "
        "pos/latin1.txt, pos/urls.md"]

    rows = b"id,review,stars\n" + b"".join(f"{i},review {i},{1 + i % 3}\n".encode() for i in range(40))
    rows += b"40,,2\n41,no label,\n42,caf\xe9,3\n"
    (tmp_path / "reviews.csv").write_bytes(rows)
    listing = texts.csv_texts(tmp_path / "reviews.csv", "review", "stars", 0.1, 0.2)
    assert listing.class_names == ["1", "2", "3"]
    assert sum(len(t) for t, _ in listing.splits.values()) == 40
    assert capsys.readouterr().out.splitlines() == [
        "Skipped 3 of 43 rows with an empty text, no label or bytes that are not UTF-8: "
        "line 42, line 43, line 44"]
    with pytest.raises(ConfigError, match="data.text_column='text' is not a column of .*: id, review, stars"):
        texts.csv_texts(tmp_path / "reviews.csv", "text", "stars", 0.1, 0.2)


def test_a_text_folder_as_data_dir_alone_is_read_and_one_long_text_does_not_set_the_length(
        tmp_path, capsys):
    # The README's command: data.dir alone used to be taken for a TFDS dir of fashion_mnist.
    from training.registry import get_app

    for i in range(40):
        for label, word in (("neg", "awful"), ("pos", "great")):
            (tmp_path / "texts" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "texts" / label / f"{i}.txt").write_text(f"a {word} film, number {i}")
    (tmp_path / "texts" / "pos" / "long.txt").write_text("word " * 50_000)  # a 250 KB page
    config = load_config("sequence_modeling", None, [f"data.dir={tmp_path / 'texts'}",
                                                     "data.test_split=0", "data.validation_split=0"])
    app = get_app("sequence_modeling")(config)
    assert app.task.images is None and app.class_names() == ["neg", "pos"]
    capsys.readouterr()
    train_texts = app.build_data("train")
    assert config.data.text_length == 5  # "a great film, number 7"
    assert capsys.readouterr().out.strip() == (
        "data.text_length=5: 95% of the 81 training texts have at most 5 words; longer texts (1) "
        "are cut to it (set data.text_length to choose)")
    assert train_texts is not None
    assert app.task.vectorizer(tf.constant(["word " * 50_000])).shape == (1, 5)  # cut to the length


def test_a_csv_of_texts_trains_and_the_export_takes_raw_strings(tmp_path):
    words = {"neg": "awful boring dull", "pos": "great moving fun"}
    lines = ["text,label"] + [f"{words[label]} take {i},{label}" for i in range(60) for label in words]
    (tmp_path / "reviews.csv").write_text("\n".join(lines) + "\n")
    config = load_config("sequence_modeling", None, [
        f"data.path={tmp_path / 'reviews.csv'}", f"run_dir={tmp_path / 'run'}",
        f"export.dir={tmp_path / 'export'}", "epochs=3", "model.units=8", "batch_size=16",
        "runtime.verbose=0", "callbacks.tensorboard=false"])
    metrics = train(config)
    assert len(metrics["confusion_matrix"]) == 2
    assert set(metrics["per_class"]) == {"neg", "pos"}
    with open(RunDir(tmp_path / "run").mistakes_csv, newline="") as f:
        header = next(csv.reader(f))
    assert header == ["index", "example", "true", "predicted", "probability"]  # the texts' starts
    served = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    names = served(text=tf.constant(["a great moving fun film", "awful boring dull"]))["class_name"]
    assert set(names.numpy()) <= {b"neg", b"pos"}


def test_the_dbn_app_pretrains_on_the_same_folder(folder_run):
    root, _, _ = folder_run
    metrics = train(load_config("unsupervised_pretraining", None, [
        "model.hidden=[24]", "pretrain.epochs=1", "epochs=1", "batch_size=32", "runtime.verbose=0",
        "callbacks.tensorboard=false", f"data.dir={root / 'photos'}", f"run_dir={root / 'dbn'}",
        "export.enabled=false"]))
    assert (root / "dbn" / "pretraining" / "rbm_1.keras").exists()
    assert len(metrics["confusion_matrix"]) == 3


def _cached(dataset):
    """Does the pipeline's dataset hold a CacheDataset (a chain of one-input datasets)?"""
    while dataset is not None:
        if type(dataset).__name__ == "CacheDataset":
            return True
        dataset = getattr(dataset, "_input_dataset", None)
    return False


def test_a_folder_too_big_for_memory_streams_every_epoch(folder_run, monkeypatch, capsys):
    from apps.image_classification import folders
    from training.pipeline import inputs as input_pipeline
    from training.registry import get_app

    root, _, _ = folder_run
    config = load_config("image_classification", None, SMOKE + [f"data.dir={root / 'photos'}"])
    app = get_app("image_classification")(config)
    strategy = tf.distribute.get_strategy()
    assert _cached(input_pipeline.make_dataset(app, "validation", config, strategy)[0])
    monkeypatch.setattr(folders, "CACHE_SHARE", 1e-9)  # a machine without room for 120 images
    assert not _cached(input_pipeline.make_dataset(app, "validation", config, strategy)[0])
    assert "they stream from disk every epoch" in capsys.readouterr().out


def test_one_image_per_class_trains_and_says_what_it_used_instead_of_the_empty_splits(tmp_path, cli):
    import yaml

    for name in ("a", "b", "c"):  # {a,b,c}/x.png all hash into the test split
        (tmp_path / "tiny" / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 6, 3), ord(name), np.uint8)).save(tmp_path / "tiny" / name / "x.png")
    result = cli("train", "--app", "image_classification", "--set", f"data.dir={tmp_path / 'tiny'}",
                 "--set", "epochs=1", "--set", "model.width_multiplier=0.25", "--set", "runtime.verbose=0",
                 "--set", f"run_dir={tmp_path / 'run'}", "--set", f"export.dir={tmp_path / 'export'}")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-1500:]
    lines = result.stdout.splitlines()
    assert ("Too few files to hold any out in 3 class(es) (a, b, c): the hash split "
            "(data.test_split=0.2, data.validation_split=0.1) put them all in test or validation; "
            "one of each is kept for training") in lines
    assert any(line.startswith("warning: the validation split is empty") and "training loss" in line
               for line in lines)
    assert any(line.startswith("warning: the test split is empty") for line in lines)
    assert (f"Data: 3 classes (a, b, c), 8x6x3 images from the class folders in {tmp_path / 'tiny'}; "
            "3 training, 0 validation, 0 test examples") in lines
    recorded = yaml.safe_load(RunDir(tmp_path / "run").config.read_text())["data"]
    assert (recorded["format"], recorded["name"], recorded["image_size"], recorded["channels"],
            recorded["classes"]) == ("folder", "", [8, 6], 3, ["a", "b", "c"])


def test_kat_data_shows_what_a_run_would_train_on_without_building_a_model(tmp_path, cli):
    data = fashion_folder(tmp_path / "photos")
    noise = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(noise).save(data / "trouser" / "wide.png")
    result = cli("data", "--app", "image_classification", "--set", f"data.dir={data}",
                 "--set", "data.test_split=0.25", "--set", "data.max_image_pixels=1000000",
                 "--out", str(tmp_path / "preview"))
    assert result.returncode == 0, result.stderr[-1500:]  # --out's folder is made if missing
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "Skipped 1 of 127 images larger than data.max_image_pixels=1,000,000: trouser/huge.png "
        "(2000x2000)",
        f"Data: 3 classes (pullover, trouser, tshirt), 28x28x1 images from the class folders in {data}",
        "Skipped 5 of 127 files that are not readable images (damaged, other types, not regular "
        "files, names that are not UTF-8): pullover/cut.png, trouser/empty.jpg, tshirt/.DS_Store, "
        "tshirt/notes.txt, tshirt/\ufffd.png"]
    lines = lines[1:]
    counts = {line.split(":")[0]: line for line in lines[2:5]}
    assert set(counts) == {"train", "validation", "test"}
    assert sum(int(line.split(":")[1].split()[0].replace(",", "")) for line in counts.values()) == 121
    assert "per class: " in counts["train"] and "tshirt" in counts["train"]
    # The file cut short still has a readable header; the decode pass above skipped it.
    assert lines[5].startswith("Files: 122 images; sizes (width x height): 28x28 (121), 30x40 (1)")
    assert "modes: L (121), RGB (1)" in lines[5] and lines[5].endswith("decoded to 28x28x1")
    assert lines[6] == f"Samples of each class: {tmp_path / 'preview' / 'data_preview.png'}"
    assert (tmp_path / "preview" / "data_preview.png").stat().st_size > 1000
    assert not (tmp_path / "runs").exists()
