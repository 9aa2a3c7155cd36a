"""The dtype policy of a run (`runtime.mixed_precision`), chosen from the hardware.

`auto` picks mixed precision where the hardware computes it natively, float32 elsewhere:

- a TPU: mixed_bfloat16 (its matrix units compute in bfloat16);
- CUDA GPUs with tensor cores (compute capability 7.0 or higher, all of them): mixed_float16,
  with loss scaling (Keras wraps the optimizer in a LossScaleOptimizer);
- a CPU with bfloat16 units (`avx512_bf16` or `amx_bf16` among its flags) under TensorFlow
  with oneDNN on (TF's default on Linux x86): mixed_bfloat16. Measured 1.65x float32's speed
  for the default image run on a 2-core AMD EPYC with avx512_bf16 (issue 36); on CPUs without
  them every bfloat16 op converts to and from float32: the image app trained at 0.54x on an
  AVX512 Xeon and 0.14x on an AVX2 AMD EPYC (benchmarks/mixed_precision.py). JAX (XLA:CPU)
  and PyTorch on a CPU stay float32: their bfloat16 speed has not been measured here;
- everything else: float32.

Why the CPU's flags and not a timing taken at start: oneDNN picks its bfloat16 kernels from
the same CPUID bits (its avx512_core_bf16 and avx512_core_amx levels), so the flags say what a
run will get. A timing costs seconds at every start, swings with the neighbours' load on a
shared 2-core machine, and a cached one goes stale when a container moves to another host.

`true` forces mixed precision (float16 on a GPU, bfloat16 elsewhere), `bfloat16`/`float16`
force that type, `false` forces float32. The run resolves the key to what it chose (false,
bfloat16 or float16), prints one line with the reason, and records both in config.yaml and
metrics.json ("precision").
"""

import dataclasses
import os
import sys

