"""Training configuration: YAML files validated against dataclasses, with `key=value` command-line overrides.

    config = load_config("recipes/configs/flextok/tiny_tokenizer.yaml", ["train.steps=10", "optim.lr=3e-4"])

Unknown keys, wrong types and unknown model names fail here, before anything is built, with a message naming the
key. The effective config is written as `config.yaml` beside every checkpoint and export.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class ModelConfig:
    name: str | None = None  # a registered variant (random init) ...
    pretrained: str | None = None  # ... or a folder / Hub id to start from (e.g. the previous stage's export)
    overrides: dict = field(default_factory=dict)  # config fields to change (e.g. train_stage: vae)
    # submodules of model.pretrained to re-initialise with the model's own init before training (train those parts
    # from scratch around pretrained ones, e.g. TaDiCodec's codec around the released vocoder)
    reinitialize: list = field(default_factory=list)


@dataclass
class DataConfig:
    kind: str = "images"  # images | speech
    source: str = "bundled"  # image: bundled | skimage | fashion-mnist[:split] | folder; speech: fixtures | manifest
    holdout: int = 2  # items kept out of training (validation, the demo's held-out reconstructions)
    augment: bool = True  # images: random resized crop + horizontal flip (deterministic per seed/epoch/item)
    num_workers: int = 0
    max_frames_per_batch: int | None = None  # speech: dynamic length-grouped batches of at most this many padded
    max_items_per_batch: int = 40  # frames (model hop) and items per process, instead of train.batch_size


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | constant | linear | inverse_sqrt (warm-up, then lr·sqrt(warmup/step))
    grad_clip: float = 1.0  # 0 disables clipping
    grad_accum: int = 1


@dataclass
class LossConfig:
    """Terms the recipe adds on the model's `reconstruction` (stages whose forward returns one, e.g. a VAE)."""

    perceptual_weight: float = 0.0  # ST-LPIPS (the perceptual network available offline); 0 disables
    gan_weight: float = 0.0  # adversarial term with a PatchGAN discriminator; 0 disables
    gan_start: int = 0  # step at which the discriminator and the adversarial term start
    gan_loss: str = "hinge"  # hinge | vanilla
    gan_adaptive_weight: bool = True  # VQGAN's gradient-norm balancing against the reconstruction loss
    gan_lr: float | None = None  # discriminator learning rate (default optim.lr)
    disc_layers: int = 3
    disc_channels: int = 64
    repa_weight: float = 0.0  # REPA alignment of intermediate decoder tokens to a frozen teacher; 0 disables
    repa_layer: int = 0  # decoder block whose output is aligned (the released FlexTok config uses an early block)
    repa_teacher: str = "effnet-lite0"  # the teacher available offline; DINOv2-L (the paper's) needs its weights


