"""Export + serving: TF Serving's REST contract, gRPC, new versions, concurrency, bad input."""

import base64
import json
import os
import shutil
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
from conftest import export_fashion, free_port  # noqa: E402

from serving.inputs import BadRequest
from serving.json_tensors import to_array
from serving.layout import parse_model_config_file
from serving.repository import ModelRepository
from training.registry import get_app, load_config

GOLDEN = Path(__file__).parent / "golden"
IMAGES = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)


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


def test_image_bytes_signature_gives_the_array_answer_over_rest_and_grpc(served, tmp_path):
    from serving.client import grpc_predict, rest_predict

    paths = []
    for i, image in enumerate(IMAGES):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(tf.io.encode_png(image).numpy())
    expected = served["model"].predict(IMAGES, verbose=0)
    url = f"{served['url']}/v1/models/fashion:predict"
    body = {"signature_name": "image_bytes",
            "instances": [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in paths]}
    status, answer = _call(url, body)
    assert status == 200, answer
    assert np.abs(np.array([p["probabilities"] for p in answer["predictions"]]) - expected).max() <= 1e-6
    for result in (rest_predict(served["url"], "fashion", [str(p) for p in paths], signature="image_bytes"),
                   grpc_predict(served["grpc"], "fashion", [str(p) for p in paths], signature="image_bytes")):
        assert np.abs(np.array([p["probabilities"] for p in result["predictions"]]) - expected).max() <= 1e-6

    # Another size and format is resized inside the model; bytes that are no image are a 400.
    jpeg = tf.io.encode_jpeg(np.repeat(IMAGES[0], 3, axis=-1)[:20]).numpy()
    status, answer = _call(url, {"signature_name": "image_bytes",
                                 "instances": [{"b64": base64.b64encode(jpeg).decode()}]})
    assert status == 200 and len(answer["predictions"][0]["probabilities"]) == 10
    status, answer = _call(url, {"signature_name": "image_bytes",
                                 "instances": [{"b64": base64.b64encode(b"not an image").decode()}]})
    assert status == 400 and "error" in answer


def test_new_version_is_served_without_restart(served):
    _, version_dir = export_fashion(served["export_dir"])
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
    port = free_port()
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
    from training.export.saved_model import export_saved_model

    model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])

    def broken(x):
        raise RuntimeError("boom while tracing")

    with pytest.raises(RuntimeError, match="boom"):
        export_saved_model(model, {"serving_default": ServingSignature(
            [tf.TensorSpec([None, 2], tf.float32, name="x")], broken)}, tmp_path, "m")
    assert versions(tmp_path / "m") == [] and list((tmp_path / "m").iterdir()) == []


def test_idle_and_half_open_connections_cost_no_thread_and_are_closed(served):
    """500 half-open sockets once held 519 threads for over a minute."""
    before = threading.active_count()
    sockets = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", served["rest_port"]), timeout=10)
        s.sendall(b"POST /v1/models/fashion:predict HTTP/1.1\r\nHost: x\r\n")  # never finished
        sockets.append(s)
    time.sleep(0.5)
    assert threading.active_count() - before < 10
    ok = _call(f"{served['url']}/v1/models/fashion:predict", {"instances": IMAGES[:1].tolist()})
    assert ok[0] == 200  # answered meanwhile
    time.sleep(2 + 1.5)  # --rest_api_timeout_in_ms=2000, checked every 0.5 s
    closed = 0
    for s in sockets:
        try:
            closed += s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
    assert closed == len(sockets)


def test_a_large_request_runs_in_slices_with_the_same_answer(served):
    from serving.repository import ROWS_PER_CALL

    images = np.random.default_rng(1).integers(0, 256, (ROWS_PER_CALL * 2 + 7, 28, 28, 1), np.uint8)
    loaded = ModelRepository({"fashion": served["export_dir"] / "fashion"}).get("fashion")
    fn = loaded.signature("serving_default")
    sliced = loaded.run(fn, {"image": images})
    whole = fn(image=tf.constant(images))
    assert sliced["probabilities"].shape == (len(images), 10)
    assert np.allclose(sliced["probabilities"], whole["probabilities"].numpy(), atol=1e-6)
    assert list(sliced["class_id"]) == list(whole["class_id"].numpy())


def test_a_broken_newest_version_is_skipped_at_start_up_with_one_warning(served, tmp_path):
    base = tmp_path / "fashion"
    shutil.copytree(served["version_dir"], base / "1")
    (base / "9").mkdir()  # an empty dir, as a copy that has not started
    log = []
    repository = ModelRepository({"fashion": base}, log=log.append)
    warnings = lambda: [line for line in log if line.startswith("warning")]  # noqa: E731
    assert repository.get("fashion").version == 1
    for _ in range(3):  # the poller looks again and again
        repository.refresh()
    assert len(warnings()) == 1 and "skipping fashion version 9" in warnings()[0]
    shutil.rmtree(base / "9")
    shutil.copytree(served["version_dir"], base / "9")  # the copy completes
    repository.refresh()
    assert repository.get("fashion").version == 9 and len(warnings()) == 1
    assert log[-1] == "fashion version 9 is AVAILABLE"


def test_export_is_readable_by_others_refuses_paths_and_cleans_up_after_a_killed_one(tmp_path):
    from serving.layout import versions
    from training.app import ServingSignature
    from training.errors import ExportError
    from training.export.saved_model import export_saved_model

    model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
    signature = {"serving_default": ServingSignature([tf.TensorSpec([None, 2], tf.float32, name="x")],
                                                     lambda x: {"y": model(x)})}
    with pytest.raises(ExportError, match="must be a plain name"):
        export_saved_model(model, signature, tmp_path / "export", "..")
    assert not (tmp_path / "export").exists() or list((tmp_path / "export").iterdir()) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    abandoned = tmp_path / "export" / "m" / f".tmp-1-{dead.pid}-abcd1234"
    abandoned.mkdir(parents=True)  # what an export killed mid-write leaves
    live = tmp_path / "export" / "m" / f".tmp-1-{os.getpid()}-abcd1234"
    live.mkdir()  # an export still running in another thread of a live process
    old_umask = os.umask(0o022)
    try:
        version_dir = export_saved_model(model, signature, tmp_path / "export", "m")
    finally:
        os.umask(old_umask)
    assert versions(tmp_path / "export" / "m") == [1] and not abandoned.exists() and live.exists()
    for path in [version_dir, *version_dir.rglob("*")]:
        assert path.stat().st_mode & 0o005 == 0o005 if path.is_dir() else path.stat().st_mode & 0o004, path


def test_a_request_trickled_a_byte_at_a_time_is_cut_off(served):
    """Slowloris: each byte counts as activity, so the idle timeout alone never fires."""
    s = socket.create_connection(("127.0.0.1", served["rest_port"]), timeout=1)
    header = b"POST /v1/models/fashion:predict HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100
    start = time.time()
    cut_off = None
    for byte in header:
        try:
            s.sendall(bytes([byte]))
            if s.recv(1) == b"":
                cut_off = time.time() - start
                break
        except socket.timeout:
            continue  # still open; the recv waited the 1 s between bytes
        except (BrokenPipeError, ConnectionResetError):
            cut_off = time.time() - start
            break
    s.close()
    assert cut_off is not None and cut_off < 2 + 2  # --rest_api_timeout_in_ms=2000, checked every 0.5 s
