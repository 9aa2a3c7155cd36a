"""Errors a user causes and can fix. The command line prints their message alone (exit 2);
anything else is a bug and keeps its traceback. Pure Python, so apps and the CLI import it cheaply."""


class ConfigError(ValueError):
    """A config file, key or value the user can fix."""


class UnknownAppError(ConfigError):
    """No installed app is registered under the requested name."""


class DataNotFoundError(FileNotFoundError):
    """An app's data is neither on disk nor downloadable; the message says how to get it."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Preempted(RuntimeError):
    """Training stopped on SIGTERM; the backup is kept for resuming."""


class ExportError(RuntimeError):
    """The export could not be written; nothing was left half-written."""


class DiskFull(OSError):
    """Not enough free space for a save; the save was not started, earlier files are intact."""


class DataError(ValueError):
    """Data was found but cannot be read (truncated, wrong format); the message says what to fix."""


class AppContractError(TypeError):
    """An App hook returned what the contract (training/app.py) does not allow; the message
    names the hook and what it should return."""


class CommandError(RuntimeError):
    """A command cannot do what was asked (a server unreachable, an extra not installed);
    the message says what to do."""


def quoted(value, length=80):
    """`value` as Python writes it, cut to about `length` characters (and a few items per
    level) for a message: a value can be megabytes long, or an alias bomb's nested lists."""
    import reprlib

    short = reprlib.Repr()  # attributes: Python 3.11's takes no arguments
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxset = 3, 6, 6, 6, 6
    short.maxstring = short.maxother = short.maxlong = length
    text = short.repr(value)
    return text if len(text) <= length else text[:length - 3] + "..."


def described(error):
    """`Type: first line of its message`: a library's failure, told in one line."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def model_file_damage(path, error):
    """Why the Keras file `path` (`.keras` zip or `.weights.h5`) did not load, in one line.
    Keras reports a torn zip as "File not found" for a file that exists, so the file's own
    format is checked first."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return f"{e.strerror}"
    if str(path).endswith(".keras") and not zipfile.is_zipfile(path):
        return "not a complete zip archive"
    if str(path).endswith(".h5") and head != b"\x89HDF\r\n\x1a\n":
        return "not an HDF5 file"
    return described(error)


USER_ERRORS = (ConfigError, DataNotFoundError, DataError, TrainingDiverged, ExportError, DiskFull,
               CommandError, AppContractError, FileNotFoundError)
