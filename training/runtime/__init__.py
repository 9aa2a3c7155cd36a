"""Where and how a run computes. start.py is the entry point: the backend Keras loaded with
(backend.py, which loads no TensorFlow and is what the CLI selects before Keras loads), every
seed, the tf.distribute strategy and TF_CONFIG for multi-worker runs (strategy.py, with Keras'
patch in multi_worker_patch.py) and the dtype policy (precision.py); disk_space.py guards the
saves."""
