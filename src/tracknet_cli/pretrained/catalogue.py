"""The model catalogues: the bundled one (package data beside this file) and those of the folders in
``$TRACKNET_MODELS_DIR`` (a team's shared models: the same ``catalogue.yaml`` beside its files).

A name resolves to the first catalogue that has it: the folders in the order the variable lists
them (``os.pathsep``-separated), then the bundled models. The default model (``tracknet predict``
without ``--checkpoint``) is the first ``default:`` set in that order. Reading a catalogue and a
checkpoint's header needs neither torch nor huggingface_hub.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracknet_cli.choices import ProtocolName, near
from tracknet_cli.errors import ConfigError, InputError, first_line
from tracknet_cli.pretrained import CATALOGUE_FILE, MODELS_DIR_ENV, PACKAGE_DIR

FORMAT_VERSION = 1
BUNDLED = "bundled"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Strict):
    """Where training footage came from: a public repository at a commit (never the data itself)."""

    repository: str
    commit: Optional[str] = None
    paths: list[str] = Field(default_factory=list)
    note: Optional[str] = None

    def line(self) -> str:
        at = f"@{self.commit[:12]}" if self.commit else ""
        return f"{self.repository}{at}" + (f" ({', '.join(self.paths)})" if self.paths else "")


class HeldOut(_Strict):
    """Figures on footage never used to choose anything (not the validation split)."""

    split: str
    protocol: ProtocolName
    f1: float = Field(ge=0.0, le=1.0)
    precision: Optional[float] = Field(default=None, ge=0.0, le=1.0)
    recall: Optional[float] = Field(default=None, ge=0.0, le=1.0)


class Training(_Strict):
    machine: str
    time: str
    command: Optional[str] = None


class EntrySpec(_Strict):
    """One name in catalogue.yaml."""

    file: str
    sport: str
    description: str = ""
    data: list[DataSource] = Field(default_factory=list)
    held_out: Optional[HeldOut] = None
    training: Optional[Training] = None
    card: Optional[str] = None

    @field_validator("file")
    @classmethod
    def _bare_safetensors(cls, value: str) -> str:
        if "/" in value or "\\" in value or value.startswith(".") or not value.endswith(".safetensors"):
            raise ValueError(f"{value!r}: give a .safetensors file name in the catalogue's own folder (no path)")
        return value


class CatalogueSpec(_Strict):
    format: int = FORMAT_VERSION
    default: Optional[str] = None
    models: dict[str, EntrySpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "CatalogueSpec":
        if self.format > FORMAT_VERSION:
            raise ValueError(
                f"catalogue format {self.format} is newer than this tracknet reads ({FORMAT_VERSION}): "
                "upgrade tracknet-cli"
            )
        for name in self.models:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"model name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
        if self.default is not None and self.default not in self.models:
            raise ValueError(f"default {self.default!r} is not one of its models ({', '.join(self.models) or 'none'})")
        return self


@dataclass(frozen=True)
class CatalogueEntry:
    """A model name and the file it stands for."""

    name: str
    spec: EntrySpec
    path: Path
    origin: str  # "bundled", or the $TRACKNET_MODELS_DIR folder it came from

    @property
    def label(self) -> str:
        where = "bundled" if self.origin == BUNDLED else f"from {self.origin}"
        return f"{self.name} ({where}, {self.path.name})"


@dataclass(frozen=True)
class Catalogue:
    """Every model name that resolves here, in resolution order, and the default one."""

    entries: dict[str, CatalogueEntry]
    default: Optional[str]
    folders: tuple[Path, ...]

    def get(self, name: str) -> Optional[CatalogueEntry]:
        return self.entries.get(name)

    def suggestions(self, name: str) -> list[str]:
        """Names that start with `name`, then names close to it (difflib), at most three."""
        key = name.lower()
        prefixed = [n for n in self.entries if len(key) >= 2 and n.startswith(key)]
        close = near(key, self.entries, n=3)
        return list(dict.fromkeys(prefixed + close))[:3]


def read_catalogue(folder: Path, origin: str) -> tuple[list[CatalogueEntry], Optional[str]]:
    """The entries of `folder/catalogue.yaml` and its default name; a broken catalogue is a
    ConfigError naming the file."""
    import yaml

    path = folder / CATALOGUE_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{folder}: no {CATALOGUE_FILE} there (a models folder holds one beside its "
            ".safetensors files; see docs/models/pretrained.md)"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable catalogue ({first_line(exc)})") from exc
    try:
        spec = CatalogueSpec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None
    entries = [CatalogueEntry(name, entry, folder / entry.file, origin) for name, entry in spec.models.items()]
    return entries, spec.default


def models_folders(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    environ = os.environ if environ is None else environ
    value = environ.get(MODELS_DIR_ENV, "")
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def load_catalogue(environ: Mapping[str, str] | None = None, *, bundled_dir: Path = PACKAGE_DIR) -> Catalogue:
    """Everything `$TRACKNET_MODELS_DIR` and the package provide; a folder the variable names must exist
    and hold a catalogue.yaml."""
    folders = models_folders(environ)
    entries: dict[str, CatalogueEntry] = {}
    default: Optional[str] = None
    for folder, origin in [(folder, str(folder)) for folder in folders] + [(bundled_dir, BUNDLED)]:
        if origin != BUNDLED and not folder.is_dir():
            raise ConfigError(f"{MODELS_DIR_ENV} names {folder}, which is not a folder (fix or unset the variable)")
        found, own_default = read_catalogue(folder, origin)
        if default is None and own_default is not None and own_default not in entries:
            default = own_default  # a name an earlier folder already took is not this catalogue's model
        for entry in found:
            entries.setdefault(entry.name, entry)
    return Catalogue(entries, default, folders)


@dataclass(frozen=True)
class WeightsInfo:
    """What `tracknet models` shows about a checkpoint, from its safetensors header alone."""

    parameters: int
    input_width: int
    input_height: int
    frames: int
    backbone: str
    threshold: float
    size_bytes: int


_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def weights_info(path: Path) -> WeightsInfo:
    """Read the header of a TrackNet checkpoint (no torch): parameter count, input size, threshold."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 0 < length <= min(size - 8, 100_000_000):
                raise ValueError("bad header length")
            header: dict[str, Any] = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError(f"its header is a JSON {type(header).__name__}, not an object")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except RecursionError:
        raise InputError(
            f"{path} is not a readable .safetensors checkpoint (its header is nested too deeply)"
        ) from None
    except (OSError, ValueError, struct.error) as exc:
        raise InputError(f"{path} is not a readable .safetensors checkpoint ({first_line(exc)})") from exc
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or "tracknet.config" not in meta:
        raise InputError(f"{path} is a safetensors file but not a TrackNet checkpoint (no tracknet metadata)")
    try:
        config = json.loads(meta["tracknet.config"])
        data = config["data"]
        params = 0
        for name, tensor in header.items():
            if not name.endswith(_BUFFERS):
                count = 1
                for dim in tensor["shape"]:
                    count *= int(dim)
                params += count
        return WeightsInfo(
            params,
            int(data["input_width"]),
            int(data["input_height"]),
            int(data.get("sequence_length", 1)),
            str(config["model"]["backbone"]["type"]),
            float(meta["tracknet.threshold"]),
            size,
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise InputError(f"{path}: incomplete or garbled TrackNet metadata ({type(exc).__name__}: {exc})") from exc
