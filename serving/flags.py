"""tensorflow_model_server's command-line flags that the local stand-in takes.

Kept apart from server.py, which loads TensorFlow and the HTTP server, so a
command line can declare them without loading either. Beyond TF Serving's own
flags: --host, --max_body_bytes, --max_image_pixels and --max_connections bound what clients
can take.
"""

from serving.image_header import DEFAULT_MAX_PIXELS


def _true_false(value):
    """TF Serving's bool flags: `--enable_batching`, `--enable_batching=true|false`."""
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError(value)


def add_flags(parser):
    """Add tensorflow_model_server's flags that apply to the stand-in, plus --host."""
    parser.add_argument("--model_name", default="default", help="name of a single model")
    parser.add_argument("--model_base_path", help="directory holding <int version>/ SavedModels")
    parser.add_argument("--model_config_file", help="model_config_list text proto (many models)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: any free)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free, -1: off)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new versions")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default loopback only; 0.0.0.0 exposes it)")
    parser.add_argument("--max_body_bytes", type=int, default=16 * 1024 * 1024,
                        help="largest accepted request body (REST) or message (gRPC)")
    parser.add_argument("--max_image_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse encoded images (image_bytes) whose header declares more "
                             "pixels: a small file can decode to gigabytes")
    parser.add_argument("--rest_api_num_threads", type=int, default=8,
                        help="REST requests worked on at once (bodies over 1 MiB: one at a "
                             "time); more wait their turn")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                        help="close a REST connection idle (or stalled mid-request) this long")
    parser.add_argument("--grpc_max_threads", type=int, default=4,
                        help="gRPC calls worked on at once (as many more wait; beyond: "
                             "RESOURCE_EXHAUSTED)")
    parser.add_argument("--enable_batching", type=_true_false, nargs="?", const=True,
                        default=False, metavar="true|false",
                        help="batch concurrent requests to a signature (serving/batching.py)")
    parser.add_argument("--batching_parameters_file",
                        help="BatchingParameters text proto (e.g. serving/batching_parameters.txt); "
                             "without it: max_batch_size 32, batch_timeout_micros 2000, "
                             "max_enqueued_batches 100, num_batch_threads 2")
    parser.add_argument("--max_connections", type=int, default=1000,
                        help="open REST connections; beyond it new ones wait to be accepted")
