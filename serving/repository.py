"""Load the exported SavedModels of a TF Serving base path and follow new versions.

Like TF Serving's default version policy, each model serves its latest
version; a poll thread loads a version dropped in while running.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from serving.layout import versions


class NotFound(LookupError):
    """Unknown model or version (HTTP 404)."""


@dataclass
class LoadedVersion:
    name: str
    version: int
    path: Path
    module: object  # what tf.saved_model.load returned; keeps the functions alive
    signature_defs: dict  # name -> SignatureDef as JSON-ready dict (TF Serving's metadata)

    def signature(self, name):
        if name not in self.module.signatures:
            raise KeyError(f"Serving signature name: \"{name}\" not found in signature def; "
                           f"available: {', '.join(sorted(self.module.signatures))}")
        return self.module.signatures[name]


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


class ModelRepository:
    """The latest version of each named model, reloaded when a newer one appears."""

    def __init__(self, models, poll_seconds=1.0):
        self.base_paths = {name: Path(p) for name, p in models.items()}
        self.poll_seconds = poll_seconds
        self._loaded = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()

    def refresh(self):
        """Load any model whose newest version on disk is not the one served."""
        for name, base in self.base_paths.items():
            found = versions(base)
            current = self._loaded.get(name)
            if found and (current is None or current.version != found[-1]):
                path = base / str(found[-1])
                loaded = LoadedVersion(name, found[-1], path, tf.saved_model.load(str(path)),
                                       read_signature_defs(path))
                with self._lock:
                    self._loaded[name] = loaded

    def start_polling(self):
        def poll():
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.refresh()
                except Exception as e:  # a half-copied version must not kill the poller
                    print(f"warning: could not load a new version: {e}")

        thread = threading.Thread(target=poll, daemon=True, name="version-poller")
        thread.start()
        return thread

    def stop(self):
        self._stop.set()

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
