"""The TF Serving side: a local stand-in for tensorflow_model_server (REST and gRPC), the model
repository it serves from, and a client. It reads only the export format (`layout.py`), never the
training code; `pip install -e .[serving]` adds what it needs."""
