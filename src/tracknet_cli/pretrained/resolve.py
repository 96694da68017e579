"""The one resolver for every place a checkpoint is given: `predict`/`eval`/`export`/`label --checkpoint`,
`train --init-from` and `Tracker.from_pretrained`. Each of them calls it once, where the checkpoint comes in
(the CLI command, or the Python API's constructor), and hands the file it found on: the loaders
(`inference.engine.load_engine`, `inference.checkpoint.load_model`) take a file and resolve nothing.

What a user may give, tried in this order:

1. an existing file: that file;
2. an existing folder: a run directory (its ``weights/best.safetensors``) or a folder of runs
   (the newest ``expN`` with weights): ``inference.rundir.best_weights_in``;
3. a model name (``tennis``): the bundled model, or one from a ``$TRACKNET_MODELS_DIR`` folder
   (``catalogue.py``); an unknown name fails with did-you-mean suggestions;
4. a Hugging Face hub repo id, ``org/name`` (its ``model.safetensors``, or its only ``.safetensors``),
   ``org/name/path/file.safetensors``, either with ``@revision``; ``hf:`` or ``hf://`` in front forces
   this reading. ``huggingface_hub.hf_hub_download`` fetches it into (or finds it in) the HF cache and
   honours ``HF_HUB_OFFLINE``; gated, missing or uncached-offline repos fail with one line.

Every failure is one line naming what was given and what to do: an ``InputError`` (exit 2), or a
``WeightsUnavailableError`` (exit 1) when the hub cannot be reached and the file is not cached.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Mapping, Optional

from tracknet_cli.errors import InputError, Names, WeightsUnavailableError, debug_enabled, first_line
from tracknet_cli.pretrained import MODELS_DIR_ENV
from tracknet_cli.pretrained.catalogue import BUNDLED, Catalogue, CatalogueEntry, load_catalogue

HUB_DEFAULT_FILE = "model.safetensors"

_HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(?P<file>/[^@]+)?(?:@(?P<rev>[^@]+))?$"
)
_BARE_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HubRef:
    repo: str
    filename: Optional[str] = None
    revision: Optional[str] = None

    def __str__(self) -> str:
        return (
            self.repo + (f"/{self.filename}" if self.filename else "") + (f"@{self.revision}" if self.revision else "")
        )


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """The file a checkpoint argument stands for, and how it was found."""

    path: Path
    kind: Literal["file", "run", "catalogue", "hub"]
    spec: str
    entry: Optional[CatalogueEntry] = None
    hub: Optional[HubRef] = None

    @property
    def label(self) -> str:
        """How messages name it: the model name, the hub id, or the file."""
        if self.entry is not None:
            return self.entry.label
        if self.hub is not None:
            return f"{self.hub} (Hugging Face hub, {self.path.name})"
        return str(self.path)


def parse_hub_id(text: str) -> Optional[HubRef]:
    """`org/name[/path/file.safetensors][@revision]`, optionally behind `hf:` or `hf://`; None when
    `text` cannot be a repo id. Without the prefix a path-like text (`./x`, `runs/a/b`, `a/b.safetensors`)
    is not one."""
    explicit = text.startswith(("hf://", "hf:"))
    body = text.split(":", 1)[1].lstrip("/") if explicit else text
    match = _HUB_ID.match(body)
    if match is None:
        return None
    repo, file, rev = match.group("repo"), match.group("file"), match.group("rev")
    filename = file.lstrip("/") if file else None
    if not explicit:
        if repo.endswith(".safetensors") or (filename is not None and not filename.endswith(".safetensors")):
            return None
    return HubRef(repo, filename or None, rev or None)


def resolve_checkpoint(
    spec: "str | os.PathLike[str]", *, parameter: str = "checkpoint", environ: Mapping[str, str] | None = None
) -> ResolvedCheckpoint:
    """The checkpoint file `spec` stands for (see the module docstring); `parameter`: the one that gave it,
    named in errors (`errors`: `--checkpoint` or `--init-from` in the CLI)."""
    text = os.fspath(spec)
    shown = "{" + parameter + "}"  # how errors name it: a placeholder (`errors`)
    if not text.strip():
        raise InputError(
            f"{shown} is empty: give a model name, a .safetensors file or a run folder", parameter=parameter
        )
    explicit_hub = text.startswith(("hf://", "hf:"))
    if not explicit_hub:
        path = Path(text).expanduser()
        if path.is_file():
            return ResolvedCheckpoint(path, "file", text)
        if path.is_dir():
            from tracknet_cli.inference.rundir import best_weights_in

            try:
                return ResolvedCheckpoint(best_weights_in(path), "run", text)
            except InputError:
                # a folder that happens to share a model's name (`tennis/` of clips): the model
                if not _is_name(text) or load_catalogue(environ).get(text.lower()) is None:
                    raise
        if _is_name(text):
            return _from_catalogue(text, parameter, load_catalogue(environ))
    hub = parse_hub_id(text)
    if hub is not None and (explicit_hub or not Path(hub.repo.split("/")[0]).expanduser().is_dir()):
        return _from_hub(hub, text, parameter, explicit_hub)
    if explicit_hub:
        raise InputError(
            f"{shown} {text}: not a Hugging Face repo id (hf:org/name[/file.safetensors][@revision])",
            parameter=parameter,
            value=text,
        )
    # `runs/exp9/best.safetensors` with runs/ here is a mistyped path, not a hub repo of an org "runs"
    hub_hint = f"; for the Hugging Face repo {hub.repo}, write hf:{text}" if hub is not None else ""
    raise InputError(
        f"{shown} {text}: checkpoint not found (no such file or run folder{hub_hint})", parameter=parameter, value=text
    )


def default_checkpoint(
    environ: Mapping[str, str] | None = None, *, catalogue: Catalogue | None = None
) -> ResolvedCheckpoint:
    """The catalogue's default model (`tracknet predict` without `--checkpoint`)."""
    catalogue = load_catalogue(environ) if catalogue is None else catalogue
    if catalogue.default is None:
        where = "this install bundles none" if not catalogue.entries else "no catalogue names a default"
        raise InputError(
            f"no {{checkpoint}} given and no default model ({where}): pass {{checkpoint}} NAME|FILE|RUN, "
            f"or set {MODELS_DIR_ENV} to a models folder (docs/models/pretrained.md)",
            parameter="checkpoint",
        )
    return _from_catalogue(catalogue.default, "checkpoint", catalogue)


