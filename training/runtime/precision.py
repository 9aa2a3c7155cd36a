"""The dtype policy of a run: `runtime.mixed_precision` picks mixed float16 on a GPU, mixed
bfloat16 elsewhere, float32 when off."""

import keras


def set_policy(config):
    if config.runtime.mixed_precision:
        on_gpu = any("gpu" in d.lower() or "cuda" in d.lower()
                     for d in keras.distribution.list_devices())
        keras.mixed_precision.set_global_policy("mixed_float16" if on_gpu else "mixed_bfloat16")
    else:
        keras.mixed_precision.set_global_policy("float32")
