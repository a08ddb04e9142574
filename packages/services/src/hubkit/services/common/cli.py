"""The one command line of every HubKit service: arguments, logging, settings, status server, signals,
exit codes.

Each service's ``main`` is ``run_service(ServiceCommand(...), argv)``:

- **Arguments**: ``--config PATH`` (else ``$HUBKIT_<NAME>_CONFIG``), ``--log-level`` (DEBUG, INFO,
  WARNING, ERROR; default INFO), then the service's own. ``--debug`` is a deprecated alias of
  ``--log-level DEBUG`` (the culler and the keepalive had it).
- **Logging**: one line per event on stderr, ``[I 2026-09-14 09:00:00,123 hubkit.services.culler]
  message`` — the format of the hub's own log, where a managed service's lines end up.
- **Settings**: the service's typed settings (:mod:`.settings`), from the file and ``HUBKIT_<NAME>_*``.
- **Status server**: ``/health``, ``/status``, ``/metrics`` (:mod:`.httpserver`) where the service listens.
- **Signals**: SIGTERM or SIGINT cancels the service's run; its status server and clients are then closed.
- **Exit codes**: 0 after a clean stop, 1 when the service stopped on an error, 2 when the settings (or the
  arguments: argparse's own code) are invalid. Errors are one line on stderr: ``<prog>: <sentence>``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from .exceptions import ServiceError, SettingsError
from .httpserver import HealthCallback, StatusCallback, StatusServer
from .settings import ServiceSettings, load_settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SETTINGS",
    "LOG_FORMAT",
    "Running",
    "ServiceCommand",
    "run_service",
    "setup_logging",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETTINGS = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"

S = TypeVar("S", bound=ServiceSettings)

log = logging.getLogger("hubkit.services")


@dataclass
class Running:
    """A built service, ready to run: what ``run_service`` starts, serves and closes.

    ``work`` runs until it returns (an exit code, or None for 0) or is cancelled by a signal; ``listen`` is
    ``(host, port)`` of the status server, None for none; ``close`` run in order after ``work`` ends.
    """

    work: Coroutine[Any, Any, int | None]
    registry: CollectorRegistry
    health: HealthCallback
    status: StatusCallback
    listen: tuple[str, int] | None
    close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceCommand(Generic[S]):
    """One service's command: its name, settings model and how to build it from settings and arguments.

    ``add_arguments`` adds the service's own options; ``before_run`` may answer them and return an exit
    code instead of running (say, print a generated configuration), or return None to go on.
    """

    prog: str
    description: str
    settings: type[S]
    build: Callable[[S, argparse.Namespace], Awaitable[Running]]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    before_run: Callable[[argparse.Namespace, S], int | None] | None = None

    @property
    def env_prefix(self) -> str:
        return "HUBKIT_" + self.prog.removeprefix("hubkit-").upper().replace("-", "_") + "_"


def setup_logging(level: str) -> None:
    """One format for every service (see the module docstring)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def _parser(command: ServiceCommand[Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=command.prog, description=command.description)
    parser.add_argument(
        "--config",
        type=Path,
        help=f"settings file (.yaml or .json; default ${command.env_prefix}CONFIG)",
    )
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help="default INFO"
    )
    parser.add_argument("--debug", action="store_true", help="deprecated: use --log-level DEBUG")
    if command.add_arguments is not None:
        command.add_arguments(parser)
    return parser


def _status_prefix(prog: str) -> str:
    """Where the hub's proxy sends ``/services/<name>/`` (JupyterHub passes it to managed services)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{prog}/"


async def _serve(command: ServiceCommand[S], settings: S, args: argparse.Namespace) -> int:
    running = await command.build(settings, args)
    task = asyncio.ensure_future(running.work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    server: StatusServer | None = None
    try:
        if running.listen is not None:
            server = StatusServer(
                command.prog, running.registry, running.health, running.status, _status_prefix(command.prog)
            )
            host, port = running.listen
            try:
                port = server.start(host, port)
            except OSError as e:
                raise ServiceError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
            log.info("%s: /health, /status and /metrics on http://%s:%d", command.prog, host, port)
        code = await task
        return EXIT_OK if code is None else code
    except asyncio.CancelledError:
        log.info("%s: stopping on a signal", command.prog)
        return EXIT_OK
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if server is not None:
            await server.stop()
        for close in running.close:
            await close()


def run_service(command: ServiceCommand[S], argv: list[str] | None = None) -> int:
    """Parse ``argv``, load the settings, build and run the service until it ends or is signalled."""
    args = _parser(command).parse_args(argv)
    setup_logging("DEBUG" if args.debug else args.log_level)
    if args.debug:
        log.warning("%s: --debug is deprecated; use --log-level DEBUG", command.prog)
    try:
        settings = load_settings(command.settings, args.config, env_prefix=command.env_prefix)
    except SettingsError as e:
        print(f"{command.prog}: {e}", file=sys.stderr)
        return EXIT_SETTINGS
    if command.before_run is not None and (code := command.before_run(args, settings)) is not None:
        return code
    try:
        return asyncio.run(_serve(command, settings, args))
    except SettingsError as e:  # found while building (say, no hub token in the environment)
        print(f"{command.prog}: {e}", file=sys.stderr)
        return EXIT_SETTINGS
    except ServiceError as e:
        print(f"{command.prog}: {e}", file=sys.stderr)
        return EXIT_FAILED
