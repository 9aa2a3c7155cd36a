"""TF Serving's model base-path layout and its model_config_list file.

A model is served from `<base>/<name>/<int version>/saved_model.pb`; TF Serving loads only
all-digit version directories. `<base>/models.config` lists every model. The exporter
writes this layout and the repository reads it, so both sides share these functions.
"""

import os
import re
from pathlib import Path

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def versions(model_dir):
    """Existing integer versions under `model_dir`, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def write_models_config(export_dir):
    """Write `<export_dir>/models.config`, TF Serving's model_config_list for every model."""
    export_dir = Path(export_dir).resolve()
    names = sorted(p.name for p in export_dir.iterdir() if p.is_dir() and versions(p))
    entries = "".join(
        f"  config {{\n    name: '{n}'\n    base_path: '{export_dir / n}'\n"
        f"    model_platform: 'tensorflow'\n  }}\n" for n in names)
    path = export_dir / "models.config"
    tmp = path.with_suffix(".config.tmp")
    tmp.write_text(f"model_config_list {{\n{entries}}}\n")
    os.replace(tmp, path)
    return path


def parse_model_config_file(path):
    """{name: base_path} from a TF Serving model_config_list text proto."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(Path(path).read_text(), config)
    return {c.name: c.base_path for c in config.model_config_list.config}


def model_name_problem(name):
    """Why `name` cannot be a model name (a plain directory name under the base path), or None."""
    if not MODEL_NAME_RE.match(name):
        return ("must be a plain name of letters, digits, '_', '.' and '-' that does not start "
                "with '.' (it is a directory under the export root)")
    return None
