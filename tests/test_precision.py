"""runtime.mixed_precision: what `auto` picks for each kind of hardware, how a run records the
choice, and the model outputs that must stay float32 under mixed precision."""

import keras
import numpy as np
import pytest
import yaml

from training.config import to_yaml
from training.contract import check_output_dtypes
from training.errors import AppContractError
from training.registry import load_config
from training.runtime.precision import Hardware, choose, cpu_flags, probe

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
SKYLAKE = frozenset({"avx2", "avx512f", "avx512_vnni"})


@pytest.mark.parametrize("hardware,policy,why", [
    (Hardware("tensorflow", cpu_flags=ZEN4), "mixed_bfloat16", "avx512_bf16"),
    (Hardware("tensorflow", cpu_flags=frozenset({"amx_bf16", "amx_tile"})), "mixed_bfloat16",
     "amx_bf16"),
    (Hardware("tensorflow", cpu_flags=SKYLAKE), "float32", "no bfloat16 units"),
    (Hardware("tensorflow", cpu_flags=None), "float32", "unknown"),
    (Hardware("tensorflow", cpu_flags=ZEN4, onednn=False), "float32", "TF_ENABLE_ONEDNN_OPTS=0"),
    (Hardware("jax", cpu_flags=ZEN4), "float32", "only under TensorFlow"),
    (Hardware("tensorflow", gpus=(("NVIDIA H100", (9, 0)),), cpu_flags=SKYLAKE), "mixed_float16",
     "tensor cores"),
    (Hardware("tensorflow", gpus=(("Tesla P100", (6, 0)),), cpu_flags=ZEN4), "float32",
     "no tensor cores"),
    (Hardware("tensorflow", gpus=(("A100", (8, 0)), ("P100", (6, 0))), cpu_flags=ZEN4), "float32",
     "P100"),
    (Hardware("jax", gpus=(("AMD Instinct", None),)), "float32", "known compute capability"),
    (Hardware("tensorflow", tpu=True, cpu_flags=SKYLAKE), "mixed_bfloat16", "TPU"),
])
def test_auto_picks_what_the_hardware_computes_natively(hardware, policy, why):
    choice = choose("auto", hardware)
    assert choice.policy == policy and why in choice.reason
    assert choice.line().startswith(f"Precision: {policy} (runtime.mixed_precision=auto: ")


@pytest.mark.parametrize("setting,hardware,policy,note", [
    (False, Hardware("tensorflow", cpu_flags=ZEN4), "float32", ""),
    (True, Hardware("tensorflow", cpu_flags=SKYLAKE), "mixed_bfloat16", "0.14-0.55x"),
    (True, Hardware("tensorflow", cpu_flags=ZEN4), "mixed_bfloat16", ""),
    (True, Hardware("tensorflow", gpus=(("P100", (6, 0)),)), "mixed_float16", ""),
    ("bfloat16", Hardware("tensorflow", gpus=(("A100", (8, 0)),)), "mixed_bfloat16", ""),
    ("float16", Hardware("tensorflow", cpu_flags=ZEN4), "mixed_float16", "in software"),
])
def test_true_false_and_a_type_force_it(setting, hardware, policy, note):
    choice = choose(setting, hardware)
    assert choice.policy == policy and choice.reason.startswith("forced")
    assert note in choice.reason and (note or "expect" not in choice.reason)


def test_cpu_flags_are_read_from_cpuinfo_on_x86_and_arm(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                   "processor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_flags(x86) == {"fpu", "avx2", "avx512_bf16"}
    assert "bf16" in cpu_flags(arm)
    assert cpu_flags(tmp_path / "missing") is None


def test_this_machine_is_probed_without_error():
    hardware = probe("tensorflow")
    assert hardware.backend == "tensorflow" and hardware.cpu_flags is not None
    assert choose("auto", hardware).policy in ("float32", "mixed_bfloat16", "mixed_float16")


def test_the_resolved_value_and_its_reason_round_trip_through_a_config_file(tmp_path):
    config = load_config("tabular_regression", None, ["runtime.mixed_precision=auto"])
    choice = choose("auto", Hardware("tensorflow", cpu_flags=ZEN4))
    config.runtime.mixed_precision = choice.value
    text = to_yaml(config, {"runtime.mixed_precision": choice.comment()})
    assert "  mixed_precision: bfloat16  # auto: this CPU has avx512_bf16" in text
    (tmp_path / "resolved.yaml").write_text(text)
    assert yaml.safe_load(text)["runtime"]["mixed_precision"] == "bfloat16"
    again = load_config(None, tmp_path / "resolved.yaml", [])
    assert again.runtime.mixed_precision == "bfloat16"
    assert choose(again.runtime.mixed_precision, Hardware("tensorflow")).policy == "mixed_bfloat16"


def test_a_half_precision_output_is_named_with_the_fix():
    class TinyApp:
        pass

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((3,), name="features")
        hidden = keras.layers.Dense(4)(inputs)
        leaky = keras.Model(inputs, keras.layers.Dense(1, name="prediction")(hidden))
        kept = keras.Model(inputs, keras.layers.Dense(1, dtype="float32", name="prediction")(hidden))
        with pytest.raises(AppContractError, match="output 'prediction' is bfloat16.*dtype='float32'"):
            check_output_dtypes(TinyApp(), leaky)
        check_output_dtypes(TinyApp(), kept)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.asarray(kept(np.ones((1, 3), "float32"))).dtype == np.float32
