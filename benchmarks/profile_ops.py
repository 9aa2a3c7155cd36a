"""Op time by kernel type from a TensorFlow profiler trace (the .xplane.pb it writes).

TensorBoard's Profile tab shows the same, but needs tensorboard-plugin-profile
and a browser; the benchmarks read the trace directly to print the top ops
and each convolution kernel's own FLOP/s (the ceiling the whole step cannot
pass while convolutions are most of it). Kernel events are those with an op
type (display name) on TF's executor threads; kernel ops do not nest there,
so each event's duration is its self time.
"""

import collections
from pathlib import Path

from tensorflow.tsl.profiler.protobuf import xplane_pb2

# oneDNN's rewrites of the graph's ops: _MklNativeConv2D is Conv2D, and so on.
ONEDNN_PREFIXES = ("_MklNative", "_Mkl")


def op_type(kernel):
    for prefix in ONEDNN_PREFIXES:
        if kernel.startswith(prefix):
            return kernel[len(prefix):]
    return kernel


def kernel_seconds(profile_dir):
    """{kernel type: seconds} summed over the newest trace under profile_dir."""
    traces = sorted(Path(profile_dir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not traces:
        raise FileNotFoundError(f"no profiler trace (*.xplane.pb) under {profile_dir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(traces[-1].read_bytes())
    seconds = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                kernel = plane.event_metadata[event.metadata_id].display_name
                if kernel:
                    seconds[kernel] += event.duration_ps / 1e12
    return dict(seconds)


def summary(seconds, steps, gflop_by_op, top=5):
    """Top kernels by share of op time, FLOP/s of each kernel that flops.py counts, and
    those kernels' share of op time."""
    total = sum(seconds.values())
    top_ops = [{"op": kernel, "ms_per_step": s / steps * 1000, "share": s / total}
               for kernel, s in sorted(seconds.items(), key=lambda kv: -kv[1])[:top]]
    by_type = collections.Counter()
    for kernel, s in seconds.items():
        by_type[op_type(kernel)] += s
    kernel_gflops = {op: gflop * steps / by_type[op] for op, gflop in gflop_by_op.items()
                     if by_type.get(op)}
    counted = [op for op in gflop_by_op if by_type.get(op)]
    counted_seconds = sum(by_type[op] for op in counted)
    flop_kernels = (sum(gflop_by_op[op] for op in counted) * steps / counted_seconds
                    if counted else None)
    return {"op_ms_per_step": total / steps * 1000, "top_ops": top_ops,
            "kernel_gflops": kernel_gflops, "counted_kernels_gflops": flop_kernels,
            "counted_share": counted_seconds / total}
