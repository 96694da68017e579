"""Getting Hugging Face backbones and their normalisation without surprises.

Three ways in, all through the concrete transformers classes (never `AutoBackbone`, which asks
the hub first even for a local folder):
- `pretrained: true`: `Model.from_pretrained(name)` from a local folder or the hub cache;
- `pretrained: false`: `Model(config)` with random weights, the config read from a local folder,
  or the known architecture of a hub id, or the class default; never any network;
- rebuilding a checkpoint: `Model(Config.from_dict(saved))`, the config embedded in the file.
A weight that cannot be had raises `WeightsUnavailableError` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracknet_cli.errors import ConfigError, InputError, WeightsUnavailableError, debug_enabled, first_line

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Architectures of the public checkpoints, so that `pretrained: false` with a hub id builds the
# same network the weights would fill (no download needed to know its shape).
_VIT_S = dict(
    hidden_size=384,
    intermediate_size=1536,
    num_hidden_layers=12,
    num_attention_heads=6,
    num_register_tokens=4,
    layerscale_value=1e-5,
)
_VIT_B = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_register_tokens=4,
    layerscale_value=1e-5,
)
_VIT_L = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_register_tokens=4,
    layerscale_value=1e-5,
)
_CNX_T = dict(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768])
_CNX_S = dict(depths=[3, 3, 27, 3], hidden_sizes=[96, 192, 384, 768])
_CNX_B = dict(depths=[3, 3, 27, 3], hidden_sizes=[128, 256, 512, 1024])
_CNX_L = dict(depths=[3, 3, 27, 3], hidden_sizes=[192, 384, 768, 1536])
KNOWN_ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {  # hub id → (model_type, config fields)
    "facebook/dinov3-vits16-pretrain-lvd1689m": ("dinov3_vit", _VIT_S),
    "facebook/dinov3-vitb16-pretrain-lvd1689m": ("dinov3_vit", _VIT_B),
    "facebook/dinov3-vitl16-pretrain-lvd1689m": ("dinov3_vit", _VIT_L),
    "facebook/convnext-tiny-224": ("convnext", _CNX_T),
    "facebook/convnext-small-224": ("convnext", _CNX_S),
    "facebook/convnext-base-224": ("convnext", _CNX_B),
    "facebook/convnext-large-224": ("convnext", _CNX_L),
    "facebook/dinov3-convnext-tiny-pretrain-lvd1689m": ("dinov3_convnext", _CNX_T),
    "facebook/dinov3-convnext-small-pretrain-lvd1689m": ("dinov3_convnext", _CNX_S),
    "facebook/dinov3-convnext-base-pretrain-lvd1689m": ("dinov3_convnext", _CNX_B),
    "facebook/dinov3-convnext-large-pretrain-lvd1689m": ("dinov3_convnext", _CNX_L),
}


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean/std the backbone was trained with, applied to [0, 1] RGB inside the model."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_json(self) -> str:
        return json.dumps({"mean": list(self.mean), "std": list(self.std)})

    @classmethod
    def from_json(cls, text: str) -> "Normalization":
        data = json.loads(text)
        return cls(mean=_three(data["mean"]), std=_three(data["std"]))


@dataclass(frozen=True)
class LoadedBackbone:
    """A transformers model plus what the TrackNet wrapper needs to know about where it came from."""

    model: "PreTrainedModel"
    normalization: Normalization
    source_config: dict[str, Any] = field(default_factory=dict)  # HF config as built, for checkpoints


def _three(values: Any) -> tuple[float, float, float]:
    out = tuple(float(v) for v in values)
    if len(out) != 3:
        raise ValueError(f"expected 3 values, got {len(out)}")
    return out  # type: ignore[return-value]


def offline() -> bool:
    return any(
        os.environ.get(v, "") not in ("", "0", "false", "False") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def local_dir(name: str) -> Path | None:
    path = Path(name).expanduser()
    return path if path.is_dir() else None


@contextlib.contextmanager
def quiet_transformers(verbose: bool | None = None) -> Iterator[None]:
    """Hide transformers' progress bars and load reports unless debugging; restore them afterwards."""
    from transformers.utils import logging as hf_logging

    if verbose is None:
        verbose = debug_enabled()
    if verbose:
        yield
        return
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def read_normalization(name: str) -> Normalization:
    """`image_mean`/`image_std` from the folder's (or hub cache's) preprocessor_config.json; ImageNet otherwise.

    Read as plain JSON: `AutoImageProcessor` for DINOv3 needs torchvision in transformers 5.x.
    """
    path: Path | None = None
    folder = local_dir(name)
    if folder is not None:
        path = folder / "preprocessor_config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "preprocessor_config.json")
            path = Path(cached) if isinstance(cached, str) else None
        except Exception:  # not a valid repo id, no cache: fall back to ImageNet
            path = None
    if path is None or not path.is_file():
        return Normalization()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Normalization(
            mean=_three(data.get("image_mean", IMAGENET_MEAN)), std=_three(data.get("image_std", IMAGENET_STD))
        )
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"{path}: unreadable image_mean/image_std ({exc})") from exc


def _apply_overrides(config: "PretrainedConfig", overrides: Mapping[str, Any]) -> "PretrainedConfig":
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ConfigError(f"model.backbone.config_overrides.{key}: {type(config).__name__} has no field {key!r}")
        setattr(config, key, value)
    if "depths" in overrides and hasattr(config, "num_stages"):
        config.num_stages = len(config.depths)  # ConvNextConfig keeps the count separately
    return config


