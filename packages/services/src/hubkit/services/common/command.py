"""The command line every Kubernetes-facing service shares: ``--config``, ``--log-level``, exit codes.

Exit codes: 0 after a clean stop, 2 when the settings are invalid, 1 when the service stops on an
error; both errors print one sentence prefixed with the program name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from .exceptions import ServiceError, SettingsError
from .settings import ServiceSettings, load_settings

S = TypeVar("S", bound=ServiceSettings)


def service_main(
    prog: str,
    description: str | None,
    settings_class: type[S],
    run: Callable[[S], Coroutine[Any, Any, None]],
    argv: list[str] | None = None,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    before_run: Callable[[argparse.Namespace, S], int | None] | None = None,
) -> int:
    """Parse arguments, load ``settings_class`` from the file and ``$HUBKIT_<NAME>_*``, run until stopped.

    ``add_arguments`` adds service-specific options; ``before_run`` may answer them and return an exit
    code instead of running the service (e.g. print a generated configuration).
    """
    name = prog.removeprefix("hubkit-").upper().replace("-", "_")
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--config", type=Path, help=f"settings file (.yaml or .json; default $HUBKIT_{name}_CONFIG)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(settings_class, args.config, env_prefix=f"HUBKIT_{name}_")
    except SettingsError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    if before_run is not None and (code := before_run(args, settings)) is not None:
        return code
    try:
        asyncio.run(run(settings))
    except ServiceError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0
