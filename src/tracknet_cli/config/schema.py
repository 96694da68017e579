"""The typed configuration: every key a profile, `--set` or the environment may hold.

Every nested model forbids unknown keys so a typo is an error, never a silently ignored value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tracknet_cli.choices import (
    BackboneName,
    BestMetric,
    DecoderName,
    DeviceName,
    LossName,
    PrecisionSetting,
    ProtocolName,
    SchedulerName,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---------------------------------------------------------------- data
class SplitConfig(Section):
    """Which clips (or, by time, which stretches of every clip) train, validate and test."""

    by: Literal["clip", "time"] = Field(
        "clip",
        description="clip: whole clips per split (lists win over ratios); time: every clip's labelled "
        "frames in time order, the first train, then val_ratio for validation, then test_ratio for test "
        "(for a few labelled clips, where a clip-level split leaves nothing)",
    )
    train: list[str] | None = Field(None, description="game names or game/clip paths relative to data.root")
    val: list[str] | None = None
    test: list[str] | None = None
    val_ratio: float = Field(0.2, ge=0.0, lt=1.0, description="share of clips for validation when val is not listed")
    test_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="share of clips for test when test is not listed")
    seed: int = Field(0, description="seed of the clip-level ratio split (independent of training.seed)")

    @field_validator("train", "val", "test", mode="before")
    @classmethod
    def _names_are_text(cls, value: Any) -> Any:
        """YAML reads `val: [00001]` as the number 1, losing the zeros that the clip's name has."""
        for item in value if isinstance(value, list) else []:
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                raise ValueError(
                    f"{item!r} was read as a number, but clip names are text (YAML drops the leading "
                    f"zeros of names like 00001): quote each name, e.g. ['00001']"
                )
        return value

    @model_validator(mode="after")
    def _ratios_leave_training_clips(self) -> "SplitConfig":
        if self.val_ratio + self.test_ratio >= 1.0:
            raise ValueError("val_ratio + test_ratio must be below 1 so that some clips remain for training")
        listed = [name for name in ("train", "val", "test") if getattr(self, name) is not None]
        if self.by == "time" and listed:
            raise ValueError(
                f"by: time cuts every clip by val_ratio and test_ratio, so lists of clips "
                f"({', '.join(listed)}) do not apply: remove them or use by: clip"
            )
        return self


class SubsetConfig(Section):
    """Cut the data down for quick runs."""

    max_clips: int | None = Field(None, ge=1)
    max_frames_per_clip: int | None = Field(None, ge=1)


class AugmentConfig(Section):
    """Training-time augmentation, identical for every frame of a window."""

    hflip: float = Field(0.5, ge=0.0, le=1.0, description="probability of a horizontal flip")
    scale: float = Field(0.0, ge=0.0, le=0.5, description="largest zoom-in as a fraction (0.2: crop down to 80%)")
    translate: float = Field(0.0, ge=0.0, le=0.5, description="largest shift as a fraction of the size")
    color_jitter: float = Field(0.0, ge=0.0, le=1.0, description="strength of brightness/contrast/saturation jitter")
    hue: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="largest hue rotation as a fraction of half a turn (1.0: up to "
        "±180°), about the grey axis so white and grey stay as they are: red boards and floors of one "
        "hall look like the blue or green of another",
    )
    zoom_out: float = Field(
        0.0,
        ge=0.0,
        le=0.75,
        description="largest zoom-out as a fraction (0.5: shrink down to 50%, black borders), "
        "so a model also sees balls smaller than the footage shows them",
    )
    crop_width: int | None = Field(
        None,
        ge=8,
        le=8192,
        description="train on crops this wide (input pixels, at most the input "
        "width) instead of whole frames: several times less compute per step for the same ball "
        "signal (docs/training/crops.md)",
    )
    crop_height: int | None = Field(
        None, ge=8, le=8192, description="crop height in input pixels (set with crop_width)"
    )
    crop_ball: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="share of crops placed around a labelled ball; the rest are "
        "anywhere in the frame (background the model must learn to ignore)",
    )
    still: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of windows that show one frame T times: a ball that does "
        "not move (held before a serve, lying on the floor), which a model that finds the ball by its "
        "motion misses",
    )

    @model_validator(mode="after")
    def _crop_both_or_neither(self) -> "AugmentConfig":
        if (self.crop_width is None) != (self.crop_height is None):
            raise ValueError("set both crop_width and crop_height, or neither")
        return self


