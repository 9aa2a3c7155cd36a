"""Server-side batching, as tensorflow_model_server's `--enable_batching` does it.

Concurrent requests to one signature wait in a queue; a batch thread takes the oldest, adds
the requests that arrive within `batch_timeout_micros` of it (up to `max_batch_size` rows),
runs them through the model as one call and hands each request its rows of the outputs.
One call of 32 rows costs far less than 32 calls of one row, so under many concurrent
clients throughput rises, at the price of up to the timeout in latency when load is light.

The parameters file is TF Serving's BatchingParameters text proto
(`max_batch_size { value: 32 }`...). Its proto is not in tensorflow-serving-api's pip
package, so the few fields the stand-in uses are read here by hand.
"""

import queue
import re
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from serving.errors import ServingError


class QueueFull(RuntimeError):
    """More requests wait than `max_enqueued_batches` batches hold (HTTP 503, UNAVAILABLE)."""


@dataclass
class BatchingParameters:
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2


_FIELD = re.compile(r"(\w+)\s*\{\s*value\s*:\s*([^\s}]+)\s*\}|(\S+)")


def read_parameters(path):
    """BatchingParameters from TF Serving's text proto at `path` (`# comments` allowed)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ServingError(f"Cannot read --batching_parameters_file {path} ({e.strerror})") from None
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    known = {f.name for f in fields(BatchingParameters)}
    values = {}
    for match in _FIELD.finditer(text):
        name, value, junk = match.groups()
        if junk is not None or name not in known:
            raise ServingError(f"{path}: cannot use {(junk or name)!r}; the stand-in reads "
                               f"{', '.join(f'{k} {{ value: N }}' for k in sorted(known))}")
        try:
            values[name] = int(value)
        except ValueError:
            raise ServingError(f"{path}: {name} must be a whole number, got {value!r}") from None
        if values[name] < (0 if name == "batch_timeout_micros" else 1):
            raise ServingError(f"{path}: {name} must be at least "
                               f"{0 if name == 'batch_timeout_micros' else 1}, got {value}")
    return BatchingParameters(**values)


_STOP = object()  # tells a batch thread to end


class _Task:
    def __init__(self, arrays, rows):
        self.arrays, self.rows = arrays, rows
        self.done = threading.Event()
        self.outputs = self.error = None


class Batcher:
    """Batches the calls of `run(arrays) -> {output: NumPy}` made from many threads.

    Requests whose inputs differ in anything but the number of rows (another item shape,
    say) go into separate batches; one bigger than max_batch_size runs on its own.
    """

    def __init__(self, run, params):
        self.run, self.params = run, params
        self._queue = queue.Queue(params.max_enqueued_batches * params.max_batch_size)
        self._held = None  # a task taken from the queue that did not fit the last batch
        self.batches = self.largest = 0  # batches run, and the most rows one had (monitoring)
        self._take = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"batch-{i}")
                         for i in range(params.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def __call__(self, arrays):
        rows = {a.shape[0] for a in arrays.values()}.pop()
        if rows > self.params.max_batch_size:
            return self.run(arrays)
        task = _Task(arrays, rows)
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise QueueFull(f"The batching queue is full ({self.params.max_enqueued_batches} "
                            "batches wait); retry later, or raise max_enqueued_batches") from None
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    @staticmethod
    def _kind(task):
        return tuple((k, a.dtype.str, a.shape[1:]) for k, a in sorted(task.arrays.items()))

    def close(self):
        """Stop the batch threads once the requests already queued are answered."""
        for _ in self._threads:
            self._queue.put(_STOP)

    def _next_batch(self):
        """The oldest waiting task and those that join it within the timeout (None: stop)."""
        with self._take:  # one thread gathers at a time, so batches fill in arrival order
            first = self._held if self._held is not None else self._queue.get()
            self._held = None
            if first is _STOP:
                return None
            batch, rows, kind = [first], first.rows, self._kind(first)
            deadline = time.monotonic() + self.params.batch_timeout_micros / 1e6
            while rows < self.params.max_batch_size:
                try:
                    task = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if task is _STOP or self._kind(task) != kind or \
                        rows + task.rows > self.params.max_batch_size:
                    self._held = task  # first of the next batch
                    break
                batch.append(task)
                rows += task.rows
            return batch

    def _work(self):
        while (batch := self._next_batch()) is not None:
            self.batches += 1
            self.largest = max(self.largest, sum(t.rows for t in batch))
            try:
                joined = {k: np.concatenate([t.arrays[k] for t in batch]) for k in batch[0].arrays}
                outputs = self.run(joined)
                start = 0
                for task in batch:
                    task.outputs = {k: v[start:start + task.rows] for k, v in outputs.items()}
                    start += task.rows
            except Exception as e:  # every request of the batch gets the error
                for task in batch:
                    task.error = e
            for task in batch:
                task.done.set()
