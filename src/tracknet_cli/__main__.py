"""`python -m tracknet_cli` is the same as the `tracknet` command (the console script runs ``main``).

While the command-line app loads (typer, rich, pydantic and the command modules), a Ctrl-C or
SIGTERM is only noted (``tracknet_cli.stopping.held``) and acted on once the imports are done:
raised inside an import, a ``KeyboardInterrupt`` can be swallowed by a finalizer, wrapped in another
error, or abort a native extension, leaving no line and a wrong exit code. So a signal that comes
while tracknet loads is exit 130 and one line, like one that comes later. Only a signal during
Python's own start-up, before this runs, is beyond it."""

import sys


def _interrupted() -> None:
    from tracknet_cli import stopping

    stopping.ignore()
    sys.stderr.write(f"error: {stopping.INTERRUPTED_BEFORE_START}\n")
    sys.stderr.flush()
    sys.exit(130)


def main() -> None:
    try:
        from tracknet_cli import stopping

        with stopping.held():
            from tracknet_cli.cli.app import main as app_main
        stopping.sigterm_as_ctrl_c()
    except KeyboardInterrupt:
        _interrupted()
    app_main()


if __name__ == "__main__":
    main()
