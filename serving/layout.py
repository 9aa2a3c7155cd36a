"""TF Serving's model base-path layout and its model_config_list file.

A model is served from `<base>/<name>/<int version>/saved_model.pb`; TF Serving loads only
version directories named by an int64 in ASCII digits. `<base>/models.config` lists every model. The exporter
writes this layout and the repository reads it, so both sides share these functions.
"""

import os
import re
from pathlib import Path

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


VERSION_RE = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit() also takes "²" and "١"
MAX_VERSION = 2**63 - 1  # TF Serving's versions are int64
NOT_A_VERSION = ("is not a version: a version directory is named by a plain ASCII integer up to "
                 f"{MAX_VERSION}; it is ignored")


def version_number(name):
    """The version directory `name` stands for, or None."""
    if VERSION_RE.fullmatch(name) and int(name) <= MAX_VERSION:
        return int(name)
    return None


def versions(model_dir, odd=None):
    """Existing integer versions under `model_dir`, ascending. Directories that look like
    versions but are none (other digits, beyond int64) are added to the list `odd`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = []
    for path in model_dir.iterdir():
        if path.is_dir():
            number = version_number(path.name)
            if number is not None:
                found.append(number)
            elif odd is not None and path.name.isdigit():
                odd.append(path)
    return sorted(found)


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
