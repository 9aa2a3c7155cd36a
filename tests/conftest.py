"""Shared test fixtures: small real-data configs, a served model, the CLI in-process, and a
quiet TensorFlow."""

import argparse
import functools
import os
import re
import socket
import threading
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from training.cli import main  # noqa: E402
from training.registry import load_config  # noqa: E402

# Small but real: a narrow ResNet on a few hundred Fashion-MNIST images.
SMOKE = [
    "epochs=1", "batch_size=64", "data.limit=256", "model.width_multiplier=0.25",
    "runtime.verbose=0", "callbacks.tensorboard=false", "runtime.steps_per_execution=4",
]


@pytest.fixture
def smoke_config(tmp_path):
    """A one-epoch image_classification config writing only under tmp_path."""

    def make(*overrides):
        return load_config("image_classification", None, SMOKE + [
            f"run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'export'}", *overrides])

    return make


@functools.cache
def fashion_train():
    """Fashion-MNIST's training (images, labels) from the IDX files, read once per session."""
    from apps.image_classification.data import ImageSource

    return ImageSource("fashion_mnist").idx_arrays("train")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_fashion(export_dir):
    """An (untrained, seeded) Fashion-MNIST classifier exported the way `train` does."""
    import keras

    from training.export import export_model
    from training.registry import get_app

    config = load_config("image_classification", None, [
        f"export.dir={export_dir}", "export.name=fashion", "model.width_multiplier=0.25"])
    app = get_app("image_classification")(config)
    keras.utils.set_random_seed(0)
    model = app.build_model()
    return model, export_model(app, model, config)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished one-epoch image_classification run (SMOKE), exported by train: its
    metrics.json content, with `run` and `export` (the export root) as paths. Tests that
    export it again add versions; none of them may change its run dir."""
    from pathlib import Path

    from training.pipeline import train

    tmp = tmp_path_factory.mktemp("finished")
    metrics = train(load_config("image_classification", None, SMOKE + [
        f"run_dir={tmp / 'run'}", f"export.dir={tmp / 'export'}"]))
    return {**metrics, "run": Path(metrics["run_dir"]), "export_dir": tmp / "export"}


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A running stand-in (REST + gRPC) on free loopback ports, polling every 0.1 s, closing
    idle connections after 2 s."""
    from serving.flags import add_flags
    from serving.server import make_server_from_flags

    export_dir = tmp_path_factory.mktemp("export")
    model, version_dir = export_fashion(export_dir)
    parser = argparse.ArgumentParser()
    add_flags(parser)
    args = parser.parse_args([f"--model_config_file={export_dir / 'models.config'}",
                              "--rest_api_port=0", "--port=0", "--rest_api_timeout_in_ms=2000",
                              "--file_system_poll_wait_seconds=0.1", "--max_body_bytes=100000"])
    server, grpc_server, repository = make_server_from_flags(args)
    repository.start_polling()
    grpc_server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "grpc": f"127.0.0.1:{args.port}",
           "rest_port": server.server_port, "grpc_port": args.port,
           "model": model, "export_dir": export_dir, "version_dir": version_dir}
    server.shutdown()
    grpc_server.stop(grace=None)
    repository.stop()


def one_line_error(result, *expected):
    """Exit 2 and one `error: ...` line naming what is wrong, no traceback."""
    assert result.returncode == 2, (result.stdout[-1500:], result.stderr[-1500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-1500:]
    for text in expected:
        assert text in lines[0], lines[0]
    bare = re.sub(r"/[^\s,;:()']+", "/PATH", lines[0])  # a path is as long as the user made it
    assert len(bare) < 300, lines[0]
    return lines[0]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the command line in this process: (returncode, stdout, stderr)."""
    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's own --help and usage errors
            code = e.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run