AUTO = "auto"
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
TENSOR_CORES = (7, 0)  # Volta: the first CUDA compute capability with float16 tensor cores
POLICIES = {False: "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
HALF = ("bfloat16", "float16")  # the compute types of the mixed policies


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What the choice depends on, as the run's backend sees it."""

    backend: str
    tpu: bool = False
    gpus: tuple = ()  # (name, (major, minor) or None when not CUDA) per GPU the backend uses
    cpu_flags: frozenset = None  # None: unknown (not Linux's /proc/cpuinfo)
    onednn: bool = True  # TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The chosen compute type (`value`: false, "bfloat16" or "float16"), why, and the setting
    it came from."""

    value: object
    reason: str
    setting: object

    @property
    def policy(self):
        return POLICIES[self.value]

    def line(self):
        return f"Precision: {self.policy} (runtime.mixed_precision={_text(self.setting)}: {self.reason})"

    def comment(self):
        """config.yaml's comment beside the resolved key."""
        return f"{_text(self.setting)}: {self.reason}"

    def as_dict(self):
        return {"policy": self.policy, "setting": self.setting, "reason": self.reason}


def _text(setting):
    return str(setting).lower() if isinstance(setting, bool) else setting


def choose(setting, hardware):
    """The Choice for `runtime.mixed_precision=setting` on `hardware` (a pure function)."""
    if setting is False:
        return Choice(False, "forced", setting)
    if setting in HALF:
        return Choice(setting, "forced" + _slow_note(setting, hardware), setting)
    if setting is True:
        value = "float16" if hardware.gpus else "bfloat16"
        return Choice(value, "forced, " + ("float16 on a GPU" if hardware.gpus else
                                           "bfloat16 without a GPU") + _slow_note(value, hardware),
                      setting)
    if hardware.tpu:
        return Choice("bfloat16", "a TPU computes in bfloat16", setting)
    if hardware.gpus:
        return _gpu_choice(hardware.gpus, setting)
    return _cpu_choice(hardware, setting)


def _gpu_choice(gpus, setting):
    old = [(name, cc) for name, cc in gpus if cc is None or tuple(cc) < TENSOR_CORES]
    if old:
        name, cc = old[0]
        what = (f"compute capability {cc[0]}.{cc[1]}, no tensor cores" if cc else
                "not a CUDA GPU with a known compute capability")
        return Choice(False, f"GPU {name} ({what}): float16 would not be faster", setting)
    name, cc = gpus[0]
    return Choice("float16", f"GPU {name} has tensor cores (compute capability {cc[0]}.{cc[1]})",
                  setting)


def _cpu_choice(hardware, setting):
    if hardware.cpu_flags is None:
        return Choice(False, "this CPU's flags are unknown (no /proc/cpuinfo)", setting)
    units = [f for f in CPU_BFLOAT16_FLAGS if f in hardware.cpu_flags]
    if not units:
        return Choice(False, "this CPU has no bfloat16 units (no " + " or ".join(CPU_BFLOAT16_FLAGS)
                      + " in /proc/cpuinfo): emulated, bfloat16 trained at 0.14-0.55x float32's speed",
                      setting)
    if hardware.backend != "tensorflow":
        return Choice(False, f"this CPU has {units[0]}, but bfloat16 on a CPU is measured faster "
                      f"only under TensorFlow's oneDNN, not under {hardware.backend}; "
                      "runtime.mixed_precision=true forces it", setting)
    if not hardware.onednn:
        return Choice(False, f"this CPU has {units[0]}, but TF_ENABLE_ONEDNN_OPTS=0 turns off the "
                      "oneDNN kernels that use it", setting)
    return Choice("bfloat16", f"this CPU has {units[0]}, which oneDNN computes bfloat16 with",
                  setting)


def _slow_note(value, hardware):
    """A forced type the hardware lacks units for: say what to expect."""
    if value == "bfloat16" and not hardware.tpu and not hardware.gpus and hardware.cpu_flags \
            is not None and not any(f in hardware.cpu_flags for f in CPU_BFLOAT16_FLAGS):
        return "; this CPU has no bfloat16 units, so expect 0.14-0.55x float32's speed"
    if value == "float16" and not hardware.gpus:
        return "; a CPU computes float16 in software, many times slower than float32"
    return ""


def cpu_flags(path="/proc/cpuinfo"):
    """The first CPU's flags (x86 `flags`, Arm `Features`), or None where the file is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return frozenset()


def probe(name, tpu=False):
    """The Hardware as Keras backend `name` sees it (Keras has loaded it); `tpu`: the run's
    strategy is a TPU's."""
    framework = sys.modules[name]
    gpus = ()
    if name == "tensorflow":
        details = [(framework.config.experimental.get_device_details(d), d.name)
                   for d in framework.config.list_physical_devices("GPU")]
        gpus = tuple((info.get("device_name", device), info.get("compute_capability"))
                     for info, device in details)
    elif name == "jax":
        tpu = tpu or framework.default_backend() == "tpu"
        gpus = tuple((d.device_kind, _capability(getattr(d, "compute_capability", None)))
                     for d in framework.devices() if d.platform == "gpu")
    elif name == "torch":
        gpus = tuple((framework.cuda.get_device_name(i), framework.cuda.get_device_capability(i))
                     for i in range(framework.cuda.device_count()))
    return Hardware(backend=name, tpu=tpu, gpus=gpus, cpu_flags=cpu_flags(),
                    onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0")


def _capability(text):
    """JAX's "8.0" as (8, 0); None for a GPU without one (ROCm)."""
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def resolve(config, tpu=False):
    """Choose for `config.runtime.mixed_precision`, say so in one line, set the key to the
    chosen value (false, bfloat16 or float16) and return the Choice (its `policy` is Keras')."""
    choice = choose(config.runtime.mixed_precision, probe(config.runtime.backend, tpu))
    print(choice.line(), flush=True)
    config.runtime.mixed_precision = choice.value
    return choice