def default_notice(resolved: ResolvedCheckpoint, names: Names = str) -> str:
    """The stderr line `tracknet predict` and `tracknet label` print when they picked the default model;
    `names` names the checkpoint parameter (`errors`: the CLI passes its flags)."""
    entry = resolved.entry
    assert entry is not None
    held = entry.spec.held_out
    score = f"; held-out F1 {held.f1:.2f} ({held.protocol} protocol, {held.split})" if held else ""
    option = names("checkpoint")
    return (
        f"no {option}: using the default model {entry.label}, {entry.spec.sport}{score}. "
        f"Pick another with {option} NAME|FILE|RUN (tracknet models lists the names)"
    )


def _is_name(text: str) -> bool:
    return bool(_BARE_WORD.match(text)) and not text.endswith((".safetensors", ".onnx", ".pt", ".pth"))


def _from_catalogue(name: str, parameter: str, catalogue: Catalogue) -> ResolvedCheckpoint:
    entry = catalogue.get(name.lower())
    if entry is None:
        raise InputError(
            f"{{{parameter}}} {name}: no such file, run folder or model name{_suggest(name, catalogue)}",
            parameter=parameter,
            value=name,
        )
    require_file(entry)
    return ResolvedCheckpoint(entry.path, "catalogue", name, entry=entry)


def require_file(entry: CatalogueEntry) -> None:
    """A catalogue entry whose file is gone is one line saying which catalogue to fix."""
    if not entry.path.is_file():
        fix = (
            "reinstall tracknet-cli"
            if entry.origin == BUNDLED
            else f"fix {entry.origin}/catalogue.yaml or put the file there"
        )
        raise InputError(f"model {entry.name}: its catalogue names {entry.path}, which is missing ({fix})")


def _suggest(name: str, catalogue: Catalogue) -> str:
    if not catalogue.entries:
        return f" (no model names are known here: this install bundles none and {MODELS_DIR_ENV} adds none)"
    close = catalogue.suggestions(name)
    if close:
        return f"; did you mean {' or '.join(close)}? (tracknet models lists them)"
    known = list(catalogue.entries)
    return f" (known models: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}; tracknet models lists them)"


def _from_hub(ref: HubRef, text: str, parameter: str, explicit: bool) -> ResolvedCheckpoint:
    prefix = f"{{{parameter}}} {text}: " + (
        "" if explicit else "no such file or run folder, and as a Hugging Face repo id: "
    )
    try:
        import huggingface_hub  # noqa: F401 - installed with transformers; checked for a clear line
    except ImportError:
        raise InputError(
            prefix + "huggingface_hub is not installed (pip install huggingface_hub)", parameter=parameter
        ) from None
    with _quiet_hub_logs():
        return _download(ref, text, prefix, parameter)


