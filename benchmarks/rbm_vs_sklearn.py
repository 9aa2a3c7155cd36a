"""Our RBM vs scikit-learn's BernoulliRBM, side by side in one process.

speed: one PCD-1 epoch on Fashion-MNIST (60,000 x 784 -> 256 hidden units,
batch 64), ours (`model.fit`, median over epochs after the first, which
traces) vs `BernoulliRBM(n_components=256, batch_size=64, n_iter=1)` (median
of the same number of fits, run after ours), on the same float32 array.

quality: scikit-learn's digits example (8x8 digits nudged x5, 80/20 split,
RBM 100 units, learning rate 0.06, 10 epochs, batch 10, then
LogisticRegression C=6000), once with sklearn's RBM and once with ours.

Records the figures (benchmarks/harness.py) and exits non-zero if one is
missing or NaN.
"""

import argparse
import time

import harness
import numpy as np
from scipy.ndimage import convolve
from sklearn import datasets, linear_model
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.preprocessing import minmax_scale

from apps.image_classification.data import find_idx_dir, read_idx
from apps.unsupervised_pretraining.rbm_training import fit_rbm
from training.pipeline.callbacks import Throughput


def fashion_mnist_pixels():
    directory = find_idx_dir("fashion_mnist")
    if directory is None:
        raise SystemExit("Fashion-MNIST IDX files not found: apt-get install dataset-fashion-mnist "
                         "or set KAT_DATA_DIR")
    images = read_idx(next(directory.glob("train-images-idx3-ubyte*")))
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def speed(rounds, steps_per_execution):
    x = fashion_mnist_pixels()
    timer = Throughput(len(x))
    # PCD-1 with plain SGD, as BernoulliRBM; the first epoch traces and is left out.
    # The two run one after the other: between each other's epochs, each one's idle
    # BLAS threads slowed the other down by up to 3x on this 2-core VM.
    fit_rbm(x, 256, epochs=rounds + 1, batch_size=64, persistent=True, momentum=(0, 0, 0),
            learning_rate=0.1, monitor=False, verbose=0, seed=0,
            steps_per_execution=steps_per_execution, callbacks=[timer])
    ours = timer.epoch_seconds[1:]
    theirs = []
    for r in range(rounds):
        start = time.perf_counter()
        BernoulliRBM(n_components=256, batch_size=64, n_iter=1, random_state=r).fit(x)
        theirs.append(time.perf_counter() - start)
    ours_s, theirs_s = float(np.median(ours)), float(np.median(theirs))
    return {"examples": len(x), "ours_epoch_seconds": ours_s,
            "ours_first_epoch_seconds": timer.epoch_seconds[0], "sklearn_epoch_seconds": theirs_s,
            "speedup": theirs_s / ours_s, "ours_all": ours, "sklearn_all": theirs}


def nudge_dataset(x, y):
    """sklearn's example: the 8x8 images shifted by 1 pixel in 4 directions (x5 data)."""
    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]
    shifted = [np.apply_along_axis(lambda im, w=w: convolve(im.reshape(8, 8), np.array(w),
                                                       mode="constant").ravel(), 1, x)
               for w in directions]
    return np.concatenate([x] + shifted), np.concatenate([y] * 5)


def quality(seed=0):
    digits = datasets.load_digits()
    x, y = nudge_dataset(np.asarray(digits.data, "float32"), digits.target)
    x = minmax_scale(x, feature_range=(0, 1)).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)

    def score(features_train, features_test):
        logistic = linear_model.LogisticRegression(C=6000, max_iter=1000)
        logistic.fit(features_train, y_train)
        return float(logistic.score(features_test, y_test))

    sk = BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10, batch_size=10,
                      random_state=seed).fit(x_train)
    # sklearn's settings; PCD's default is plain SGD, as sklearn's.
    ours = fit_rbm(x_train, 100, epochs=10, learning_rate=0.06, batch_size=10, persistent=True,
                   monitor=False, verbose=0, seed=seed, steps_per_execution=64)
    ours_features = lambda a: np.asarray(ours(a))  # noqa: E731
    return {"sklearn_rbm_accuracy": score(sk.transform(x_train), sk.transform(x_test)),
            "our_rbm_accuracy": score(ours_features(x_train), ours_features(x_test)),
            "raw_pixel_accuracy": score(x_train, x_test)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs / sklearn fits")
    parser.add_argument("--steps-per-execution", type=int, default=64)
    parser.add_argument("--only", choices=["speed", "quality"])
    args = parser.parse_args()
    results, rows = {}, []
    if args.only != "quality":
        speed_result = results["speed"] = speed(args.rounds, args.steps_per_execution)
        rows.append({"benchmark": "RBM: one PCD-1 epoch of Fashion-MNIST (784 -> 256, batch 64), "
                                  "speed-up over scikit-learn's BernoulliRBM",
                     "measured": f"{speed_result['ours_epoch_seconds']:.2f} s",
                     "against": f"{speed_result['sklearn_epoch_seconds']:.2f} s",
                     "ratio": speed_result["speedup"]})
    if args.only != "speed":
        quality_result = results["quality"] = quality()
        rows.append({"benchmark": "RBM: digits example accuracy (RBM features + logistic "
                                  "regression), ours vs BernoulliRBM's "
                                  f"(raw pixels {quality_result['raw_pixel_accuracy']:.2%})",
                     "measured": f"{quality_result['our_rbm_accuracy']:.2%}",
                     "against": f"{quality_result['sklearn_rbm_accuracy']:.2%}",
                     "ratio": quality_result["our_rbm_accuracy"]
                     / quality_result["sklearn_rbm_accuracy"]})
    harness.record("rbm_vs_sklearn", results, rows)


if __name__ == "__main__":
    main()
