"""Resolve a configuration: defaults < profile pieces < profile overrides < environment < --set.

Each layer is a nested dict with a label; layers are deep-merged in order and every leaf remembers
the label of the layer that set it last (the provenance `config show` prints).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, get_args

import yaml
from pydantic import BaseModel, ValidationError

from tracknet_cli.choices import near, not_one_of
from tracknet_cli.config.schema import SECTIONS, TrackNetConfig
from tracknet_cli.errors import ConfigError

ENV_PREFIX = "TRACKNET_"


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false are booleans, so `--set data.cache=off` stays "off"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list(_first)
    )


MAX_YAML_VALUES = 100_000  # scalars and collections after anchors/aliases are expanded


class _TooLarge(yaml.YAMLError):
    def __init__(self) -> None:
        super().__init__()
        self.problem = f"anchors and aliases expand it to more than {MAX_YAML_VALUES:,} values; write the values out"


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values the node stands for once aliases are copied out (linear in the node graph)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a cycle (an alias inside its own anchor) counts once
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(v, memo) for v in node.value)
    memo[id(node)] = size = min(size, MAX_YAML_VALUES + 1)
    return size


def load_yaml(text: str) -> Any:
    """Safe YAML (a SafeLoader subclass); a document whose aliases expand past MAX_YAML_VALUES (an
    alias bomb) is refused before it is built."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise _TooLarge()
        return loader.construct_document(node)
    finally:
        loader.dispose()


def excerpt(value: Any, limit: int = 120) -> str:
    """A bounded repr of user input for an error line: nested and long values are cut, never
    expanded in full."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict = 3, 6, 6, 6
    short.maxstring, short.maxother = limit, limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


DEFAULT_PROFILE = "quickstart"


@dataclass(frozen=True)
class Selection:
    """What the user chose on the command line."""

    profile: str | None = None
    data: str | None = None
    model: str | None = None
    training: str | None = None
    sets: tuple[str, ...] = ()

    def piece(self, section: str) -> str | None:
        return getattr(self, section)


@dataclass
class ResolvedConfig:
    config: TrackNetConfig
    profile_name: str
    provenance: dict[str, str] = field(default_factory=dict)  # dotted key -> source, for non-default values
    sources: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- profile files
def profiles_dir() -> Path:
    """The shipped profiles: package data in an installed wheel, the repo's `profiles/` in a source tree."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "profiles"
    if packaged.is_dir():
        return packaged
    return package.parents[1] / "profiles"  # src/tracknet_cli -> repository root


def available(kind: str | None = None) -> list[str]:
    """Names of top-level profiles (kind None) or of pieces of a section."""
    base = profiles_dir() if kind is None else profiles_dir() / kind
    return sorted(p.stem for p in base.glob("*.yaml"))


def _is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name


def _find(name: str, kind: str | None) -> Path:
    what = "profile" if kind is None else f"{kind} profile"
    if _is_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"{what} file not found: {path}")
        return path
    path = (profiles_dir() if kind is None else profiles_dir() / kind) / f"{name}.yaml"
    if path.is_file():
        return path
    names = available(kind)
    close = near(name, names)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(f"unknown {what} '{name}': {hint}available: {', '.join(names) or 'none'}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of keys, not {type(loaded).__name__}")
    return loaded


# ---------------------------------------------------------------- layers
def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        pass
    try:
        return "profiles/" + str(path.resolve().relative_to(profiles_dir().resolve()))
    except ValueError:
        return str(path)