def _download(ref: HubRef, text: str, prefix: str, parameter: str) -> ResolvedCheckpoint:
    """`prefix` names the parameter by its placeholder (`errors`): every error here declares it."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    try:
        if ref.filename is not None:
            path = Path(hf_hub_download(ref.repo, ref.filename, revision=ref.revision))
            return ResolvedCheckpoint(path, "hub", text, hub=ref)
        try:
            path = Path(hf_hub_download(ref.repo, HUB_DEFAULT_FILE, revision=ref.revision))
            return ResolvedCheckpoint(path, "hub", text, hub=HubRef(ref.repo, HUB_DEFAULT_FILE, ref.revision))
        except hf_errors.EntryNotFoundError as missing:
            candidates = _hub_safetensors(ref)
            if candidates is None:
                raise missing
            if len(candidates) == 1:
                path = Path(hf_hub_download(ref.repo, candidates[0], revision=ref.revision))
                return ResolvedCheckpoint(path, "hub", text, hub=HubRef(ref.repo, candidates[0], ref.revision))
            if not candidates:
                raise InputError(
                    prefix + f"the repo {ref.repo} holds no .safetensors file", parameter=parameter
                ) from None
            raise InputError(
                prefix + f"the repo {ref.repo} holds several .safetensors files "
                f"({', '.join(candidates[:4])}{' ...' if len(candidates) > 4 else ''}): "
                f"name one, e.g. {ref.repo}/{candidates[0]}",
                parameter=parameter,
            ) from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - every hub failure becomes one line
        if _unreachable(exc):  # the network, not what the user typed: a runtime failure (exit 1)
            raise WeightsUnavailableError(
                prefix + f"cannot reach the Hugging Face hub ({type(exc).__name__}: "
                f"{first_line(exc)}); try again online, or set HF_HUB_OFFLINE=1 "
                "to use the cache only",
                parameter=parameter,
            ) from exc
        raise InputError(prefix + _hub_reason(exc, ref), parameter=parameter) from exc


def _unreachable(exc: BaseException) -> bool:
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, (hf_errors.OfflineModeIsEnabled, hf_errors.LocalEntryNotFoundError)):
        return False
    # httpx (or the httpx2 fork some huggingface_hub builds use) and requests: matched by class name
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "TimeoutError", "Timeout"})


@contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """huggingface_hub logs each retry as a warning: errors are our one line, unless --debug."""
    from huggingface_hub.utils import logging as hf_logging

    logger = hf_logging.get_logger("huggingface_hub")
    level = logger.level
    if not debug_enabled():
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _hub_safetensors(ref: HubRef) -> Optional[list[str]]:
    """The repo's .safetensors files: from the cache when offline (None when it holds no snapshot),
    else from the hub's file list."""
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors

    if constants.is_offline_mode():
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(ref.repo, revision=ref.revision, local_files_only=True))
        except hf_errors.LocalEntryNotFoundError:
            return None
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
    from huggingface_hub import HfApi

    return sorted(f for f in HfApi().list_repo_files(ref.repo, revision=ref.revision) if f.endswith(".safetensors"))


def _hub_reason(exc: BaseException, ref: HubRef) -> str:
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors

    login = "log in with `hf auth login` or set HF_TOKEN"
    if isinstance(exc, hf_errors.GatedRepoError):
        return f"the repo {ref.repo} is gated: accept its terms on https://huggingface.co/{ref.repo}, then {login}"
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return f"the hub has no repo {ref.repo} (if it is private, {login})"
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return f"the repo {ref.repo} has no revision {ref.revision}"
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        what = f"{ref.repo}/{ref.filename or HUB_DEFAULT_FILE}" + (f"@{ref.revision}" if ref.revision else "")
        if constants.is_offline_mode():
            return (
                f"{what} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set: "
                f"download it once online (unset HF_HUB_OFFLINE), or pass a local file"
            )
        return f"cannot reach the hub and {what} is not in the Hugging Face cache ({first_line(exc)})"
    if isinstance(exc, hf_errors.EntryNotFoundError):
        return f"the repo {ref.repo} has no file {ref.filename or HUB_DEFAULT_FILE}"
    if isinstance(exc, hf_errors.HFValidationError):
        return f"not a valid repo id ({first_line(exc)})"
    return f"the hub download failed ({type(exc).__name__}: {first_line(exc)})"