def check_type(config_cls: type["PretrainedConfig"], name: str) -> None:
    """A checkpoint of another family fails with a config error, not a wall of missing keys."""
    wanted = config_cls.model_type
    folder = local_dir(name)
    found: str | None = None
    if folder is not None and (folder / "config.json").is_file():
        try:
            found = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (ValueError, OSError) as exc:
            raise InputError(f"{folder / 'config.json'}: not readable JSON ({exc})") from exc
    elif name in KNOWN_ARCHITECTURES:
        found = KNOWN_ARCHITECTURES[name][0]
    if found is not None and found != wanted:
        raise ConfigError(
            f"model.backbone.pretrained_model_name={name} holds a {found} model but "
            f"model.backbone.type is {wanted}: change one of them"
        )


def build_config(config_cls: type["PretrainedConfig"], name: str, overrides: Mapping[str, Any]) -> "PretrainedConfig":
    """The architecture for `pretrained: false`: local config.json, else a known hub id, else the class default."""
    check_type(config_cls, name)
    folder = local_dir(name)
    if folder is None and looks_like_path(name):
        raise InputError(
            f"model.backbone.pretrained_model_name: folder {name} does not exist "
            "(with pretrained=false a hub id or a folder only gives the architecture)"
        )
    with quiet_transformers():
        if folder is not None and (folder / "config.json").is_file():
            config = config_cls.from_pretrained(str(folder))
        else:
            known = KNOWN_ARCHITECTURES.get(name)
            config = config_cls(**(known[1] if known else {}))
    return _apply_overrides(config, overrides)


def looks_like_path(name: str) -> bool:
    """Hub ids are `owner/name`; anything else with a path shape is meant as a folder."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def gated(name: str) -> bool:
    return name.startswith("facebook/dinov3-")


def _unavailable(name: str, exc: BaseException) -> WeightsUnavailableError:
    text = str(exc)
    page = f"https://huggingface.co/{name}"
    access = f"request access on {page}, then set HF_TOKEN or run `hf auth login`"
    if any(s in text for s in ("gated", "401", "403", "restricted", "awaiting a review")):
        why, todo = f"{name} is gated and this account has no access to it", access
    elif offline():
        why = f"{name} is not in the local Hugging Face cache and the hub is offline (HF_HUB_OFFLINE)"
        todo = f"download it once online ({access})" if gated(name) else "download it once online"
    else:
        why = f"weights for {name} could not be downloaded ({first_line(exc)[:120]})"
        todo = f"check the network and the name; {access}" if gated(name) else "check the network and the name"
    return WeightsUnavailableError(
        f"{why}: {todo}; or point model.backbone.pretrained_model_name at a local folder; "
        "or set model.backbone.pretrained=false for random weights"
    )


def load_pretrained(
    model_cls: type["PreTrainedModel"],
    config_cls: type["PretrainedConfig"],
    name: str,
    overrides: Mapping[str, Any],
    *,
    verbose: bool | None = None,
) -> LoadedBackbone:
    """`from_pretrained` from a local folder or the hub (cache), with errors turned into one line."""
    folder = local_dir(name)
    if folder is None and looks_like_path(name):
        raise InputError(
            f"model.backbone.pretrained_model_name: folder {name} does not exist "
            "(give an existing folder written by save_pretrained, or a hub id like facebook/convnext-tiny-224)"
        )
    if folder is not None and not (folder / "config.json").is_file():
        raise InputError(
            f"{folder} has no config.json: point model.backbone.pretrained_model_name at a folder "
            "written by save_pretrained (config.json + model.safetensors)"
        )
    check_type(config_cls, name)
    try:
        with quiet_transformers(verbose):
            config = _apply_overrides(config_cls.from_pretrained(name), overrides)
            model = model_cls.from_pretrained(name, config=config)
    except (ConfigError, InputError):
        raise
    except OSError as exc:
        if folder is not None:
            raise InputError(f"{folder}: cannot load weights ({first_line(exc)})") from exc
        raise _unavailable(name, exc) from exc
    except ValueError as exc:  # includes huggingface_hub's HFValidationError for malformed ids
        if folder is None and "repo" in str(exc).lower():
            raise InputError(
                f"model.backbone.pretrained_model_name={name!r} is neither a local folder nor a hub id "
                "like facebook/convnext-tiny-224"
            ) from exc
        raise
    except RuntimeError as exc:  # size mismatch after config_overrides changed the architecture
        raise ConfigError(
            f"the weights of {name} do not fit the overridden architecture ({first_line(exc)}): "
            "drop model.backbone.config_overrides or set model.backbone.pretrained=false"
        ) from exc
    if folder is None:
        _fetch_preprocessor_config(name)
    return LoadedBackbone(model=model, normalization=read_normalization(name), source_config=config.to_dict())


def _fetch_preprocessor_config(name: str) -> None:
    """`from_pretrained` fetches weights only; get the normalisation file too when the hub can be reached."""
    try:
        from huggingface_hub import hf_hub_download

        with quiet_transformers():
            hf_hub_download(name, "preprocessor_config.json")
    except Exception:  # absent, offline, gated: ImageNet values are used
        pass


def build_random(
    model_cls: type["PreTrainedModel"],
    config_cls: type["PretrainedConfig"],
    name: str,
    overrides: Mapping[str, Any],
    *,
    source_config: Mapping[str, Any] | None = None,
) -> LoadedBackbone:
    """Random weights from a config (a saved one when rebuilding a checkpoint): never the network."""
    with quiet_transformers():
        if source_config is not None:
            config = config_cls.from_dict(dict(source_config))
        else:
            config = build_config(config_cls, name, overrides)
        model = model_cls(config)
    normalization = read_normalization(name) if source_config is None else Normalization()
    return LoadedBackbone(model=model, normalization=normalization, source_config=config.to_dict())
