"""`epochs: auto` and `batch_size: auto`: a run length that fits the data, and a warning for
runs far too short.

A fixed number of epochs is sized for one data set: the image app's 4 epochs of 128 images are
1,700 optimizer steps on Fashion-MNIST's 54,000 training images, but 16 on 500 images, which
leaves a model at chance. `batch_size: auto` is 128, or smaller (down to AUTO_BATCH_MIN) so that
a small training set still makes about AUTO_BATCH_STEPS steps an epoch; `epochs: auto` aims at
AUTO_STEPS optimizer steps but shows the model at most AUTO_EXAMPLES examples (a cap on time:
a step of 64 costs four of 16), within [AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS]. Both depend only on
the number of training examples and replicas, so a resumed run resolves the same numbers; the
run prints them, and config.yaml and --print-config record them.

Measured on Fashion-MNIST class folders (benchmarks/small_data.py, model.augment on, seed 0, a
2-core AMD EPYC): 50 images per class scored 79.2% after 1,500 steps, 82.3% after 3,000; 500 per
class 84.8% after 50,000 examples (1,562 steps of 32), 85.3% after 80,000 (1,278 of 64, 256 s),
86.1% after 100,000 (1,562 of 64, 358 s), 87.6% after 192,000 (1,512 of 128, 653 s).
"""

import math

AUTO = "auto"
AUTO_STEPS = 3000  # optimizer steps an auto run aims at
AUTO_EXAMPLES = 100_000  # ... but it shows the model no more examples than this (time)
AUTO_MIN_EPOCHS = 4  # large data sets: at least this many passes
AUTO_MAX_EPOCHS = 150  # tiny ones: at most this many (each epoch also validates and saves)
TOO_SHORT = 0.25  # a fixed run with fewer than this share of auto's steps gets a warning
AUTO_BATCH_MAX = 128  # per replica
AUTO_BATCH_MIN = 16
AUTO_BATCH_STEPS = 64  # a small training set's epoch has at least about this many steps


def auto_batch_size(examples, replicas=1):
    """The largest power of two in [AUTO_BATCH_MIN, AUTO_BATCH_MAX] that leaves an epoch of
    `examples` about AUTO_BATCH_STEPS steps or more (per replica)."""
    fits = examples // (AUTO_BATCH_STEPS * replicas)
    size = AUTO_BATCH_MIN
    while size * 2 <= min(fits, AUTO_BATCH_MAX):
        size *= 2
    return size


def auto_epochs(examples, global_batch):
    """The epochs `auto` means for `examples` training examples in batches of `global_batch`."""
    steps = max(1, math.ceil(examples / global_batch))
    wanted = min(math.ceil(AUTO_STEPS / steps), math.ceil(AUTO_EXAMPLES / max(examples, 1)))
    return min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, wanted))


def resolve(config, examples, replicas=1):
    """Set `config.batch_size` and `config.epochs` to numbers (from `auto`, or as given) and say
    so in one line: what auto chose, or a warning when a fixed run is far too short."""
    chosen = []
    if config.batch_size == AUTO:
        config.batch_size = auto_batch_size(examples, replicas)
        chosen.append(f"batch_size=auto: {config.batch_size}")
    steps = max(1, math.ceil(examples / (config.batch_size * replicas)))
    if config.epochs == AUTO:
        config.epochs = auto_epochs(examples, config.batch_size * replicas)
        chosen.append(f"epochs=auto: {config.epochs} epochs of {steps:,} steps "
                      f"({config.epochs * steps:,} optimizer steps, aiming at {AUTO_STEPS:,} "
                      f"and at most {AUTO_EXAMPLES:,} examples)")
    if chosen:
        print("; ".join(chosen) + f" for {examples:,} training examples", flush=True)
    auto = auto_epochs(examples, config.batch_size * replicas)
    if config.epochs < TOO_SHORT * auto:
        print(f"warning: {config.epochs} epoch(s) of {steps:,} steps is {config.epochs * steps:,} "
              f"optimizer steps, far too few to train on {examples:,} examples; --set epochs=auto "
              f"gives {auto}", flush=True)
    return config.epochs
