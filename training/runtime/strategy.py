"""Choose a tf.distribute strategy from the config's `strategy` and `runtime` keys."""

import contextlib
import json
import os
import types
import typing

import keras
import tensorflow as tf

from training.config import Strategy
from training.errors import ConfigError

STRATEGIES = typing.get_args(Strategy)


def split_cpu(logical_cpus):
    """Split the first CPU into N logical devices (must run before any TF op).

    Lets MirroredStrategy run with N replicas on a machine without GPUs, the
    way Keras' own distribution tests do.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current and len(current) == logical_cpus:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    except RuntimeError:
        raise ConfigError(
            f"runtime.logical_cpus={logical_cpus} must be applied before TensorFlow runs "
            "any op; start a fresh process with it set") from None


def _tpu_strategy():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError, RuntimeError) as e:
        raise ConfigError(
            f"strategy=tpu but no TPU could be resolved ({str(e).splitlines()[0]}). Run on a TPU "
            "VM, or set TPU_NAME, or choose --set strategy=auto") from None
    return tf.distribute.TPUStrategy(resolver)


def worker_tf_config(workers, task_index):
    """TF_CONFIG for worker `task_index` of the comma-separated host:port list `workers`."""
    hosts = [w.strip() for w in workers.split(",") if w.strip()]
    if len(hosts) < 2 or not all(":" in h for h in hosts):
        raise ConfigError(f"--workers needs two or more host:port entries, got {workers!r}")
    if not 0 <= task_index < len(hosts):
        raise ConfigError(f"--task-index must be in 0..{len(hosts) - 1}, got {task_index}")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}})


class KerasDataParallel:
    """What the pipeline asks of a tf.distribute strategy (replicas, scope, which worker
    writes), for a backend other than TensorFlow: Keras' own keras.distribution.DataParallel
    over the local devices, which splits each global batch between them; one device, no
    distribution."""

    def __init__(self, devices):
        self.num_replicas_in_sync = len(devices)
        self.extended = types.SimpleNamespace(should_checkpoint=True)  # one process writes
        self.name = "DataParallel" if len(devices) > 1 else "OneDevice"
        distribution = keras.distribution.DataParallel(devices=devices) if len(devices) > 1 else None
        keras.distribution.set_distribution(distribution)

    def scope(self):
        return contextlib.nullcontext()  # variables are laid out by the distribution


def _keras_distribution(name, backend):
    if name in ("multi_worker", "tpu"):
        raise ConfigError(f"strategy={name} is tf.distribute's, for the tensorflow backend; under "
                          f"{backend} use strategy=auto or mirrored (keras.distribution.DataParallel "
                          "over this machine's devices)")
    if backend == "torch":  # Keras' distribution API is JAX's alone
        if name == "mirrored":
            raise ConfigError("strategy=mirrored is not available under torch (Keras distributes "
                              "only under jax and tensorflow); use strategy=auto for one device")
        return KerasDataParallel(["device:0"])
    devices = keras.distribution.list_devices()
    accelerators = [d for d in devices if not d.lower().startswith("cpu")]
    devices = accelerators or devices
    if name == "mirrored" and len(devices) < 2:
        raise ConfigError(f"strategy=mirrored found one {backend} device; it needs several GPUs, or "
                          "XLA_FLAGS=--xla_force_host_platform_device_count=2 for two CPU devices")
    return KerasDataParallel(devices if name != "one_device" else devices[:1])


def make_strategy(name="auto", logical_cpus=0):
    """Return the strategy named by the config.

    auto: a TPU if one resolves (TPU_NAME set, or on a TPU VM), else
    MirroredStrategy when there is more than one GPU (or logical CPU), else
    one device. Other backends than TensorFlow: KerasDataParallel.

    One device (auto, one_device) is TensorFlow's default strategy, which places ops
    on the GPU if there is one: Keras 3's fit under tf.distribute.OneDeviceStrategy
    took 2.5-3x as long per step on CPU (the default image model at batch 128:
    855 ms against 270-350 ms, 2-core AMD EPYC), for nothing one device needs.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    if keras.backend.backend() != "tensorflow":
        return _keras_distribution(name, keras.backend.backend())
    if logical_cpus > 1:
        split_cpu(logical_cpus)
    if name == "tpu":
        return _tpu_strategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy=multi_worker needs TF_CONFIG (the cluster spec) in the "
                              "environment, e.g. TF_CONFIG='" + json.dumps(
                                  {"cluster": {"worker": ["localhost:12345", "localhost:12346"]},
                                   "task": {"type": "worker", "index": 0}}) + "'")
        from training.runtime import multi_worker_patch

        multi_worker_patch.apply()  # Keras 3 fit needs it under this strategy
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    # Probing for a TPU over the network would stall every run elsewhere, so
    # "auto" only tries when there are signs of one: TPU_NAME or a TPU VM device.
    if name == "auto" and (os.environ.get("TPU_NAME") or os.path.exists("/dev/accel0")):
        return _tpu_strategy()
    if name == "mirrored" or (name == "auto" and (len(gpus) > 1 or (not gpus and len(cpus) > 1))):
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        if name == "mirrored" and len(devices) < 2:
            raise ConfigError("strategy=mirrored found one device; it needs several GPUs, or "
                              "--set runtime.logical_cpus=2 to mirror over logical CPUs")
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_tpu(strategy):
    """Does `strategy` (tf.distribute's, or Keras' distribution under another backend) run on
    TPUs? (Under JAX, precision.probe asks JAX itself.)"""
    return isinstance(strategy, tf.distribute.TPUStrategy)


def strategy_name(strategy):
    """What metrics.json calls the strategy: its class, or OneDevice for the default one."""
    if strategy is tf.distribute.get_strategy():
        return "OneDevice"
    return getattr(strategy, "name", type(strategy).__name__)
