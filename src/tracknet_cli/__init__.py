"""TrackNet CLI: ball tracking for sports video."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is looked up on first use: importlib.metadata costs ~30 ms at every start, before
    # the entry point can install its signal handlers (tracknet_cli.__main__).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("tracknet-cli")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
