"""What a careless or hostile user can send: bad config values and files, bad data, bad run
dirs, bad serving requests. Each is refused with one line that names the fix: exit code 2 on
the command line (no traceback), HTTP 400 with {"error": ...}, or gRPC INVALID_ARGUMENT.

Config cases fail when the config loads, before any data is read, so they cost milliseconds.
"""

import base64
import fcntl
import functools
import gzip
import io
import json
import os
import shutil
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMOKE, one_line_error
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from training.run_dir import LOCK_FILE, RunDir

IDX = Path("/usr/share/datasets/fashion-mnist")


# (id, app, --set overrides, text the message must hold)
CONFIG_CASES = [
    ("epochs_zero", "image_classification", ["epochs=0"], "'epochs' must be >= 1"),
    ("epochs_negative", "image_classification", ["epochs=-1"], "'epochs' must be >= 1"),
    ("epochs_not_a_number", "image_classification", ["epochs=abc"], "'epochs' must be int"),
    ("batch_size_zero", "image_classification", ["batch_size=0"], "'batch_size' must be >= 1"),
    ("learning_rate_negative", "image_classification", ["optimizer.learning_rate=-1"],
     "'optimizer.learning_rate' must be > 0"),
    ("learning_rate_zero", "sequence_modeling", ["optimizer.learning_rate=0"],
     "'optimizer.learning_rate' must be > 0"),
    ("momentum_one", "image_classification", ["optimizer.momentum=1"], "must be >= 0, < 1"),
    ("clipnorm_zero", "image_classification", ["optimizer.clipnorm=0"], "'optimizer.clipnorm' must be > 0"),
    ("steps_per_execution_zero", "image_classification", ["runtime.steps_per_execution=0"],
     "'runtime.steps_per_execution' must be >= 1"),
    ("verbose_three", "image_classification", ["runtime.verbose=3"], "must be >= 0, <= 2"),
    ("save_freq_word", "image_classification", ["callbacks.save_freq=abc"],
     "'callbacks.save_freq' must be 'epoch' or a whole number of steps"),
    ("save_freq_zero", "image_classification", ["callbacks.save_freq=0"], "'callbacks.save_freq'"),
    ("patience_negative", "image_classification", ["callbacks.early_stopping_patience=-2"], ">= 0"),
    ("arch_unknown", "image_classification", ["model.arch=nope"], "must be one of: mobilenet"),
    ("width_zero", "image_classification", ["model.width_multiplier=0"], "must be > 0"),
    ("dropout_one", "image_classification", ["model.dropout=1"], "'model.dropout' must be >= 0, < 1"),
    ("validation_split_one", "image_classification", ["data.validation_split=1"],
     "'data.validation_split' must be >= 0, < 1"),
    ("limit_zero", "image_classification", ["data.limit=0"], "'data.limit' must be >= 1"),
    ("seed_negative", "image_classification", ["seed=-1"], "'seed' must be >= 0"),
    ("strategy_unknown", "image_classification", ["strategy=gpus"], "must be one of: auto"),
    ("unknown_key", "image_classification", ["model.archh=resnet18"], "Unknown config key 'model.archh'"),
    ("section_as_value", "image_classification", ["model=3"], "'model' must be a mapping"),
    ("export_name_dotdot", "image_classification", ["export.name=.."], "must be a plain name"),
    ("export_name_path", "image_classification", ["export.name=a/b"], "must be a plain name"),
    ("export_dir_empty", "image_classification", ["export.dir="], "'export.dir' must not be empty"),
    ("cell_unknown", "sequence_modeling", ["model.cell=transformer"],
     "must be one of: simple_rnn, gru, lstm"),
    ("units_zero", "sequence_modeling", ["model.units=0"], "'model.units' must be >= 1"),
    ("hidden_empty", "unsupervised_pretraining", ["model.hidden=[]"], "must name at least one RBM"),
    ("hidden_zero_units", "unsupervised_pretraining", ["model.hidden=[500,0]"], "must be >= 1"),
    ("pcd_with_momentum_0.9", "unsupervised_pretraining", ["pretrain.persistent=true"],
     "persistent CD diverges with momentum above 0.5"),
    ("cd_k_zero", "unsupervised_pretraining", ["pretrain.cd_k=0"], "'pretrain.cd_k' must be >= 1"),
    ("set_without_equals", "image_classification", ["epochs"], "--set expects key=value"),
    ("unfreeze_without_freeze", "image_classification", ["model.unfreeze_after_epochs=1"],
     "unfreeze_after_epochs needs freeze_backbone=true"),
    ("unfreeze_after_the_last_epoch", "sequence_modeling",
     ["model.freeze_backbone=true", "model.unfreeze_after_epochs=10"], "leaves no epoch to fine-tune"),
    ("fine_tune_rate_zero", "image_classification", ["optimizer.fine_tune_learning_rate=0"], "must be > 0"),
    ("image_size_three_numbers", "image_classification", ["data.image_size=1,2,3"],
     "must be height,width"),
    ("channels_two", "image_classification", ["data.channels=2"], "must be one of: 1, 3"),
    ("format_unknown", "image_classification", ["data.format=csv"], "must be one of: auto, idx, folder"),
    ("weights_for_our_arch", "image_classification", ["model.weights=imagenet"],
     "weights applies to keras_applications/* archs"),
    ("class_weight_negative", "image_classification", ["data.class_weight={Bag: -1}"],
     "must give each class a weight >= 0"),
    ("class_weight_all_zero", "image_classification", ["data.class_weight={Bag: 0, Coat: 0}"],
     "must give some class a weight above 0"),
    ("class_weight_word", "sequence_modeling", ["data.class_weight=inverse"],
     "must be a mapping {str: float} or one of: none, balanced"),
    ("two_remedies", "image_classification", ["data.class_weight=balanced", "data.sampling=balanced"],
     "choose one"),
    ("monitor_with_val", "image_classification", ["callbacks.monitor=val_loss"], "without val_"),
    ("multi_without_manifest", "image_classification", ["data.labels=multi"],
     "reads its labels from data.manifest"),
    ("multi_with_class_weight", "image_classification",
     ["data.labels=multi", "data.manifest=m.csv", "data.class_weight=balanced"],
     "are for single-label classes"),
    ("multi_for_the_language_model", "sequence_modeling",
     ["task=language_model", "data.labels=multi"], "is for task=classification on a CSV file"),
    ("separator_comma", "sequence_modeling", ["data.label_separator=,"], "one character other than"),
]


