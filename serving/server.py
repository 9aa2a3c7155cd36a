"""A local stand-in for tensorflow_model_server (REST and gRPC): `python -m training serve`.

It takes tensorflow_model_server's own flags, so the same command line works
with either, and speaks its REST API and gRPC PredictionService (Predict,
GetModelMetadata) for the models we export. It is for machines without TF
Serving (no pip package ships the server binary); use TF Serving itself in
production. Its flags are declared in flags.py.

REST runs on Waitress rather than a thread per connection: connections are read
without threads (a slow or idle client costs a socket, not a thread, and is
closed once idle, or still sending one request, for --rest_api_timeout_in_ms),
--max_connections bounds the sockets, large bodies go to a temp file, not
memory, and --rest_api_num_threads requests are worked on at once while the rest
wait their turn. Big requests run through the model in slices (see
repository.ROWS_PER_CALL), so their activations' memory is bounded too.
"""

import logging
import time
from pathlib import Path

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from serving.batching import BatchingParameters, read_parameters
from serving.errors import ServingError
from serving.layout import parse_model_config_file
from serving.repository import ModelRepository
from serving.rest_api import RestApp


def models_from_flags(args):
    if args.model_config_file:
        return parse_model_config_file(args.model_config_file)
    if not args.model_base_path:
        raise ServingError("Give --model_base_path=DIR (with --model_name=NAME) or "
                           "--model_config_file=FILE, e.g. export/models.config")
    return {args.model_name: str(Path(args.model_base_path).resolve())}


class _DeadlineChannel(HTTPChannel):
    """A connection that notes when its current request began arriving."""

    request_started = None

    def received(self, data):
        if data and self.request is None:
            self.request_started = time.time()
        return super().received(data)


class _Server(TcpWSGIServer):
    """Waitress closes connections idle for channel_timeout; this one also closes those that
    trickle a request (a byte now and then counts as activity) for longer than that."""

    channel_class = _DeadlineChannel

    def maintenance(self, now):
        super().maintenance(now)
        cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            if channel.request is not None and (channel.request_started or now) < cutoff:
                channel.will_close = True


class RestServer:
    """The REST API on Waitress, with serve_forever / shutdown / server_port."""

    def __init__(self, app, args):
        timeout = max(1, round(args.rest_api_timeout_in_ms / 1000))
        adjustments = Adjustments(
            host=args.host, port=args.rest_api_port, threads=args.rest_api_num_threads,
            connection_limit=args.max_connections, channel_timeout=timeout,
            cleanup_interval=max(1, timeout // 4), ident="kat-serving",
            # Bodies up to 4x the limit are read (to a temp file), so the app refuses them in
            # TF Serving's JSON; Waitress refuses bigger ones itself (413, plain text).
            max_request_body_size=4 * args.max_body_bytes)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adjustments.threads)
        self._map = {}
        try:
            self._server = _Server(app, self._map, dispatcher=dispatcher, adj=adjustments,
                                   sockinfo=adjustments.listen[0])
        except OSError as e:
            dispatcher.shutdown()
            raise ServingError(f"REST port {args.host}:{args.rest_api_port} is in use or not "
                               f"bindable ({e.strerror}); stop the other server or pass another "
                               "--rest_api_port (0: any free port)") from None
        self.server_port = int(self._server.effective_port)

    def serve_forever(self):
        self._server.run()

    def shutdown(self):
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)


def make_server_from_flags(args):
    """(REST server, gRPC server or None, repository), not yet serving."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" under load is normal
    batching = None
    if args.enable_batching:
        batching = (read_parameters(args.batching_parameters_file) if args.batching_parameters_file
                    else BatchingParameters())
    elif args.batching_parameters_file:
        raise ServingError("--batching_parameters_file is used only with --enable_batching")
    # Ports are bound before the models load, so a port in use is told at once.
    repository = ModelRepository(models_from_flags(args), args.file_system_poll_wait_seconds,
                                 batching=batching, load=False,
                                 max_image_pixels=args.max_image_pixels)
    server = RestServer(RestApp(repository, args.max_body_bytes), args)
    grpc_server = None
    if args.port >= 0:
        from serving.grpc_api import make_grpc_server

        try:
            grpc_server, args.port = make_grpc_server(repository, args.host, args.port,
                                                      args.grpc_max_threads, args.max_body_bytes)
        except ServingError:
            server.shutdown()
            raise
    repository.load()
    return server, grpc_server, repository


def serve(args):
    server, grpc_server, repository = make_server_from_flags(args)
    repository.start_polling()
    if grpc_server is not None:
        grpc_server.start()
    grpc_note = f", gRPC on {args.host}:{args.port}" if grpc_server is not None else ""
    print(f"Local TF Serving stand-in: REST on http://{args.host}:{server.server_port}{grpc_note}; "
          f"serving {', '.join(repository.names())}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        repository.stop()
        if grpc_server is not None:
            grpc_server.stop(grace=1)
        server.shutdown()
    return 0
