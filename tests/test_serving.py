"""Export + serving: TF Serving's REST contract, gRPC, new versions, concurrency, bad input."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving.flags import add_flags
from serving.json_tensors import BadRequest, to_array
from serving.layout import parse_model_config_file
from serving.server import make_server_from_flags
from training.config import load_config
from training.registry import get_app
from training.run import export_model

GOLDEN = Path(__file__).parent / "golden"
IMAGES = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _export(export_dir):
    """An (untrained, seeded) Fashion-MNIST classifier exported the way `train` does."""
    config = load_config("image_classification", None, [
        f"export.dir={export_dir}", "export.name=fashion", "model.width_multiplier=0.25"])
    app = get_app("image_classification")(config)
    keras.utils.set_random_seed(0)
    model = app.build_model()
    return model, export_model(app, model, config)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running stand-in (REST + gRPC) on free loopback ports, polling every 0.1 s."""
    export_dir = tmp_path_factory.mktemp("export")
    model, version_dir = _export(export_dir)
    import argparse

    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args([f"--model_config_file={export_dir / 'models.config'}",
                              "--rest_api_port=0", "--port=0",
                              "--file_system_poll_wait_seconds=0.1", "--max_body_bytes=100000"])
    server, grpc_server, repository = make_server_from_flags(args)
    repository.start_polling()
    grpc_server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "grpc": f"127.0.0.1:{args.port}",
           "model": model, "export_dir": export_dir, "version_dir": version_dir}
    server.shutdown()
    grpc_server.stop(grace=None)
    repository.stop()