@pytest.mark.parametrize("case_id, app, overrides, expected", CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_value_is_one_line_before_any_data_is_read(cli, tmp_path, case_id, app,
                                                              overrides, expected):
    run_dir = tmp_path / "run"
    args = ["train", "--app", app, "--set", f"run_dir={run_dir}", "--set", f"export.dir={tmp_path}",
            "--set", "data.limit=32", "--set", "runtime.verbose=0"]  # small, should a case train
    for override in overrides:
        args += ["--set", override]
    one_line_error(cli(*args), expected)
    assert not run_dir.exists()  # refused before anything was created


# 400 bytes that expand to 9^9 strings wherever the value is checked or printed.
ALIAS_BOMB = ("app: image_classification\nmodel:\n  arch: [&a [lol,lol,lol,lol,lol,lol,lol,lol,lol],\n"
              + "".join(f"    &{b} [{','.join(['*' + a] * 9)}],\n" for a, b in zip("abcdefgh", "bcdefghi"))
              + "    *i]\n").encode()


@pytest.mark.parametrize("case_id, content, expected", [
    ("missing", None, "Config file not found"),
    ("invalid_yaml", b"epochs: [3", "is not valid YAML at line 1"),
    ("not_utf8", b"\xff\xfe\x00epochs", "cannot be read"),
    ("a_directory", "dir", "cannot be read: Is a directory"),
    ("names_no_app", b"epochs: 3\n", "Name the app: --app NAME"),
    ("names_unknown_app", b"app: nope\n", "Unknown app 'nope'"),
    ("a_list", b"- epochs\n", "Name the app"),
    ("key_twice", b"app: image_classification\nepochs: 3\nbatch_size: 8\nepochs: 5\n",
     "at line 4, column 1: key 'epochs' is given twice in one mapping (first at line 2)"),
    ("alias_bomb", ALIAS_BOMB, "its aliases (*name) expand to more than 10,000 values"),
    ("megabytes", b"app: image_classification\n" + b"# a comment line\n" * 70_000,
     "is 1,190,026 bytes; a config or search space is a few KB"),
], ids=lambda c: c if isinstance(c, str) and " " not in c else None)
def test_bad_config_file_is_one_line(cli, tmp_path, case_id, content, expected):
    path = tmp_path / "given.yaml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    one_line_error(cli("train", "--config", str(path)), expected)


def _train(cli, tmp_path, *overrides, cwd=None):
    args = ["train", "--app", "image_classification"]
    for override in [*SMOKE, f"export.dir={tmp_path / 'export'}", *overrides]:
        args += ["--set", override]
    return cli(*args, cwd=cwd)


def test_unknown_app(cli):
    one_line_error(cli("train", "--app", "nope"), "Unknown app 'nope'")


def test_run_dir_that_is_a_file(cli, tmp_path):
    (tmp_path / "run").write_text("not a dir")
    one_line_error(_train(cli, tmp_path, f"run_dir={tmp_path / 'run'}"), "is a file")


def test_run_dir_on_a_read_only_file_system(cli, tmp_path):
    # /sys refuses new directories even to root, where chmod would not stop root.
    one_line_error(_train(cli, tmp_path, "run_dir=/sys/kat_run"), "Cannot write run_dir /sys/kat_run")


def test_finished_run_is_never_modified(cli, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    RunDir(run_dir).metrics.write_text('{"test": {}}')
    RunDir(run_dir).model.write_bytes(b"the trained model")
    line = one_line_error(_train(cli, tmp_path, f"run_dir={run_dir}"), "holds a finished run",
                          f"evaluate --run {run_dir}")
    assert "new --set run_dir" in line
    assert RunDir(run_dir).metrics.read_text() == '{"test": {}}'
    assert RunDir(run_dir).model.read_bytes() == b"the trained model"


def test_a_users_own_directory_is_never_adopted(cli, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    RunDir(own).model.write_bytes(b"the user's model")
    one_line_error(_train(cli, tmp_path, f"run_dir={own}", f"model.init_from={own}"),
                   f"model.init_from={own} lies in run_dir {own}")
    one_line_error(_train(cli, tmp_path, f"run_dir={own}"), "holds files that no run of ours wrote",
                   "--set run_dir=DIR")
    assert [p.name for p in own.iterdir()] == [RunDir(own).model.name]
    assert RunDir(own).model.read_bytes() == b"the user's model"


def test_a_search_dir_in_use_names_the_tune_option(cli, tmp_path):
    held_dir = tmp_path / "search"
    held_dir.mkdir()
    space = tmp_path / "space.yaml"
    space.write_text("optimizer.learning_rate: [0.01, 0.001]\n")
    with open(held_dir / LOCK_FILE, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = one_line_error(cli("tune", "--app", "image_classification", "--space", str(space),
                                  "--dir", str(held_dir)), "is in use by", "--dir DIR")
    assert "--set run_dir" not in line


def test_second_process_on_a_run_dir_exits_at_once(cli, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / LOCK_FILE, "a+") as held:  # another process training there
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 on trainer-7\n")
        held.flush()
        one_line_error(_train(cli, tmp_path, f"run_dir={run_dir}"), "is in use by pid 4242 on trainer-7")
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # nothing written


def test_wrong_data_dir_is_an_error_not_a_fallback(cli, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    one_line_error(_train(cli, tmp_path, f"run_dir={run_dir}", "data.dir=no_such_dir"),
                   "data.dir=no_such_dir is not a directory")
    assert not run_dir.exists()  # a failed start leaves no empty run dir behind
    monkeypatch.setenv("KAT_DATA_DIR", str(tmp_path / "junk"))
    one_line_error(_train(cli, tmp_path, f"run_dir={run_dir}"), f"KAT_DATA_DIR={tmp_path / 'junk'}")


@pytest.mark.parametrize("layout, expected", [
    ([], "holds 0 class folder(s)"),
    (["cats/a.png", "dogs/notes.txt"], "holds 1 class folder(s) with images (cats)"),
], ids=["empty_folder", "one_class"])
def test_a_folder_without_two_classes_names_the_layout(cli, tmp_path, layout, expected):
    data = tmp_path / "photos"
    data.mkdir()
    for rel in layout:
        (data / rel).parent.mkdir(exist_ok=True)
        (data / rel).write_bytes(tf.io.encode_png(np.zeros((4, 4, 1), np.uint8)).numpy())
    one_line_error(_train(cli, tmp_path, f"run_dir={tmp_path / 'run'}", f"data.dir={data}",
                          "data.format=folder"), expected, "DIR/<class>/<files>")


def test_init_from_a_missing_run(cli, tmp_path):
    one_line_error(_train(cli, tmp_path, f"run_dir={tmp_path / 'run'}", "model.init_from=no_run"),
                   "model.init_from=no_run: no_run does not exist; give a finished run dir")
    assert not (tmp_path / "run").exists()


def _broken_idx_dir(tmp_path, damage):
    data = tmp_path / "idx"
    data.mkdir()
    for path in IDX.iterdir():
        (data / path.name).symlink_to(path)
    target = next(p for p in data.iterdir() if p.name.startswith("t10k-images"))
    target.unlink()
    shutil.copy(next(IDX.glob("t10k-images*")), target)
    damage(target)
    return data


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_magic(path):
    raw = bytearray(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    raw[2] = 0x42
    path.write_bytes(gzip.compress(bytes(raw)) if path.suffix == ".gz" else bytes(raw))


def _unpacked_and_truncated(path):
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    path.unlink()
    path.with_suffix("").write_bytes(raw[:1000])


@pytest.mark.parametrize("damage, expected", [
    (_truncate, "cannot be read"),  # a .gz cut short
    (_wrong_magic, "is not an IDX file (bad magic number)"),
    (_unpacked_and_truncated, "is truncated: its header says (10000, 28, 28)"),
], ids=["truncated_gz", "wrong_magic", "truncated_idx"])
def test_damaged_idx_files(cli, tmp_path, damage, expected):
    data = _broken_idx_dir(tmp_path, damage)
    one_line_error(_train(cli, tmp_path, f"run_dir={tmp_path / 'run'}", f"data.dir={data}"), expected,
                   "replace it with a complete copy")


def test_evaluate_a_dir_that_is_not_a_run(cli, tmp_path):
    one_line_error(cli("evaluate", "--run", str(tmp_path)), "is not a finished run: config.yaml is missing")


def test_a_run_that_fails_before_training_leaves_no_run_dir(cli, tmp_path):
    (tmp_path / "cut.keras").write_bytes(b"PK\x03\x04 cut short")  # fails as the model is built
    one_line_error(_train(cli, tmp_path, f"model.init_from={tmp_path / 'cut.keras'}", cwd=tmp_path),
                   "cut.keras cannot be loaded (not a complete zip archive): it is damaged")
    assert list((tmp_path / "runs" / "image_classification").iterdir()) == []


def test_truncated_model_keras(cli, tmp_path, smoke_config):
    from training.config import save_yaml

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_yaml(smoke_config(), RunDir(run_dir).config)
    RunDir(run_dir).model.write_bytes(b"PK\x03\x04 cut short")
    one_line_error(cli("evaluate", "--run", str(run_dir)), "model.keras cannot be loaded",
                   "damaged or was not written completely")


def test_export_name_outside_the_export_dir(cli, tmp_path):
    one_line_error(cli("export", "--run", str(tmp_path), "--name", ".."), "must be a plain name")


def test_ports_in_use_are_errors(cli, served):
    export = served["export_dir"] / "fashion"
    # The REST port of the running server.
    one_line_error(cli("serve", f"--model_base_path={export}", f"--rest_api_port={served['rest_port']}",
                       "--port=-1"), "REST port", "in use")
    # Its gRPC port: grpc would share it (SO_REUSEPORT) and take half the connections.
    one_line_error(cli("serve", f"--model_base_path={export}", "--rest_api_port=0",
                       f"--port={served['grpc_port']}"), "gRPC port", "in use")


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_with_a_missing_file_or_a_text(cli, served, protocol):
    where = ["--url", served["url"]] if protocol == "rest" else ["--grpc", served["grpc"]]
    one_line_error(cli("predict", "--model", "fashion", *where, "no/such/shoe.png"),
                   "No such file: no/such/shoe.png")
    one_line_error(cli("predict", "--model", "fashion", *where, "a shoe"),
                   "is not an image or .npy file, and this model takes numbers")


def _rest(served, body=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(f"{served['url']}/v1/models/fashion:predict", data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


IMAGE = np.zeros((28, 28, 1), np.uint8).tolist()

REST_CASES = [
    ("nested_40000_deep", None, b"[" * 40000 + b"]" * 40000, "nested too deeply"),
    ("signature_name_not_a_string", {"instances": [IMAGE], "signature_name": ["a"]}, None,
     "'signature_name' must be a string"),
    ("wrong_key_in_instance", {"instances": [{"imag": IMAGE}]}, None,
     "must have exactly the input 'image'; got the keys ['imag']"),
    ("booleans_as_pixels", {"instances": [[[[True]] * 28] * 28]}, None,
     "must be numbers of type uint8 (not booleans)"),
    ("pixel_300", {"instances": [[[[300]] * 28] * 28]}, None, "must be integers in [0, 255]"),
    ("pixel_fraction", {"instances": [[[[0.5]] * 28] * 28]}, None, "must be integers in [0, 255]"),
    ("27_rows", {"instances": [[[[0]] * 28] * 27]}, None, "has shape [1, 27, 28, 1]"),
    ("ragged", {"instances": [IMAGE, IMAGE[:3]]}, None, "is ragged"),
    ("instances_not_a_list", {"instances": 5}, None, "'instances' must be a non-empty list"),
    ("body_not_an_object", [1, 2], None, "must be a JSON object"),
]


@pytest.mark.parametrize("case_id, body, raw, expected", REST_CASES, ids=[c[0] for c in REST_CASES])
def test_bad_rest_request_is_a_400_with_one_line(served, case_id, body, raw, expected):
    code, answer = _rest(served, body, raw)
    assert code == 400 and set(answer) == {"error"}, (code, answer)
    assert expected in answer["error"] and "\n" not in answer["error"], answer


GRPC_CASES = [  # the same checks and messages as REST (one validator)
    ("int32_300_into_uint8", np.full((1, 28, 28, 1), 300, np.int32), "must be integers in [0, 255]"),
    ("27_rows", np.zeros((1, 27, 28, 1), np.uint8), "has shape [1, 27, 28, 1]"),
    ("3_channels", np.zeros((1, 28, 28, 3), np.uint8), "has shape [1, 28, 28, 3]"),
    ("strings_for_pixels", np.array([[b"a"]], object), "must be numbers of type uint8"),
    ("booleans_as_pixels", np.ones((1, 28, 28, 1), bool), "(not booleans)"),
    ("fractions", np.full((1, 28, 28, 1), 0.5, np.float32), "must be integers in [0, 255]"),
]


@pytest.mark.parametrize("case_id, array, expected", GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_bad_grpc_request_is_invalid_argument(served, case_id, array, expected):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(served["grpc"]))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fashion"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(array))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in raised.value.details(), raised.value.details()


@pytest.mark.parametrize("app, content, key, expected", [
    ("tabular_regression", "y,x1,x1\n1,2,3\n4,5,6\n", "target=y", "names the column(s) 'x1' more than once"),
    ("tabular_regression", "y,x1\n", "target=y", "has a header row and no data rows"),
    ("sequence_modeling", "text,label\n" + "text 8,0\ntext 8,1\n" * 30, "text_column=text",
     "The training split holds no texts: texts are split by a hash of the text"),
], ids=["repeated_column", "header_only", "identical_texts"])
def test_bad_csv_is_one_line(cli, tmp_path, app, content, key, expected):
    (tmp_path / "data.csv").write_text(content)
    args = ["train", "--app", app, "--set", f"data.path={tmp_path / 'data.csv'}", "--set", f"data.{key}",
            "--set", f"run_dir={tmp_path / 'run'}", "--set", "runtime.verbose=0"]
    one_line_error(cli(*args), expected)
    assert not (tmp_path / "run").exists()


def test_csv_with_a_byte_order_mark_and_a_long_field_reads_as_written(tmp_path):
    from training.datasets import csv_rows

    long_text = "word " * 40_000  # 200,000 characters: over the csv module's default limit
    (tmp_path / "excel.csv").write_text(f"text,label\n{long_text},1\nshort,0\n", encoding="utf-8-sig")
    rows = csv_rows(tmp_path / "excel.csv", {"text_column": "text"})
    assert [(line, row["text"], row["label"]) for line, row in rows] == [(2, long_text, "1"),
                                                                         (3, "short", "0")]


@functools.cache
def bomb(side=15000):
    """The issue's decompression bomb: a gray PNG of side x side zeros, about 218 KB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def _pil(fmt, mode="RGB", **kw):
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, (301, 157)).save(out, fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize("make, size", [
    (lambda: _pil("PNG", "L"), (301, 157)),
    (lambda: _pil("JPEG", progressive=True, exif=b"Exif\0\0" + b"x" * 60000), (301, 157)),
    (lambda: _pil("GIF", "P"), (301, 157)),
    (lambda: _pil("BMP"), (301, 157)),
    (lambda: _pil("WEBP"), (301, 157)),
    (lambda: _pil("WEBP", "RGBA", lossless=True), (301, 157)),
    (bomb, (15000, 15000)),
    (lambda: bomb()[:40], (15000, 15000)),  # the header alone says it
    (lambda: np.random.default_rng(0).bytes(500), None),
    (lambda: b"BMW is a car", None),
], ids=["png", "jpeg_after_60kb_of_exif", "gif", "bmp", "webp", "webp_lossless", "bomb",
        "bomb_header", "random_bytes", "text"])
def test_declared_image_sizes_are_read_without_decoding(make, size):
    from serving.image_header import declared_size

    assert declared_size(make()) == size


def _bad_images(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb())
    (tmp_path / "random.png").write_bytes(np.random.default_rng(0).bytes(500))
    (tmp_path / "cut.png").write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy()[:40])
    os.mkfifo(tmp_path / "pipe.png")
    return {"bomb.png": "declares 15000x15000 = 225,000,000 pixels, more than data.max_image_pixels",
            "random.png": "is not a readable image: its bytes are not a JPEG, PNG",
            "cut.png": "is not a readable image (",
            "pipe.png": "is a FIFO (named pipe), not a regular file",
            "/dev/zero": "/dev/zero is a character device, not a regular file"}


def test_predict_refuses_bombs_garbage_and_special_files(served, tmp_path):
    from training.errors import DataError
    from training.export.predict import predict
    from training.registry import get_app, load_config

    app = get_app("image_classification")(load_config("image_classification", None, SMOKE))
    for name, expected in _bad_images(tmp_path).items():
        path = name if name.startswith("/") else str(tmp_path / name)
        with pytest.raises(DataError) as raised:  # `predict --run` prints it as one line
            predict(app, served["model"], [path])
        assert expected in str(raised.value) and "\n" not in str(raised.value), raised.value


def test_a_text_model_takes_a_missing_path_for_an_error_and_texts_after_text():
    from serving.client import ClientError, example_kind

    with pytest.raises(ClientError, match=r"No such file: reviews/tpyo.txt \(to send the item "
                                          r"itself as a text, pass --text\)"):
        example_kind("reviews/tpyo.txt", takes_text=True)
    assert example_kind("reviews/tpyo.txt", takes_text=True, text=True) == "text"
    assert example_kind("A fine film, 10/10.", takes_text=True) == "text"
    with pytest.raises(ClientError, match="No such file: a shoe$"):
        example_kind("a shoe", takes_text=False)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_served_image_bytes_are_checked_before_they_decode(served, protocol):
    cases = {bomb(8000): "declares 8000x8000 = 64,000,000 pixels, more than the server's "
                         "--max_image_pixels=50,000,000",  # 62 KB: within the fixture's body limit
             np.random.default_rng(0).bytes(500): "Input 'image_bytes' item 0 is not a readable "
                                                  "image: its bytes are not a JPEG, PNG, GIF",
             tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy()[:60]:
                 "Input 'image_bytes' holds bytes that are not a readable image ("}
    for data, expected in cases.items():
        if protocol == "rest":
            code, answer = _rest(served, {"signature_name": "image_bytes",
                                          "instances": [{"b64": base64.b64encode(data).decode()}]})
            assert code == 400 and expected in answer["error"], answer
        else:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(
                grpc.insecure_channel(served["grpc"]))
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = "fashion", "image_bytes"
            request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([data]))
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(request, timeout=60)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert expected in raised.value.details(), raised.value.details()
