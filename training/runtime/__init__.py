"""Where and how a run computes: the Keras backend (backend.py, loads no TensorFlow), the
tf.distribute strategy and TF_CONFIG for multi-worker runs (strategy.py, with Keras' patch in
multi_worker_patch.py), the dtype policy (precision.py) and the free-disk guard
(disk_space.py). Imported module by module: the CLI selects the backend before Keras loads."""
