"""The ``connector`` command line. Its dependencies (typer, rich) come with the ``cli``
extra and are imported only when the command runs, never by ``import connector_core``."""

from __future__ import annotations

import sys

INSTALL_HINT = "pip install 'connector-core[cli]'"


def main() -> None:
    """Run the ``connector`` command (the console script's entry point)."""
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError as exc:
        print(
            f"error: the connector command line needs {exc.name}\nhint: {INSTALL_HINT}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    from connector_core._cli._app import run_app

    run_app()
