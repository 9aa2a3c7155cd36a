"""Choose a tf.distribute strategy from the config's `strategy` and `runtime` keys."""

import json
import os
import typing

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


def make_strategy(name="auto", logical_cpus=0):
    """Return the strategy named by the config.

    auto: a TPU if one resolves (TPU_NAME set, or on a TPU VM), else
    MirroredStrategy when there is more than one GPU (or logical CPU), else
    one device.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
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
        from training import multi_worker_patch

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
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
