"""``tinystories serve MODEL [--key value ...]``: the flags are ``ServeSettings``' fields (``HfArgumentParser``),
MODEL is positional; errors are ``ServeError``s, which the ``tinystories`` command prints as one line."""

import dataclasses
import ipaddress
import logging
import sys

from transformers import HfArgumentParser

from ..errors import ServeError
from .settings import API_KEY_ENV, ServeSettings, require_serve_dependencies

logger = logging.getLogger("tinystories.serve")
DESCRIPTION = (
    "Serve a causal LM through an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, "
    "/health), batching concurrent requests into one generate call."
)


class _ArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` where a field whose metadata says ``positional`` is a positional argument (argparse's:
    anywhere on the line). ``_parse_dataclass_field`` is HfArgumentParser's per-field hook; a test pins this."""

    def _parse_dataclass_field(self, parser, field: dataclasses.Field) -> None:
        if field.metadata.get("positional"):
            parser.add_argument(field.name, metavar=field.name.upper(), help=field.metadata.get("help"))
        else:
            super()._parse_dataclass_field(parser, field)


def argument_parser() -> HfArgumentParser:
    return _ArgumentParser(ServeSettings, prog="tinystories serve", description=DESCRIPTION)


def parse_args(argv: list[str]) -> ServeSettings:
    """``MODEL [--key value ...]`` -> settings; ``--help`` prints every flag with its default (exit 0)."""
    parser = argument_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        raise SystemExit(0)

    def refuse(message: str):
        raise ServeError(message)

    parser.error = refuse  # a bad command line is a ServeError (one line), not argparse's usage + exit
    settings, unknown = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True, look_for_args_file=False
    )
    if unknown:
        raise ServeError(f"unrecognized arguments: {' '.join(unknown)} ('tinystories serve --help' lists them)")
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(settings: ServeSettings) -> None:
    """Log a warning when the server listens beyond this machine without an API key (the key is never logged)."""
    if settings.api_key:
        logger.info("Requests to /v1/... need the API key (Authorization: Bearer <key>)")
    elif not _is_loopback(settings.host):
        logger.warning(
            "Listening on %s, which is not a loopback address, without an API key: anyone who can reach this port "
            "can use the model. Set --api_key or the environment variable %s.",
            settings.host,
            API_KEY_ENV,
        )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the model, listen, log the URL, serve until Ctrl-C."""
    settings = parse_args(list(sys.argv[1:] if argv is None else argv))
    require_serve_dependencies()
    import uvicorn

    from .app import base_url, bind_socket, build_app

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=settings.log_level.upper()
    )
    sock = bind_socket(settings.host, settings.port)  # before the (slow) load: a busy port fails at once
    try:
        app = build_app(settings=settings)
        served = app.state.served
        logger.info(
            "Serving %s (%s, context %d, max_batch_size %d) at %s",
            served.name,
            type(served.model).__name__,
            served.context,
            settings.max_batch_size,
            base_url(sock),
        )
        warn_if_exposed(settings)
        config = uvicorn.Config(app, log_level=settings.log_level, timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # (uvicorn re-raises the Ctrl-C it handled, once shut down)
            pass
        if not server.started:
            raise ServeError("the server did not start (see the log above)")
    finally:
        sock.close()
