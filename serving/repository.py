"""Load the exported SavedModels of a TF Serving base path and follow new versions.

Like TF Serving's default version policy, each model serves its newest version
that loads; a poll thread loads a version dropped in while running. A version
that does not load (an empty or half-copied dir, or a warm-up file that does not fit it)
is skipped, at start-up as while running, with one warning, and tried again once its
files change. As in TF Serving, a version's warm-up requests are replayed before it is
served, and with batching parameters concurrent requests are batched (batching.py).
"""

import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from serving.batching import Batcher
from serving.image_header import DEFAULT_MAX_PIXELS, FORMATS, IMAGE_BYTES
from serving.inputs import BadRequest, check_images, op_error_line
from serving.layout import NOT_A_VERSION, versions
from serving.warmup import REPLAY_SECONDS, read_warmup, replay

ROWS_PER_CALL = 256  # a big request runs in slices, so its activations' memory stays bounded
# Requests whose images declare more pixels than this decode one at a time (as large bodies
# are read): each decoded pixel takes about 30 bytes at the peak, so 4 MP is about 120 MB.
HEAVY_DECODE_PIXELS = 4_000_000


class NotFound(LookupError):
    """Unknown model or version (HTTP 404)."""


@dataclass
class LoadedVersion:
    name: str
    version: int
    path: Path
    module: object  # what tf.saved_model.load returned; keeps the functions alive
    signature_defs: dict  # name -> SignatureDef as JSON-ready dict (TF Serving's metadata)
    batching: object = None  # BatchingParameters, or None: every request runs on its own
    batchers: dict = field(default_factory=dict)  # signature name -> Batcher
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    heavy: object = field(default_factory=threading.RLock)  # the repository's: one heavy request at a time

    def signature(self, name):
        if name not in self.module.signatures:
            raise KeyError(f"Serving signature name: \"{name}\" not found in signature def; "
                           f"available: {', '.join(sorted(self.module.signatures))}")
        return self.module.signatures[name]

    def run(self, fn, arrays):
        """Outputs (NumPy) of signature `fn` on checked input `arrays`, at most ROWS_PER_CALL
        rows per call when every input is batched along a first dimension of one size;
        with batching on, such requests join the signature's batches. Encoded images are
        checked before they decode (inputs.check_images); big ones decode one request at a
        time."""
        pixels = check_images(arrays, self.max_image_pixels)
        try:
            if pixels > HEAVY_DECODE_PIXELS:
                with self.heavy:
                    return self._run(fn, arrays)
            return self._run(fn, arrays)
        except tf.errors.InvalidArgumentError as e:
            if pixels:
                raise BadRequest(f"Input '{IMAGE_BYTES}' holds bytes that are not a readable "
                                 f"image ({op_error_line(e)}); send complete {FORMATS} files") from None
            raise

    def _run(self, fn, arrays):
        sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
        batched = len(sizes) == 1 and None not in sizes and _batched(fn)
        total = sizes.pop() if batched else 0
        if batched and self.batching is not None:
            return self._batcher(fn)(arrays)
        return _run_in_slices(fn, arrays, total if batched else 0)

    def _batcher(self, fn):
        name = next(k for k, v in self.module.signatures.items() if v is fn)
        if name not in self.batchers:
            self.batchers.setdefault(name, Batcher(
                lambda arrays: _run_in_slices(fn, arrays, len(next(iter(arrays.values())))),
                self.batching))
        return self.batchers[name]

    def close(self):
        for batcher in self.batchers.values():
            batcher.close()


def _batched(fn):
    """Do all of the signature's inputs and outputs have a leading batch dimension?"""
    specs = list(fn.structured_input_signature[1].values()) + list(fn.structured_outputs.values())
    return all(spec.shape.rank and spec.shape[0] is None for spec in specs)


