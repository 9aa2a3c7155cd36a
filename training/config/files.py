"""Config files: read strictly (strict_yaml.py), written as the run's config.yaml."""

import os

import yaml

from training.config import strict_yaml
from training.config.keys import to_dict
from training.errors import ConfigError


def read_yaml(path):
    """The mapping in YAML file `path` ({} when empty), or a ConfigError naming the problem
    (strict_yaml: no repeated keys, bounded aliases and size)."""
    try:
        with open(path, encoding="utf-8") as f:
            size = os.fstat(f.fileno()).st_size
            if size > strict_yaml.MAX_FILE_BYTES:
                raise ConfigError(f"Config file {path} is {size:,} bytes; a config or search space "
                                  f"is a few KB (at most {strict_yaml.MAX_FILE_BYTES:,}): is it the "
                                  "right file?")
            values = strict_yaml.load(f)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Config file {path} cannot be read: {getattr(e, 'strerror', None) or e}; "
                          "--config takes a UTF-8 YAML file (or --preset NAME)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"Config file {path} is not valid YAML{where}: {problem}") from None
    return values if values is not None else {}


def named_app(app_name, path=None):
    """(app name, YAML file's values): `app_name`, else the app the file at `path` names."""
    values = read_yaml(path) if path else {}
    if app_name is None and isinstance(values, dict):
        app_name = values.get("app")
    if not app_name:
        raise ConfigError("Name the app: --app NAME (see `python -m training list`)")
    return app_name, values


def to_yaml(config, comments=None):
    """`config` as YAML; `comments` ({dotted key: text}) go after their keys' lines, to say why
    the run chose a value (runtime.mixed_precision: auto)."""
    text = yaml.safe_dump(to_dict(config), sort_keys=False)
    if not comments:
        return text
    lines, path = [], []
    for line in text.splitlines():
        key = line.lstrip()
        if not key.startswith("- "):  # a list's item belongs to the key above it
            path[(len(line) - len(key)) // 2:] = [key.split(":", 1)[0]]
            comment = comments.get(".".join(path))
            if comment and not line.endswith(":"):
                line += "  # " + " ".join(comment.split())
        lines.append(line)
    return "\n".join(lines) + "\n"


def save_yaml(config, path, comments=None):
    with open(path, "w") as f:
        f.write(to_yaml(config, comments))