def _parse_value(text: str, key: str, origin: str) -> Any:
    try:
        return load_yaml(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{key}: cannot parse {excerpt(text)} from {origin} as a YAML value ({getattr(exc, 'problem', exc)})"
        ) from exc


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def parse_set(item: str) -> tuple[str, Any]:
    """`--set dotted.key=VALUE`, VALUE parsed as YAML."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set expects dotted.key=VALUE, got {excerpt(item)} (e.g. --set training.lr=0.0005)")
    return key, _parse_value(text, key, "--set")


def env_layer(environ: Mapping[str, str]) -> list[tuple[str, Any, str]]:
    """`TRACKNET_<SECTION>__<KEY>[__<KEY>...]` variables, values parsed as YAML."""
    out = []
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower().split("__")
        if len(rest) < 2 or rest[0] not in SECTIONS:
            continue  # e.g. TRACKNET_DEBUG, TRACKNET_REALDATA: not configuration
        key = ".".join(rest)
        out.append((key, _parse_value(text, key, f"env {name}"), f"env {name}"))
    return out


def _merge(into: dict[str, Any], layer: Mapping[str, Any], label: str, prov: dict[str, str], prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(into.get(key), dict) and value:
            _merge(into[key], value, label, prov, dotted + ".")
        elif isinstance(value, Mapping) and value and key not in into:
            into[key] = {}
            _merge(into[key], value, label, prov, dotted + ".")
        else:
            into[key] = value.copy() if isinstance(value, dict) else value
            for old in [k for k in prov if k == dotted or k.startswith(dotted + ".")]:
                del prov[old]
            prov[dotted] = label


# ---------------------------------------------------------------- resolution
def resolve(selection: Selection = Selection(), environ: Mapping[str, str] | None = None) -> ResolvedConfig:
    """Compose the profile named by `selection`, apply env and `--set`, validate. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    prov: dict[str, str] = {}
    sources: list[str] = []

    profile_ref = selection.profile or DEFAULT_PROFILE
    profile_path = _find(profile_ref, None)
    profile = _read_yaml(profile_path)
    profile_name = profile_path.stem
    unknown = set(profile) - set(SECTIONS) - {"overrides", "description"}
    if unknown:
        raise ConfigError(
            f"{_display(profile_path)}: unknown top-level key '{sorted(unknown)[0]}' "
            f"(a profile names its pieces {', '.join(SECTIONS)} and may hold 'overrides' and 'description')"
        )

    for section in SECTIONS:
        piece = selection.piece(section) or profile.get(section)
        if piece is None:
            continue
        if isinstance(piece, dict):  # inline section in the profile file
            _merge(merged, {section: piece}, _display(profile_path), prov)
            continue
        piece_path = _find(str(piece), section)
        sources.append(_display(piece_path))
        _merge(merged, {section: _read_yaml(piece_path)}, _display(piece_path), prov)

    overrides = profile.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{_display(profile_path)}: 'overrides' must be a mapping")
    _merge(merged, overrides, _display(profile_path), prov)
    sources.insert(0, _display(profile_path))

    for key, value, label in env_layer(environ):
        _merge(merged, _nest(key, value), label, prov)
    for item in selection.sets:
        key, value = parse_set(item)
        _merge(merged, _nest(key, value), "--set", prov)

    config = validate(merged, prov)
    defaults = flatten(TrackNetConfig().model_dump(mode="json"))
    resolved = flatten(config.model_dump(mode="json"))
    provenance = {k: src for k, src in prov.items() if k in resolved and resolved[k] != defaults.get(k)}
    # Keys set to a list/dict leaf (e.g. config_overrides) are reported at the key that was set.
    for k, src in prov.items():
        if k not in resolved and any(r.startswith(k + ".") for r in resolved):
            provenance[k] = src
    return ResolvedConfig(config=config, profile_name=profile_name, provenance=provenance, sources=sources)


def validate(data: Mapping[str, Any], prov: Mapping[str, str] | None = None) -> TrackNetConfig:
    try:
        return TrackNetConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, prov or {})) from exc


def _explain(exc: ValidationError, prov: Mapping[str, str]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    origin = prov.get(key)
    src = f" (from {origin})" if origin else ""
    if err["type"] == "extra_forbidden":
        parent = ".".join(loc[:-1])
        siblings = [k for k in all_keys() if k.rsplit(".", 1)[0] == parent] if parent else list(SECTIONS)
        close = near(key, siblings) or near(key, all_keys())
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{key}'{src}{hint}"
    value = err.get("input")
    if err["type"] == "literal_error":  # a choice: the names come from the field's Literal (tracknet_cli.choices)
        return f"{not_one_of(key, value, _literal_names(loc))}{src}"
    shown = f" (got {excerpt(value)})" if not isinstance(value, dict) else ""
    return f"{key}: {err['msg'].rstrip('.')}{shown}{src}"


def _literal_names(loc: list[str]) -> tuple[str, ...]:
    """The names the Literal field at `loc` (e.g. training.loss) accepts."""
    model: Any = TrackNetConfig
    for part in loc[:-1]:
        model = model.model_fields[part].annotation
    return tuple(str(a) for a in get_args(model.model_fields[loc[-1]].annotation))


def all_keys(model: type[BaseModel] = TrackNetConfig, prefix: str = "") -> list[str]:
    """Every dotted key the configuration accepts (sections and leaves)."""
    keys = []
    for name, info in model.model_fields.items():
        dotted = prefix + name
        keys.append(dotted)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(all_keys(ann, dotted + "."))
    return keys


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def from_mapping(data: Mapping[str, Any]) -> TrackNetConfig:
    """Rebuild a config from a plain dict (a checkpoint's or run directory's embedded copy)."""
    return validate(data)


def dump_yaml(config: TrackNetConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def selection_from(
    profile: str | None, data: str | None, model: str | None, training: str | None, sets: Iterable[str] | None
) -> Selection:
    return Selection(profile=profile, data=data, model=model, training=training, sets=tuple(sets or ()))


def load_run_config(path: Path, sets: Iterable[str] = ()) -> TrackNetConfig:
    """A run directory's `config.yaml` (a full resolved config), with `--set` overrides on top."""
    data = _read_yaml(path)
    prov: dict[str, str] = {}
    merged: dict[str, Any] = {}
    _merge(merged, data, str(path), prov)
    for item in sets:
        key, value = parse_set(item)
        _merge(merged, _nest(key, value), "--set", prov)
    return validate(merged, prov)
