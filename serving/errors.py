"""Errors the serving command reports as one line (the CLI turns them into exit 2)."""


class ServingError(RuntimeError):
    """The server cannot start as asked (a port in use, no models); the message says what to do."""
