"""TensorFlow's C++ start-up lines, unless the user asks for them (KAT_TF_LOGS=1): on a machine
without a GPU they include "E0000 ... failed call to cuInit: INTERNAL: CUDA error", which
reads like a failure. TF_CPP_MIN_LOG_LEVEL silences what TF logs once its logging is set
up; what it writes before (CUDA probing while its libraries load) goes to file descriptor 2
directly, so TensorFlow is imported with that descriptor on /dev/null (QuietImport)."""

import contextlib
import importlib.abc
import importlib.util
import os
import sys

TF_LOGS = os.environ.get("KAT_TF_LOGS", "") not in ("", "0")


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, and loads it with file descriptor 2 on /dev/null (an
    error still raises; only what TF's C++ libraries print is dropped). It stays in place
    until TensorFlow has loaded: Keras looks for it (find_spec) before importing it."""

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path, target=None):
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True  # the real spec, found by the finders after this one
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def quietly(module):
                with _stderr_to_devnull():
                    load(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)

            spec.loader.exec_module = quietly
        return spec


def install():
    """Quiet TensorFlow's import from here on (once, and only if it is not loaded yet)."""
    if TF_LOGS:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietImport())
