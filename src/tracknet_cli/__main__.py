"""`python -m tracknet_cli` is the same as the `tracknet` command (the console script runs ``main``).

The signal policy (``tracknet_cli.stopping``) is installed before the command-line app (typer, rich,
and through the commands torch) is imported, so a Ctrl-C or SIGTERM that comes while it loads is
exit 130 and one line, like one that comes later. Only a signal during Python's own start-up, before
this runs, is beyond it."""

import sys


def main() -> None:
    try:
        from tracknet_cli import stopping

        stopping.sigterm_as_ctrl_c()
        from tracknet_cli.cli.app import main as app_main
    except KeyboardInterrupt:
        from tracknet_cli import stopping

        stopping.ignore()
        sys.stderr.write("error: interrupted before tracknet started; nothing was written\n")
        sys.stderr.flush()
        sys.exit(130)
    app_main()


if __name__ == "__main__":
    main()