def _run_in_slices(fn, arrays, total):
    """Outputs of `fn` on `arrays`, ROWS_PER_CALL rows a call when `total` (rows) is more."""
    if total <= ROWS_PER_CALL:
        return {k: v.numpy() for k, v in fn(**{n: tf.constant(a) for n, a in arrays.items()}).items()}
    parts = [_run_in_slices(fn, {n: a[i:i + ROWS_PER_CALL] for n, a in arrays.items()}, 0)
             for i in range(0, total, ROWS_PER_CALL)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def read_signature_defs(path):
    """SignatureDefs of the 'serve' MetaGraph in saved_model.pb, as TF Serving prints them."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    graph = next((g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags),
                 saved.meta_graphs[0])
    # TF Serving prints proto field names and fields left at their defaults.
    return {k: json_format.MessageToDict(v, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
            for k, v in graph.signature_def.items() if not k.startswith("__")}


def _stamp(path):
    """What changes when a version dir's files are written: its entries' sizes and times."""
    entries = []
    for file in Path(path).rglob("*"):
        info = file.stat()
        if stat.S_ISREG(info.st_mode):
            entries.append((str(file.relative_to(path)), info.st_size, info.st_mtime_ns))
    return tuple(sorted(entries))


class ModelRepository:
    """The newest loadable version of each named model, reloaded when a newer one appears."""

    def __init__(self, models, poll_seconds=1.0, log=None, batching=None, load=True,
                 max_image_pixels=DEFAULT_MAX_PIXELS):
        self.base_paths = {name: Path(p) for name, p in models.items()}
        self.poll_seconds = poll_seconds
        self.batching = batching
        self.max_image_pixels = max_image_pixels
        self.heavy = threading.RLock()  # held by one memory-heavy request at a time
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._loaded = {}
        self._broken = {}  # (name, version) -> the files' stamp when loading failed
        self._odd = set()  # directories named like versions that are none, told once
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if load:
            self.load()

    def load(self):
        """Load the newest loadable version of each model; warn of models that have none."""
        self.refresh()
        for name in self.names():
            if name not in self._loaded:
                self.log(f"warning: model {name!r} has no loadable version under "
                         f"{self.base_paths[name]} yet; serving it once one appears")

    def _load(self, name, version):
        """The loaded version, or None (warned once per version and content) if it fails."""
        path = self.base_paths[name] / str(version)
        stamp = _stamp(path)
        if self._broken.get((name, version)) == stamp:
            return None
        try:
            loaded = LoadedVersion(name, version, path, tf.saved_model.load(str(path)),
                                   read_signature_defs(path), self.batching,
                                   max_image_pixels=self.max_image_pixels, heavy=self.heavy)
            requests = read_warmup(path)
            if requests:
                done, seconds = replay(loaded.module.signatures, requests,
                                       lambda fn, arrays: _run_in_slices(fn, arrays, 0),
                                       lambda line: self.log(f"{name} version {version}: {line}"))
                of = f" of {len(requests)}" if done < len(requests) else ""
                self.log(f"{name} version {version}: replayed {done}{of} warm-up requests in "
                         f"{seconds:.2f} s" + (f"; the rest are skipped (at most {REPLAY_SECONDS:g} "
                                               "s of warm-up per version)" if of else ""))
            return loaded
        except Exception as e:  # an empty, half-copied or foreign dir must not stop serving
            self._broken[(name, version)] = stamp
            first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.log(f"warning: skipping {name} version {version} ({path}): it does not load "
                     f"({first_line})")
            return None

    def refresh(self):
        """Serve the newest loadable version of each model, if it is not the one served."""
        for name, base in self.base_paths.items():
            odd = []
            current, found = self._loaded.get(name), versions(base, odd)
            for path in odd:
                if path not in self._odd:
                    self._odd.add(path)
                    self.log(f"warning: {path} {NOT_A_VERSION}")
            keep = current is not None and current.version in found  # else: it was deleted
            for version in reversed(found):
                if keep and version <= current.version:
                    break
                loaded = self._load(name, version)
                if loaded is not None:
                    with self._lock:
                        self._loaded[name] = loaded
                    self.log(f"{name} version {version} is AVAILABLE")
                    if current is not None:
                        current.close()
                    break

    def start_polling(self):
        def poll():
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.refresh()
                except Exception as e:  # e.g. the base path vanished; keep serving what we have
                    self.log(f"warning: could not look for new versions: {e}")

        thread = threading.Thread(target=poll, daemon=True, name="version-poller")
        thread.start()
        return thread

    def stop(self):
        self._stop.set()
        with self._lock:
            for loaded in self._loaded.values():
                loaded.close()

    def get(self, name, version=None):
        with self._lock:
            loaded = self._loaded.get(name)
        if loaded is None:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if version is not None and version != loaded.version:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return loaded

    def names(self):
        return sorted(self.base_paths)