class DataConfig(Section):
    root: Path = Field(Path("data/tracknet"), description="dataset folder (any supported layout)")
    input_width: int = Field(512, ge=16, le=8192, description="model input width in pixels")
    input_height: int = Field(288, ge=16, le=8192, description="model input height in pixels")
    heatmap_width: int = Field(128, ge=4, le=8192)
    heatmap_height: int = Field(72, ge=4, le=8192)
    sigma: float = Field(1.5, gt=0.0, le=64.0, description="Gaussian target radius in heatmap cells")
    sequence_length: int = Field(3, ge=1, le=32, description="frames per window (T)")
    window_stride: int = Field(1, ge=1, le=1024, description="frames between the starts of training windows")
    inference_stride: int = Field(
        1,
        ge=1,
        le=32,
        description="frames between the starts of the windows that "
        "validation, eval, predict and label run: 1 averages every frame over the T windows "
        "that cover it; T (sequence_length) runs each frame once, T times faster",
    )
    no_ball_frames: Literal["negative", "mask"] = Field(
        "negative",
        description="negative: keep frames without a ball with an empty target; mask: drop them from the loss",
    )
    split: SplitConfig = SplitConfig()
    subset: SubsetConfig = SubsetConfig()
    augment: AugmentConfig = AugmentConfig()
    cache: Literal["off", "auto", "on"] = Field("auto", description="on-disk frame cache at model resolution")
    cache_format: Literal["npy", "jpeg"] = Field(
        "npy",
        description="how training clips are cached: npy (raw uint8, memory-mapped, fastest) or jpeg (quality 95, "
        "8x smaller, decoded on read); validation and eval always read exact (npy) frames",
    )
    cache_dir: Path | None = Field(None, description="where the cache lives (default: ROOT/.tracknet_cache)")
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes (0: load in the main process)")

    def crop_size(self) -> tuple[int, int] | None:
        """(width, height) of the training crops, each at most the input's; None: whole frames (no crop
        set, or one as large as the input, e.g. after lowering input_width for a quick run)."""
        a = self.augment
        if a.crop_width is None or a.crop_height is None:
            return None
        size = (min(a.crop_width, self.input_width), min(a.crop_height, self.input_height))
        return None if size == (self.input_width, self.input_height) else size

    @model_validator(mode="after")
    def _inference_stride_within_window(self) -> "DataConfig":
        if self.inference_stride > self.sequence_length:
            raise ValueError(
                f"inference_stride {self.inference_stride} must be at most sequence_length "
                f"{self.sequence_length}, or frames between the windows would never be seen"
            )
        return self

    @model_validator(mode="after")
    def _crop_fits_the_cells(self) -> "DataConfig":
        size = self.crop_size()
        if size is None:
            return self
        for what, crop, inp, heat in (
            ("width", size[0], self.input_width, self.heatmap_width),
            ("height", size[1], self.input_height, self.heatmap_height),
        ):
            if inp % heat or crop % (inp // heat):
                raise ValueError(
                    f"augment crop_{what} {crop} must be a multiple of input_{what} / heatmap_{what} "
                    f"({inp}/{heat}), so the crop's heatmap cells line up with the frame's"
                )
        return self


# ---------------------------------------------------------------- model
class BackboneConfig(Section):
    type: BackboneName = Field(
        "dinov3_vit",
        description="unet: plain full-resolution conv encoder (model.unet), random init, for CPUs and small balls",
    )
    pretrained_model_name: str = Field(
        "facebook/dinov3-vitb16-pretrain-lvd1689m", description="hub id or local directory"
    )
    pretrained: bool = Field(True, description="false: build the architecture with random weights, no download")
    freeze: bool = False
    config_overrides: dict[str, Any] = Field(default_factory=dict, description="transformers config fields to change")
    out_indices: list[int] | None = Field(None, description="which layers/stages to take features from")


class UpsamplingDecoderConfig(Section):
    channels: list[int] = Field(default_factory=lambda: [256, 128, 64], min_length=1)


class FPNConfig(Section):
    lateral_dim: int = Field(128, ge=8, le=2048)
    use_p2: bool = False
    fuse: Literal["sum", "concat"] = "sum"


class UNetConfig(Section):
    widths: list[int] = Field(
        default_factory=lambda: [16, 32, 64, 128],
        min_length=1,
        description="channels of the unet encoder's stages (strides 1, 2, 4, ...)",
    )
    convs: int = Field(2, ge=1, le=8, description="3x3 conv + BatchNorm + ReLU layers per stage (encoder and decoder)")
    input_stride: Literal[1, 2] = Field(
        1,
        description="stride of the first convolution: 2 computes every stage, and the "
        "heatmap, at half resolution, for a quarter of the FLOPs (the real-time family)",
    )


class ModelConfig(Section):
    backbone: BackboneConfig = BackboneConfig()
    decoder: DecoderName = "upsampling"
    upsampling: UpsamplingDecoderConfig = UpsamplingDecoderConfig()
    fpn: FPNConfig = FPNConfig()
    unet: UNetConfig = UNetConfig()
    temporal_fusion: Literal["early", "late"] = Field("early", description="how the T frames of a window meet")
    no_ball_logit: bool = Field(
        False, description="also learn one 'no ball' logit per frame (for a softmax over H*W+1)"
    )


# ---------------------------------------------------------------- training
class TrainingConfig(Section):
    seed: int = 0
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    backbone_lr_multiplier: float = Field(1.0, ge=0.0, le=10.0)
    weight_decay: float = Field(0.05, ge=0.0, le=1.0)
    batch_size: int = Field(8, ge=1, le=4096)
    epochs: int = Field(10, ge=1, le=100000)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    time_limit: float | None = Field(
        None,
        gt=0.0,
        description=(
            "wall-clock seconds for the whole run, the final validation included: "
            "training stops early enough for it to fit, then validates and saves"
        ),
    )
    device: DeviceName = "auto"
    loss: LossName = Field(
        "softmax",
        description="softmax: per-frame softmax over cells + 'no ball' (learns in minutes; docs/training/losses.md)",
    )
    protocol: ProtocolName = Field("v2", description="how validation scores a frame (docs/training/metrics.md)")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="decode score at or above which a frame has a detection")
    best_metric: BestMetric = Field(
        "f1", description="validation metric that picks weights/best.safetensors (losses and errors: lower is better)"
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="validations without improvement before stopping (unset: never)"
    )
    early_stopping_min_delta: float = Field(
        0.0, ge=0.0, description="smallest change of best_metric that counts as improvement"
    )
    scheduler: SchedulerName = Field(
        "cosine", description="lr after warmup: cosine decay, reduce-on-plateau, or constant"
    )
    warmup_steps: int = Field(0, ge=0, description="optimizer steps of linear lr warmup")
    grad_clip: float | None = Field(1.0, gt=0.0, description="clip the gradient norm to this (unset: no clipping)")
    grad_accumulation: int = Field(1, ge=1, le=1024, description="batches per optimizer step")
    precision: PrecisionSetting = Field(
        "auto",
        description="autocast: auto = bf16 (else fp16 with loss scaling) on CUDA; on CPU bf16 only with "
        "native bf16 and for the model families a measured table lists as faster (docs/training/losses.md)",
    )
    val_every: int | None = Field(None, ge=1, description="validate every N optimizer steps (unset: once per epoch)")
    checkpoint_every: int = Field(200, ge=1, description="save state/last.pt every N optimizer steps")
    overlay_frames: int = Field(4, ge=0, le=32, description="validation frames drawn into overlays/epoch_NNN.png")
    calibrate_threshold: bool = Field(
        True, description="at each validation choose the decode threshold that maximises F1; saved in the checkpoint"
    )
    channels_last: bool = Field(
        False, description="NHWC memory format for the model's convolutions (measure: helps conv nets under bf16)"
    )
    compile: bool = Field(
        False, description="torch.compile the training forward (first steps are slow while it compiles)"
    )
    sync_every: int | None = Field(
        None,
        ge=1,
        le=100000,
        description=(
            "read the loss back to the host every N optimizer steps (finite check, progress); "
            "unset: 1 on CPU, 20 on GPU"
        ),
    )
    tensorboard: bool = Field(
        False, description="write TensorBoard events to RUN_DIR/tensorboard (needs the tensorboard package)"
    )
    wandb: Literal["off", "online", "offline"] = Field(
        "off", description="log to Weights & Biases (needs the wandb package); WANDB_MODE in the environment wins"
    )
    wandb_project: str = Field("tracknet", min_length=1, description="Weights & Biases project name")


class TrackNetConfig(BaseSettings):
    """The whole resolved configuration. Built by `config.load.resolve`, which orders the sources."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True)

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # Profiles, environment and --set are layered (with provenance) in config.load; the
        # merged result arrives as init arguments, so that is the only source here.
        return (init_settings,)


SECTIONS: tuple[str, ...] = ("data", "model", "training")
