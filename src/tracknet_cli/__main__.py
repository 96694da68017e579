"""`python -m tracknet_cli` is the same as the `tracknet` command."""

from tracknet_cli.cli.app import main

if __name__ == "__main__":
    main()
