"""The Keras backend a run trains on (`runtime.backend`): chosen before Keras is imported,
since Keras reads KERAS_BACKEND once, at import. Pure Python: the command line calls `select`
before it imports the pipeline.

TensorFlow is the default and supports every strategy. JAX trains through the same pipeline
(tf.data input, Keras callbacks, the `.keras` backups) and distributes with Keras' own
`keras.distribution.DataParallel` over the local devices (training/runtime/strategy.py);
tf.distribute's multi-worker and TPU strategies are TensorFlow's alone. The SavedModel export
converts a JAX model call for TF (keras.export) and keeps the TF pre- and post-processing.
PyTorch trains on one device, one step per call, and its runs are exported by a TensorFlow
process from model.keras (training/export/saved_model.py: export_in_tensorflow).
"""

import importlib.util
import os
import sys

from training.errors import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def resolve(name):
    """The backend `runtime.backend=name` means: auto is $KERAS_BACKEND, else tensorflow."""
    if name == "auto":
        name = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise ConfigError(f"Keras backend {name!r} is not one of: {', '.join(BACKENDS)} "
                          "(from runtime.backend or $KERAS_BACKEND)")
    return name


def select(config):
    """Make `config.runtime.backend` the backend of this process and record the resolved name
    in the config (config.yaml then says which one trained). Before Keras is imported it sets
    KERAS_BACKEND; after, it checks that Keras loaded the same one."""
    wanted = resolve(config.runtime.backend)
    if importlib.util.find_spec(PACKAGES[wanted]) is None:
        raise ConfigError(f"runtime.backend={wanted} needs the {PACKAGES[wanted]} package: "
                          + ("pip install 'jax[cpu]' (the dev extra has it: pip install -e .[dev])"
                             if wanted == "jax" else f"pip install {PACKAGES[wanted]}"))
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != wanted:
            raise ConfigError(f"runtime.backend={wanted}, but this process already loaded Keras "
                              f"with {loaded}; start a new process (KERAS_BACKEND={wanted} or "
                              f"--set runtime.backend={wanted})")
    else:
        os.environ["KERAS_BACKEND"] = wanted
    config.runtime.backend = wanted
    if wanted == "jax" and config.runtime.compilation_cache:
        compilation_cache(config.runtime.compilation_cache)
    return wanted


def compilation_cache(path):
    """Keep JAX's compiled programs in `path` (JAX's persistent compilation cache), every one
    of them: JAX's default keeps only those that took a second or more to compile, and the
    tabular app's steps take 0.2 s each, which is most of its first epoch. Unbounded, as JAX's
    own cache is (a bound needs the filelock package); the tabular app's run writes 0.3 MB.
    JAX reads these variables when it is imported; once it is, its config is set instead."""
    directory = os.path.expanduser(path)
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    else:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"


def jit_compile(requested):
    """`jit_compile` for model.compile: as requested under TensorFlow, always under JAX, which
    has no graph mode short of XLA: uncompiled, Keras' JAX trainer runs each step op by op
    (the tabular app's steps took 16 ms that way, 0.4 ms compiled)."""
    import keras

    return bool(requested) or keras.backend.backend() == "jax"