@dataclass
class LoraSection:
    """LoRA fine-tuning of `model.pretrained` (unitok.lora): only adapters train and the export is the adapter."""

    preset: str | None = None  # a preset of the model (unitok.lora.presets; "decoder" keeps codes); null: no LoRA
    target_modules: str | None = None  # a full-match regex over module names, instead of a preset
    r: int = 8
    alpha: float | None = None  # LoRA scaling numerator (default r)
    dropout: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.preset is not None or self.target_modules is not None


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8  # per process
    seed: int = 0
    mixed_precision: str = "no"  # no | bf16 | fp16 (quantizer math stays fp32 regardless)
    ema_decay: float = 0.0  # 0 disables EMA weights
    log_every: int = 10
    checkpoint_every: int = 100
    keep_last: int = 3
    validate_every: int = 0  # 0 disables periodic validation with the evaluation metrics
    validation_steps: int = 4  # decoder sampling steps during validation
    output_dir: str = "runs/unnamed"
    resume: str | None = None  # latest | a checkpoint folder | None
    stop_at: int | None = None  # stop (after checkpointing) at this step, keeping the schedule of `steps`
    tracker: str | None = "tensorboard"  # tensorboard | None
    progress: bool = True


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    lora: LoraSection = field(default_factory=LoraSection)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A configuration problem, raised before training starts."""


def _check_type(path: str, value, annotation):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            try:
                return _check_type(path, value, option)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{path}: {value!r} does not fit {annotation}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{path}: expected null, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(annotation)):
            raise ConfigError(f"{path}: expected a list of {len(typing.get_args(annotation))} values, got {value!r}")
        return tuple(_check_type(f"{path}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, typing.get_args(annotation))))
    if annotation is float and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    base = origin or annotation
    if base is dict and isinstance(value, dict):
        return value
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: expected {getattr(base, '__name__', base)}, got {type(value).__name__} {value!r}")
    return value


def _build(cls, values: dict, path: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(f'{path}.{k}'.lstrip('.') for k in unknown)}; "
                          f"valid keys under {path or 'the top level'}: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in values.items():
        key = f"{path}.{name}".lstrip(".")
        annotation = hints[name]
        kwargs[name] = _build(annotation, value, key) if dataclasses.is_dataclass(annotation) else \
            _check_type(key, value, annotation)
    return cls(**kwargs)


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """`section.key=value` (YAML-parsed value) into a nested dict; `model.overrides.x=1` reaches model config."""
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} must look like section.key=value")
        key, raw = override.split("=", 1)
        node = values
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML recipe, apply overrides, validate everything, and check the model exists."""
    values = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file not found: {path}")
        values = yaml.safe_load(Path(path).read_text()) or {}
    values = apply_overrides(values, overrides or [])
    config = _build(RunConfig, values, "")
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    from .. import list_models

    model = config.model
    if (model.name is None) == (model.pretrained is None):
        raise ConfigError("set exactly one of model.name (a registered variant) and model.pretrained (a folder)")
    if model.name is not None and model.name not in list_models():
        raise ConfigError(f"model.name: unknown model {model.name!r}; available: {', '.join(list_models())}")
    if model.pretrained is not None and not Path(model.pretrained).exists() and "/" not in model.pretrained:
        raise ConfigError(f"model.pretrained: {model.pretrained!r} is neither a folder nor a Hub repo id")
    choices = {"data.kind": (config.data.kind, ("images", "speech")),
               "optim.schedule": (config.optim.schedule, ("cosine", "constant", "linear", "inverse_sqrt")),
               "train.mixed_precision": (config.train.mixed_precision, ("no", "bf16", "fp16")),
               "train.tracker": (config.train.tracker, ("tensorboard", None)),
               "losses.gan_loss": (config.losses.gan_loss, ("hinge", "vanilla")),
               "losses.repa_teacher": (config.losses.repa_teacher, ("effnet-lite0",))}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
    positive = {"train.steps": config.train.steps, "train.batch_size": config.train.batch_size,
                "optim.grad_accum": config.optim.grad_accum, "train.keep_last": config.train.keep_last,
                "train.checkpoint_every": config.train.checkpoint_every}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if model.reinitialize and model.pretrained is None:
        raise ConfigError("model.reinitialize re-initialises parts of model.pretrained; a model.name starts random")
    if config.data.max_frames_per_batch is not None and config.data.kind != "speech":
        raise ConfigError("data.max_frames_per_batch (dynamic batching) is for data.kind: speech")
    if config.optim.schedule == "inverse_sqrt" and config.optim.warmup_steps < 1:
        raise ConfigError("optim.schedule inverse_sqrt needs optim.warmup_steps >= 1")
    if config.lora.enabled:
        if model.pretrained is None:
            raise ConfigError("lora: LoRA fine-tunes a pretrained checkpoint; set model.pretrained (not model.name)")
        if config.lora.r < 1:
            raise ConfigError(f"lora.r must be >= 1, got {config.lora.r}")
        if not 0 <= config.lora.dropout < 1:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {config.lora.dropout}")
    if not 0 <= config.train.ema_decay < 1:
        raise ConfigError(f"train.ema_decay must be in [0, 1), got {config.train.ema_decay}")


def dump_config(config: RunConfig) -> str:
    values = config.to_dict()
    values["optim"]["betas"] = list(values["optim"]["betas"])
    return yaml.safe_dump(values, sort_keys=False)


__all__ = ["RunConfig", "ModelConfig", "DataConfig", "OptimConfig", "LossConfig", "LoraSection", "TrainConfig",
           "ConfigError", "load_config", "apply_overrides", "dump_config"]
