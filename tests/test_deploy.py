"""Deployment: LiteRT export (float and int8), scoring any export on the test split, predict
without a server, TF Serving's warm-up file and server-side batching."""

import json
import shutil
import threading

import numpy as np
import tensorflow as tf
from conftest import one_line_error

from serving.batching import BatchingParameters, read_parameters
from serving.repository import ModelRepository
from serving.warmup import WARMUP_FILE, read_warmup, replay, write_warmup
from training.export import artifacts
from training.pipeline.compile import run_compile_args
from training.pipeline.inputs import make_dataset
from training.run_dir import RunDir, load_run


def _evaluate(cli, run, *args):
    result = cli("evaluate", "--run", str(run), *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_litert_float_and_int8_score_like_the_saved_model(finished_run, cli):
    run, export = str(finished_run["run"]), str(finished_run["export_dir"])
    result = cli("export", "--run", run, "--export-dir", export, "--format", "litert")
    assert result.returncode == 0, result.stderr
    float_dir = finished_run["export_dir"] / "image_classification" / "litert" / "1"
    assert result.stdout.strip() == str(float_dir)
    result = cli("export", "--run", run, "--export-dir", export, "--format", "litert",
                 "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    int8_dir = finished_run["export_dir"] / "image_classification" / "litert" / "2"
    details = json.loads((int8_dir / "model.json").read_text())
    assert details["quantize"] == "int8" and details["labels"] == "labels.txt"
    assert details["inputs"] == [{"name": "image", "shape": [-1, 28, 28, 1], "dtype": "uint8"}]
    assert details["outputs"][0]["dtype"] == "float32"  # float output kept without --int8-io
    labels = (int8_dir / "labels.txt").read_text().splitlines()
    assert len(labels) == 10 and labels[0] == "T-shirt/top"
    float_size = (float_dir / "model.tflite").stat().st_size
    # Weights shrink 4x; a model this narrow (width 0.25) keeps its graph's bytes.
    assert details["bytes"] == (int8_dir / "model.tflite").stat().st_size <= 0.4 * float_size

    run_metrics = finished_run["test"]  # train's model.evaluate on the test split
    litert_int8 = _evaluate(cli, run, "--artifact", str(int8_dir / "model.tflite"))
    # The other two scored as evaluate --artifact does, on one load of the run.
    config, app, model = load_run(run)
    test_ds, _ = make_dataset(app, "test", config, tf.distribute.get_strategy())
    saved = artifacts.score(artifacts.open_artifact(finished_run["export"]), "probabilities",
                            test_ds, run_compile_args(app, model))
    litert_float = artifacts.score(artifacts.open_artifact(float_dir / "model.tflite"), "output_0",
                                   test_ds, run_compile_args(app, model))
    # A run trained in bfloat16 (auto, on a CPU with bfloat16 units) converts to LiteRT from a
    # float32 copy (litert.float32_copy), which scores within bfloat16's rounding, not 1e-4.
    mixed = finished_run["precision"]["policy"] != "float32"
    for scored, tolerance in ((saved, 1e-4), (litert_float, 0.02 if mixed else 1e-4)):
        assert scored.keys() == run_metrics.keys()
        assert all(abs(scored[k] - run_metrics[k]) < tolerance for k in scored), (scored, run_metrics)
    assert litert_int8.pop("examples") == 256 and litert_int8.keys() == run_metrics.keys()
    assert abs(litert_int8["accuracy"] - litert_float["accuracy"]) <= 0.03  # 256 test images
    assert litert_int8["loss"] != litert_float["loss"]  # it is the int8 model that was scored


def test_litert_bad_input_is_one_line_and_leaves_no_version(finished_run, cli, tmp_path,
                                                            monkeypatch):
    run, export = str(finished_run["run"]), str(tmp_path / "export")
    one_line_error(cli("export", "--run", run, "--format", "litert", "--quantize", "int4"),
                   "--quantize 'int4'", "none, dynamic, float16, int8")
    one_line_error(cli("export", "--run", run, "--quantize", "int8"),
                   "--quantize, --int8-io and --per-tensor are for --format litert")
    one_line_error(cli("export", "--run", run, "--format", "onnx"), "saved_model, litert")
    one_line_error(cli("export", "--run", str(tmp_path), "--format", "litert"),
                   "is not a finished run")
    one_line_error(cli("export", "--run", run, "--export-dir", export, "--format", "litert",
                       "--int8-io"), "--int8-io needs --quantize int8")
    one_line_error(cli("export", "--run", run, "--export-dir", export, "--format", "litert",
                       "--quantize", "dynamic", "--per-tensor"), "--per-tensor needs --quantize int8")
    corrupt = tmp_path / "model.tflite"
    corrupt.write_bytes(b"TFL3" + bytes(200))
    one_line_error(cli("evaluate", "--run", run, "--artifact", str(corrupt)),
                   "is not a LiteRT model that loads", "export it again")
    other = tmp_path / "other.tflite"  # an artefact of another model: 4 numbers in
    import keras

    inputs = keras.Input((4,), name="features")
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).export(str(other), format="litert",
                                                               verbose=False)
    one_line_error(cli("evaluate", "--run", run, "--artifact", str(other)),
                   "takes features [None, 4] float32", "image [None, 28, 28, 1] uint8",
                   "give an artefact exported from this run")

    def fails_midway(self, path, **kwargs):  # the converter dies after writing part of a file
        open(path, "wb").write(b"TFL3 half")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(keras.Model, "export", fails_midway)
    one_line_error(cli("export", "--run", run, "--export-dir", export, "--format", "litert"),
                   "LiteRT cannot convert", "converter crashed")
    litert_dir = tmp_path / "export" / "image_classification" / "litert"
    assert list(litert_dir.iterdir()) == []


def test_predict_without_a_server_names_the_top_classes(finished_run, cli, tmp_path):
    from conftest import fashion_train

    images, labels = fashion_train()
    paths = []
    for i in range(2):
        path = tmp_path / f"item{i}.png"
        path.write_bytes(tf.io.encode_png(images[i]).numpy())
        paths.append(str(path))
    result = cli("predict", "--run", str(finished_run["run"]), *paths, "--json")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    served = tf.saved_model.load(finished_run["export"]).signatures["serving_default"]
    expected = served(image=tf.constant(images[:2]))["probabilities"].numpy()
    assert [r["input"] for r in results] == paths
    assert np.max(np.abs(np.array([r["probabilities"] for r in results]) - expected)) < 1e-5
    result = cli("predict", "--run", str(finished_run["run"]), *paths, "--top", "2")
    assert result.returncode == 0, result.stderr
    names = json.loads(RunDir(finished_run["run"]).metrics.read_text())["class_names"]
    first = np.argsort(-expected[0])[:2]
    assert result.stdout.splitlines()[0] == (
        f"{paths[0]}: {names[first[0]]} {expected[0][first[0]]:.3f}, "
        f"{names[first[1]]} {expected[0][first[1]]:.3f}")
    (tmp_path / "notes.txt").write_text("not an image")
    one_line_error(cli("predict", "--run", str(finished_run["run"]), str(tmp_path / "notes.txt")),
                   "this model takes uint8 [28, 28, 1]", "image files")
    one_line_error(cli("predict", str(tmp_path / "notes.txt")), "Give --run DIR", "--model NAME")


def test_export_writes_warm_up_requests_that_the_server_replays(served, tmp_path):
    requests = read_warmup(served["version_dir"])
    assert [name for name, _ in requests] == ["serving_default"] * 3 + ["image_bytes"] * 3
    image = requests[0][1]["image"]
    assert image.dtype == np.uint8 and image.shape == (1, 28, 28, 1) and image.any()  # real pixels
    base = tmp_path / "fashion"
    shutil.copytree(served["version_dir"], base / "1")
    shutil.copytree(served["version_dir"], base / "2")
    # A warm-up file that does not match the signature: version 2 must not be served.
    wrong = np.zeros((1, 32, 32, 3), np.float32)
    write_warmup(base / "2", "fashion", [("serving_default", {"image": wrong})])
    log = []
    repository = ModelRepository({"fashion": base}, log=log.append)
    assert repository.get("fashion").version == 1
    assert any(line.startswith("warning: skipping fashion version 2") and
               "warm-up request 1 does not fit signature 'serving_default'" in line for line in log), log
    assert any(line.startswith("fashion version 1: replayed 6 warm-up requests in ") for line in log)
    (base / "2" / WARMUP_FILE).write_bytes(b"not a TFRecord")
    repository.refresh()
    assert repository.get("fashion").version == 1
    assert "is not a TFRecord file of PredictionLog protos" in log[-1]
    # More records than TF Serving takes: refused at once (it held back newer versions for minutes).
    write_warmup(base / "2", "fashion", requests[:1] * 1001)
    repository.refresh()
    assert repository.get("fashion").version == 1
    assert "holds more than 1,000 records, TF Serving's limit" in log[-1]


def test_a_long_warm_up_is_cut_at_its_time_limit(served):
    requests = read_warmup(served["version_dir"]) * 50
    module = tf.saved_model.load(str(served["version_dir"]))
    lines = []
    done, seconds = replay(module.signatures, requests, lambda fn, arrays: fn(**arrays), lines.append,
                           max_seconds=0.0)
    assert done < len(requests)


def test_batching_joins_concurrent_requests_and_answers_each_its_own(served):
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000,
                                max_enqueued_batches=10, num_batch_threads=1)
    batched = ModelRepository({"fashion": served["version_dir"].parent}, log=lambda _: None,
                              batching=params).get("fashion")
    alone = ModelRepository({"fashion": served["version_dir"].parent},
                            log=lambda _: None).get("fashion")
    fn = batched.signature("serving_default")
    images = np.random.default_rng(1).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    answers = [None] * len(images)

    def ask(i):
        answers[i] = batched.run(fn, {"image": images[i:i + 1]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = alone.run(alone.signature("serving_default"), {"image": images})
    got = np.concatenate([a["probabilities"] for a in answers])
    assert np.max(np.abs(got - expected["probabilities"])) < 1e-5
    assert [int(a["class_id"][0]) for a in answers] == expected["class_id"].tolist()
    batcher = batched.batchers["serving_default"]
    assert batcher.largest == 8 and batcher.batches <= 4  # 16 requests, not 16 model calls
    batched.close()


def test_batching_parameters_file_and_flags(cli, tmp_path, served):
    assert read_parameters("serving/batching_parameters.txt") == BatchingParameters(
        max_batch_size=32, batch_timeout_micros=2000, max_enqueued_batches=100, num_batch_threads=2)
    bad = tmp_path / "batching.txt"
    bad.write_text("max_batch_size { value: 32 }\nmax_batch_sise { value: 8 }\n")
    model = f"--model_base_path={served['version_dir'].parent}"
    one_line_error(cli("serve", model, "--enable_batching", f"--batching_parameters_file={bad}"),
                   "cannot use 'max_batch_sise'", "max_batch_size { value: N }")
    one_line_error(cli("serve", model, f"--batching_parameters_file={bad}"),
                   "only with --enable_batching")


def test_directories_named_like_versions_that_are_none_are_ignored_with_one_line(served, tmp_path,
                                                                                 capsys):
    from training.export.saved_model import NextVersion

    base = tmp_path / "fashion"
    shutil.copytree(served["version_dir"], base / "1")
    for odd in ("\u00b2", "99999999999999999999"):  # "²".isdigit() is True; the other is over int64
        (base / odd).mkdir()
    log = []
    repository = ModelRepository({"fashion": base}, log=log.append)
    repository.refresh()
    repository.refresh()
    assert repository.get("fashion").version == 1
    told = sorted(line for line in log if "is not a version" in line)
    assert [line.split(" is not")[0] for line in told] == [
        f"warning: {base / '99999999999999999999'}", f"warning: {base / chr(0xb2)}"]
    assert NextVersion(base).version == 2
    assert capsys.readouterr().out.count("is not a version: a version directory is named by a "
                                         "plain ASCII integer") == 2