def _call(url, body=None, raw=None, method=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _golden(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def test_status_matches_tf_serving(served):
    assert _call(f"{served['url']}/v1/models/fashion") == (200, _golden("status"))
    assert _call(f"{served['url']}/v1/models/fashion/versions/1") == (200, _golden("status"))


def test_metadata_matches_tf_serving(served):
    code, body = _call(f"{served['url']}/v1/models/fashion/metadata")
    assert code == 200
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    # Tensor names inside the graph are TensorFlow's business; the contract is the rest.
    for tensors in (signature["inputs"], signature["outputs"]):
        for info in tensors.values():
            info.pop("name")
    assert body["model_spec"] == _golden("metadata")["model_spec"]
    assert signature == _golden("metadata")["serving_default"]


def test_predict_row_and_columnar_give_the_keras_predictions(served):
    expected = served["model"].predict(IMAGES, verbose=0)
    code, rows = _call(f"{served['url']}/v1/models/fashion:predict",
                       {"instances": IMAGES.tolist()})
    assert code == 200 and len(rows["predictions"]) == 3
    assert set(rows["predictions"][0]) == {"probabilities", "class_id", "class_name"}
    got = np.array([p["probabilities"] for p in rows["predictions"]])
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert [p["class_id"] for p in rows["predictions"]] == list(np.argmax(expected, -1))
    code, columns = _call(f"{served['url']}/v1/models/fashion/versions/1:predict",
                          {"inputs": {"image": IMAGES.tolist()}, "signature_name": "serving_default"})
    assert code == 200 and columns["outputs"]["class_name"] == [p["class_name"] for p in rows["predictions"]]
    code, named = _call(f"{served['url']}/v1/models/fashion:predict",
                        {"instances": [{"image": IMAGES[0].tolist()}]})
    assert code == 200 and named["predictions"][0]["class_id"] == rows["predictions"][0]["class_id"]


@pytest.mark.parametrize("case", _golden("errors"), ids=lambda c: c["id"])
def test_errors_match_tf_serving_codes(served, case):
    raw = case["raw"].encode() if "raw" in case else None
    if "raw_size" in case:
        raw = b" " * case["raw_size"]
    code, body = _call(served["url"] + case["path"], case.get("body"), raw, case.get("method"))
    assert code == case["code"]
    assert set(body) == {"error"} and case["error_contains"] in body["error"]


def test_survives_200_concurrent_requests_and_garbage(served):
    url = f"{served['url']}/v1/models/fashion:predict"
    good = {"instances": IMAGES[:1].tolist()}

    def one(i):
        if i % 5 == 0:
            return _call(url, raw=b"{not json")[0]
        return _call(url, good)[0]

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(one, range(200)))
    assert codes.count(200) == 160 and codes.count(400) == 40
    assert _call(url, good)[0] == 200  # still alive


def test_grpc_gives_the_rest_answer(served, tmp_path):
    from serving.client import grpc_predict, rest_predict

    paths = []
    for i, image in enumerate(IMAGES):
        path = tmp_path / f"{i}.png"
        path.write_bytes(tf.io.encode_png(image).numpy())
        paths.append(str(path))
    rest = rest_predict(served["url"], "fashion", paths)
    grpc = grpc_predict(served["grpc"], "fashion", paths)
    assert [p["class_name"] for p in rest["predictions"]] == [p["class_name"] for p in grpc["predictions"]]
    assert np.allclose([p["probabilities"] for p in rest["predictions"]],
                       [p["probabilities"] for p in grpc["predictions"]], atol=1e-6)


def test_new_version_is_served_without_restart(served):
    _, version_dir = _export(served["export_dir"])
    assert version_dir.name == "2"
    deadline = time.time() + 30
    while time.time() < deadline:
        code, body = _call(f"{served['url']}/v1/models/fashion")
        if body["model_version_status"][0]["version"] == "2":
            break
        time.sleep(0.1)
    assert body["model_version_status"][0]["version"] == "2"
    assert _call(f"{served['url']}/v1/models/fashion/versions/2:predict",
                 {"instances": IMAGES[:1].tolist()})[0] == 200


def test_models_config_is_a_valid_model_config_list(served):
    models = parse_model_config_file(served["export_dir"] / "models.config")
    assert models == {"fashion": str((served["export_dir"] / "fashion").resolve())}


def test_b64_strings_and_dtype_checks():
    spec = tf.TensorSpec([None], tf.string, name="text")
    encoded = base64.b64encode(b"\x00\xffbytes").decode()
    assert list(to_array("text", [{"b64": encoded}, "plain"], spec)) == [b"\x00\xffbytes", b"plain"]
    with pytest.raises(BadRequest, match="base64"):
        to_array("text", [{"b64": "***"}], spec)
    with pytest.raises(BadRequest, match=r"\[0, 255\]"):
        to_array("image", [[256]], tf.TensorSpec([None, 1], tf.uint8))


def test_saved_model_cli_runs_on_a_saved_npy(served, tmp_path):
    np.save(tmp_path / "x.npy", IMAGES)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "run", "--dir", str(served["version_dir"]), "--tag_set", "serve",
                             "--signature_def", "serving_default", "--inputs", f"image={tmp_path / 'x.npy'}",
                             "--outdir", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    assert np.max(np.abs(probabilities - served["model"].predict(IMAGES, verbose=0))) <= 1e-5


def test_serve_and_predict_commands_end_to_end(served, tmp_path):
    port = _free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--model_name=fashion",
         f"--model_base_path={served['export_dir'] / 'fashion'}", f"--rest_api_port={port}",
         "--port=-1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if _call(f"{url}/v1/models/fashion")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        image = tmp_path / "shoe.png"
        image.write_bytes(tf.io.encode_png(IMAGES[0]).numpy())
        result = subprocess.run([sys.executable, "-m", "training", "predict", "--url", url,
                                 "--model", "fashion", str(image)],
                                capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout)["predictions"][0]["class_name"] in \
            get_app("image_classification")(load_config("image_classification")).class_names()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_failed_export_leaves_nothing_behind(tmp_path):
    from serving.layout import versions
    from training.app import ServingSignature
    from training.export import export_saved_model

    model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])

    def broken(x):
        raise RuntimeError("boom while tracing")

    with pytest.raises(RuntimeError, match="boom"):
        export_saved_model(model, ServingSignature([tf.TensorSpec([None, 2], tf.float32, name="x")],
                                                   broken), tmp_path, "m")
    assert versions(tmp_path / "m") == [] and list((tmp_path / "m").iterdir()) == []
