"""Distribution and precision: mirrored equals one device; bf16 and XLA for every app; TPU errors."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from serving.warmup import read_warmup
from training.errors import ConfigError
from training.pipeline import train
from training.registry import load_config
from training.run_dir import RunDir
from training.runtime.strategy import make_strategy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("app,extra", [
    # Asks for 4 steps per execution: one device runs 4, mirrored drops to 1
    # (keras-team/keras#19246, training/pipeline/compile.py); the weights must still agree.
    # Class weights too: a third element of each example, split between the replicas.
    ("sequence_modeling", ["model.units=16", "runtime.steps_per_execution=4",
                           "data.class_weight=balanced"]),
    pytest.param("unsupervised_pretraining", ["model.pretrained=false", "model.hidden=32,16"],
                 marks=pytest.mark.slow),
])
def test_two_replicas_end_with_the_one_replica_weights(app, extra):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "mirrored_equivalence.py"), app, *extra],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [1, 2] and out["global_batch"] == [16, 16]
    assert out["max_rel_diff"] < 1e-4, out
    # The reported loss is the per-example mean over the global batch, not a per-replica sum.
    np.testing.assert_allclose(out["train_loss"][1], out["train_loss"][0], rtol=1e-4)


def write_csv(path):
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "y"])
        for _ in range(200):
            a, b = rng.normal(size=2)
            writer.writerow([a, b, 2 * a - b + rng.normal(0, 0.1)])


def write_series(path, n=300):
    values = 5000 + 50 * np.sin(np.arange(n) / 4)  # large values: bfloat16 has steps of 32 here
    path.write_text("load\n" + "\n".join(f"{v:.3f}" for v in values) + "\n")


def app_overrides(tmp_path):
    write_csv(tmp_path / "t.csv")
    write_series(tmp_path / "series.csv")
    return {
        "image_classification": ["data.limit=128", "model.width_multiplier=0.25"],
        "sequence_modeling": ["data.limit=128", "model.units=16"],
        "unsupervised_pretraining": ["data.limit=128", "model.hidden=24,12", "pretrain.epochs=1"],
        "tabular_regression": [f"data.path={tmp_path / 't.csv'}", "data.target=y"],
        "image_autoencoder": ["data.limit=128"],
        "forecasting": ["task=forecasting", f"data.path={tmp_path / 'series.csv'}",
                        "data.column=load", "data.sequence_length=12", "model.units=8"],
    }


XLA_ON_CPU_IS_SLOW = pytest.mark.slow  # compiling convs and RBM steps takes ~15 s each
HALF = ("bfloat16", "float16", "half")


@pytest.mark.parametrize("app,runtime", [
    (app, "runtime.mixed_precision=true") for app in (
        "image_classification", "sequence_modeling", "unsupervised_pretraining", "tabular_regression",
        "image_autoencoder", "forecasting")
] + [
    ("sequence_modeling", "runtime.jit_compile=true"),
    ("tabular_regression", "runtime.jit_compile=true"),
    pytest.param("image_classification", "runtime.jit_compile=true", marks=XLA_ON_CPU_IS_SLOW),
    pytest.param("unsupervised_pretraining", "runtime.jit_compile=true", marks=XLA_ON_CPU_IS_SLOW),
])
def test_every_app_trains_with_bfloat16_and_with_xla(tmp_path, app, runtime):
    import keras
    import tensorflow as tf

    name = "sequence_modeling" if app == "forecasting" else app
    config = load_config(name, None, app_overrides(tmp_path)[app] + [
        runtime, "epochs=1", "batch_size=32", "runtime.verbose=0", "callbacks.tensorboard=false",
        f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}"])
    metrics = train(config)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run's policy ended with it
    assert all(np.isfinite(v) for v in metrics["test"].values()), metrics["test"]
    if "mixed_precision" in runtime:
        assert metrics["precision"]["policy"] == "mixed_bfloat16"  # true on a CPU
    # The export answers in the dtypes of a float32 run: the model computed in bfloat16, but its
    # outputs (and the losses and metrics) stay float32.
    signature = tf.saved_model.load(metrics["export"]).signatures["serving_default"]
    dtypes = {k: v.dtype.name for k, v in {**signature.structured_input_signature[1],
                                            **signature.structured_outputs}.items()}
    assert not [k for k, d in dtypes.items() if d in HALF], dtypes
    # ... and its warm-up requests are ones that signature takes.
    requests = [inputs for name, inputs in read_warmup(metrics["export"]) if name == "serving_default"]
    assert requests
    for inputs in requests:
        answer = signature(**{k: tf.constant(v) for k, v in inputs.items()})
        assert not [k for k, v in answer.items() if v.dtype.name in HALF]


def test_a_bfloat16_run_converts_to_litert_from_a_float32_copy(tmp_path):
    """LiteRT has no bfloat16 kernels, and int8 calibration failed at the first bfloat16 op:
    the conversion starts from a float32 copy of the model, with the same weights."""
    import keras
    import tensorflow as tf

    from training.export.from_run import export_run
    from training.export.litert import float32_copy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2)) * [100.0, 1.0] + [500.0, 3.0]  # far from mean 0, variance 1
    y = 0.03 * x[:, 0] + x[:, 1]
    np.savetxt(tmp_path / "h.csv", np.column_stack([x, y]), delimiter=",", header="a,b,y", comments="")
    metrics = train(load_config("tabular_regression", None, [
        f"data.path={tmp_path / 'h.csv'}", "data.target=y", "runtime.mixed_precision=true",
        "epochs=3", "runtime.verbose=0", "callbacks.tensorboard=false",
        f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}"]))
    assert metrics["precision"]["policy"] == "mixed_bfloat16"
    litert = export_run(tmp_path / "run", format="litert", quantize="int8", export_dir=tmp_path / "export")
    details = json.loads((Path(litert) / "model.json").read_text())
    assert details["float32_copy"] and details["int8_check"]
    interpreter = tf.lite.Interpreter(model_path=str(Path(litert) / "model.tflite"))
    assert [d["dtype"] for d in interpreter.get_output_details()] == [np.float32]

    trained = keras.saving.load_model(RunDir(tmp_path / "run").model)
    copy = float32_copy(trained)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in trained.layers}
    # The copy keeps what set_weights alone would not: the adapted normalisation's statistics.
    rows = x[:8].astype("float32")
    np.testing.assert_allclose(copy(rows), trained(rows), rtol=0.02, atol=0.05)


def test_text_classification_in_bfloat16(tmp_path):
    with tfds.testing.mock_data(num_examples=32):
        config = load_config("sequence_modeling", None, [
            "data.name=imdb_reviews", "runtime.mixed_precision=true", "epochs=1", "model.units=8",
            "runtime.verbose=0", "callbacks.tensorboard=false", "export.enabled=false",
            f"run_dir={tmp_path / 'run'}"])
        metrics = train(config)
    assert np.isfinite(metrics["test"]["loss"])


def test_missing_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ConfigError, match="no TPU could be resolved.*strategy=auto"):
        make_strategy("tpu")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


MULTI_WORKER = ["--app", "sequence_modeling", "--set", "model.units=16", "--set", "data.limit=128",
                "--set", "epochs=2", "--set", "runtime.verbose=0", "--set", "callbacks.tensorboard=false",
                "--set", "runtime.steps_per_execution=1", "--set", "optimizer.schedule=constant",
                "--set", "callbacks.restore_best=false",
                # float32 on every machine: the workers' weights are compared to 1e-4
                "--set", "runtime.mixed_precision=false"]


def run_dir_of(stdout):
    return [line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("Run directory")][0]


def test_two_localhost_workers_agree_with_each_other_and_one_process(tmp_path):
    import keras

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    workers = f"localhost:{free_port()},localhost:{free_port()}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "training", "train", *MULTI_WORKER, "--set", "batch_size=8",
         "--workers", workers, "--task-index", str(i), "--set", f"run_dir={tmp_path / 'chief'}",
         "--set", f"export.dir={tmp_path / 'export'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "training", "train", *MULTI_WORKER, "--set", "batch_size=16",
         "--set", "strategy=one_device", "--set", f"run_dir={tmp_path / 'single'}",
         "--set", "export.enabled=false"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    chief_dir, worker_dir = (run_dir_of(out) for out, _ in outputs)
    assert chief_dir == str(tmp_path / "chief") and worker_dir != chief_dir  # only the chief
    assert (tmp_path / "export" / "sequence_modeling" / "1" / "saved_model.pb").exists()
    assert not (tmp_path / "export" / "sequence_modeling" / "2").exists()
    weights = [keras.saving.load_model(RunDir(d).model).get_weights()
               for d in (chief_dir, worker_dir, tmp_path / "single")]
    metrics = json.loads(RunDir(tmp_path / "chief").metrics.read_text())
    # MultiWorkerMirroredStrategy is an alias of CollectiveAllReduceStrategy.
    assert metrics["strategy"] == "CollectiveAllReduceStrategy" and metrics["global_batch_size"] == 16
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_upstream_keras_still_needs_the_multi_worker_patch():
    import inspect

    from keras.src.backend.tensorflow import trainer

    from training.runtime import multi_worker_patch

    build = inspect.getsource(multi_worker_patch.ORIGINAL_SYMBOLIC_BUILD)
    reduce = inspect.getsource(multi_worker_patch._ORIGINAL_REDUCE)
    message = ("Keras changed {}: check whether training/runtime/multi_worker_patch.py is still needed "
               "(keras-team/keras#20585) and drop what upstream fixed")
    assert '"MEAN"' in build and "axis=None" in build, message.format("_maybe_symbolic_build")
    assert 'strategy.reduce("MEAN", v, axis=0)' in reduce, message.format("reduce_per_replica")
    assert trainer.TensorFlowTrainer._maybe_symbolic_build in (
        multi_worker_patch.ORIGINAL_SYMBOLIC_BUILD, multi_worker_patch._maybe_symbolic_build)


@pytest.mark.parametrize("workers,index,match", [
    ("localhost:1", 0, "two or more"), ("localhost:1,localhost:2", 2, "task-index")])
def test_bad_worker_flags_name_the_fix(workers, index, match):
    from training.runtime.strategy import worker_tf_config

    with pytest.raises(ConfigError, match=match):
        worker_tf_config(workers, index)
