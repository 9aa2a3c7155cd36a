"""The commands on a finished run directory: `evaluate`, `export`, `report`, `explain`,
`generate`."""

import json
import sys

from training.errors import ConfigError


def add(sub):
    evaluate = sub.add_parser("evaluate", help="test metrics of a finished run")
    evaluate.set_defaults(handler=run_evaluate)
    evaluate.add_argument("--run", required=True,
                          help="run directory, e.g. runs/image_classification/<stamp>")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a data key, e.g. --set data.limit=1000")
    evaluate.add_argument("--artifact", metavar="PATH",
                          help="score this export of the run instead of its model: a SavedModel "
                               "version dir (export/NAME/1) or a .tflite file")

    export = sub.add_parser("export", help="export a finished run: a SavedModel for TF Serving, "
                            "or a LiteRT model for devices")
    export.set_defaults(handler=run_export)
    export.add_argument("--run", required=True, help="run directory")
    export.add_argument("--name", help="model name under the export dir (default: the app name)")
    export.add_argument("--export-dir", help="export root (default: config export.dir)")
    export.add_argument("--format", default="saved_model", metavar="saved_model|litert",
                        help="saved_model: EXPORT_DIR/NAME/VERSION (TF Serving); litert: "
                             "EXPORT_DIR/NAME/litert/VERSION/model.tflite")
    export.add_argument("--quantize", metavar="none|dynamic|float16|int8",
                        help="litert only: none (float32), dynamic (int8 weights), float16, or "
                             "int8 (full integer, calibrated on training examples)")
    export.add_argument("--int8-io", action="store_true",
                        help="with --quantize int8: int8 inputs and outputs too (default: float)")
    export.add_argument("--per-tensor", action="store_true",
                        help="with --quantize int8: one weight scale per tensor, not per output "
                             "channel: smaller files (mobilenet_small: a fifth smaller)")

    report = sub.add_parser("report", help="write a finished run's report.html again (one "
                            "self-contained page: metrics, curves, per-class table, mistakes, Grad-CAM)")
    report.set_defaults(handler=run_report)
    report.add_argument("--run", required=True, help="run directory")

    explain = sub.add_parser("explain", help="Grad-CAM of an image run's model on image files: "
                             "where each predicted class's score comes from")
    explain.set_defaults(handler=run_explain)
    explain.add_argument("--run", required=True, help="run directory of an image model")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    explain.add_argument("--out", default="explain.png", help="the figure to write (default: "
                         "explain.png)")

    generate = sub.add_parser("generate", help="sample text from a language-model run")
    generate.set_defaults(handler=run_generate)
    generate.add_argument("--run", required=True, help="run directory of a sequence_modeling "
                          "task=language_model run")
    generate.add_argument("--prompt", default="", help="text to continue")
    generate.add_argument("--length", type=int, default=300, help="characters to sample")
    generate.add_argument("--temperature", type=float, default=0.8,
                          help="< 1 sharper, > 1 more random, 0 always the likeliest character")
    generate.add_argument("--seed", type=int, help="seed for reproducible samples")


def run_evaluate(args):
    from training.pipeline import evaluate  # imports TensorFlow

    print(json.dumps(evaluate(args.run, args.set, args.artifact), indent=2))
    return 0


def run_export(args):
    from training.export import export_run  # imports TensorFlow

    print(export_run(args.run, args.name, args.export_dir, args.format, args.quantize,
                     args.int8_io, args.per_tensor))
    return 0


def run_report(args):
    from training.pipeline.report import rebuild_page  # imports TensorFlow

    print(rebuild_page(args.run))
    return 0


def run_explain(args):
    from training.export.predict import explain  # imports TensorFlow

    for line in explain(args.run, args.images, args.out):
        print(line)
    print(f"Grad-CAM: {args.out}")
    return 0


def run_generate(args):
    from training.run_dir import load_run

    _, app, model = load_run(args.run)
    if not hasattr(app, "generate"):
        raise ConfigError(f"App {app.name} does not generate text; train "
                          "sequence_modeling with --set task=language_model")
    print(app.generate(model, args.prompt, args.length, args.temperature, args.seed,
                       progress=generation_progress))
    return 0


def generation_progress(done, total):
    """`generate`'s progress on stderr (the text goes to stdout): redrawn on a terminal, a line
    per quarter in a log."""
    if sys.stderr.isatty():
        print(f"\rgenerating: {done}/{total} characters", end="\n" if done == total else "",
              file=sys.stderr, flush=True)
    elif done * 4 // total != (done - 1) * 4 // total:
        print(f"generating: {done}/{total} characters", file=sys.stderr, flush=True)
