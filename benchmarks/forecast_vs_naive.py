"""Forecasting on real data: the sequence app's model vs the naive last-value forecast.

Yearly sunspot numbers 1700-2008 (the CSV statsmodels ships; `pip install
statsmodels`, part of the `bench` extra). The most recent 20% of the years are
the test set; the app reports its test MAE next to the MAE of predicting each
year as the year before. Exits non-zero if a figure is missing or NaN.
"""

import argparse
import sys
from pathlib import Path

import harness

from training.pipeline import train
from training.registry import load_config


def sunspots_csv():
    try:
        import statsmodels
    except ImportError:
        sys.exit("forecast_vs_naive needs statsmodels for its data: pip install -e '.[bench]'")
    path = Path(statsmodels.__file__).parent / "datasets" / "sunspots" / "sunspots.csv"
    if not path.exists():
        sys.exit(f"{path} is missing from this statsmodels")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--out", default=str(harness.OUT / "forecast_vs_naive"))
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()
    config = load_config("sequence_modeling", None, [
        "task=forecasting", f"data.path={sunspots_csv()}", "data.column=SUNACTIVITY",
        "data.sequence_length=12", "data.validation_split=0.15", "data.test_split=0.2",
        f"model.cell={args.cell}", "model.units=32", "epochs=150", "batch_size=16",
        "optimizer.learning_rate=0.003", "runtime.verbose=0", "callbacks.tensorboard=false",
        "export.enabled=false", f"run_dir={args.out}", *args.set])
    metrics = train(config)
    result = {k: metrics[k] for k in ("test_mae", "naive_last_value_mae", "mae_vs_naive")}
    result["train_seconds"] = metrics["train_seconds"]
    rows = [{"benchmark": f"Forecasting yearly sunspots ({args.cell}), test MAE vs the naive "
                          "last-value forecast",
             "measured": f"{result['test_mae']:.2f}", "against": f"{result['naive_last_value_mae']:.2f}",
             "ratio": result["mae_vs_naive"]}]
    harness.record("forecast_vs_naive", result, rows)


if __name__ == "__main__":
    main()
