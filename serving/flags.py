"""tensorflow_model_server's command-line flags that the local stand-in takes.

Kept apart from server.py, which loads TensorFlow and Werkzeug, so a command
line can declare them without loading either.
"""


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
                        help="largest accepted request body")
