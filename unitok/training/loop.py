"""The training loop every recipe runs: config → Accelerator → model → optimiser/scheduler → data → prepare →
resume → loop → checkpoint → export. One linear function, readable top to bottom.

    accelerate launch recipes/train.py --config recipes/configs/flextok/tiny_tokenizer.yaml train.steps=100

Training goes through `model(**batch)` (DDP/FSDP hooks only run there); the loss and its terms come back in the
model's output dataclass. The effective config is saved beside every checkpoint and the export.
"""

import json
import math
import time
from pathlib import Path

import torch

from ..remote_code import write_atomic
from ..evaluation.common import peak_memory_mb
from .checkpoint import load_trainer_state, remove_incomplete, resolve_resume, save_checkpoint
from .config import RunConfig, dump_config
from .data import build_dataset, build_loader


def build_model(config: RunConfig):
    """A registered variant with random init (seeded), or a pretrained folder; `model.overrides` change config
    fields (for example `train_stage: vae`). With a `lora` section, LoRA adapters on the pretrained model (a
    `peft.PeftModel` whose only trainable parameters are the adapters)."""
    from .. import AutoTokenizer, create_model, lora

    torch.manual_seed(config.train.seed)
    if config.model.name is not None:
        return create_model(config.model.name, **config.model.overrides)
    model = AutoTokenizer.from_pretrained(config.model.pretrained, **config.model.overrides)
    for name in config.model.reinitialize:
        reinitialize(model, name)
    if config.lora.enabled:
        model = lora.apply(model, config.lora.preset, r=config.lora.r, alpha=config.lora.alpha,
                           dropout=config.lora.dropout, target_modules=config.lora.target_modules,
                           base_model_name_or_path=config.model.pretrained)
    return model


@torch.no_grad()
def reinitialize(model, name: str) -> None:
    """Re-draw the parameters of submodule `name` with the model's own init (what a fresh model would have)."""
    try:
        submodule = model.get_submodule(name)
    except AttributeError as error:
        top = ", ".join(n for n, _ in model.named_children())
        raise ValueError(f"model.reinitialize: {type(model).__name__} has no submodule {name!r} (top level: {top})."
                         ) from error
    for module in submodule.modules():
        model._init_weights(module)


def train(config: RunConfig) -> Path:
    """Run (or resume) a training run; returns the export folder (loadable with `AutoModel.from_pretrained`, or
    with `unitok.lora.load_adapter(base, export)` for LoRA runs)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    run, out = config.train, Path(config.train.output_dir)
    config_yaml = dump_config(config)

    # --- accelerator -------------------------------------------------------------------------------------------
    accelerator = Accelerator(
        mixed_precision=run.mixed_precision, gradient_accumulation_steps=config.optim.grad_accum,
        log_with=run.tracker, project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    set_seed(run.seed, device_specific=True)  # different dropout/noise per process, reproducible per rank
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        remove_incomplete(out / "checkpoints")
        write_atomic(out / "config.yaml", config_yaml)

    # --- model, optimiser, schedule ----------------------------------------------------------------------------
    model = build_model(config)
    model.train()
    processor = model.build_preprocessor()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("The model has no trainable parameters in this configuration.")
    # Recipe-level terms: perceptual (ST-LPIPS) and adversarial (PatchGAN) on the model's reconstruction, and REPA
    # alignment of intermediate decoder tokens to a frozen teacher (its projector trains with the model).
    losses = config.losses
    perceptual = gan = disc_optimizer = None
    if losses.perceptual_weight > 0:
        from .losses import PerceptualLoss

        perceptual = PerceptualLoss().to(accelerator.device)
    if losses.gan_weight > 0:
        from .losses import GANLoss, PatchGANDiscriminator

        discriminator = PatchGANDiscriminator(base_channels=losses.disc_channels, num_layers=losses.disc_layers)
        gan = GANLoss(discriminator, loss_type=losses.gan_loss, disc_start=losses.gan_start,
                      disc_weight=losses.gan_weight, adaptive_weight=losses.gan_adaptive_weight)
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=losses.gan_lr or config.optim.lr,
                                           betas=(0.5, 0.9))
    repa = teacher = None
    if losses.repa_weight > 0:
        from .losses import EffNetLite0Teacher, REPAAlignment

        teacher = EffNetLite0Teacher().to(accelerator.device)
        hidden_dim = getattr(model.config, "decoder_dim", None)
        if hidden_dim is None:
            raise ValueError("losses.repa_weight needs a model whose forward accepts hidden_layer (FlexTok).")
        repa = REPAAlignment(hidden_dim, teacher.dim, projector_dim=min(2048, 4 * hidden_dim))
    if (perceptual or gan) and model.adaptive_weight_layer() is None:
        raise ValueError("losses.perceptual_weight / gan_weight need a model stage that returns a reconstruction "
                         "(e.g. FlexTok with model.overrides.train_stage=vae).")

    optimised = trainable + ([] if repa is None else list(repa.parameters()))
    optimizer = torch.optim.AdamW(optimised, lr=config.optim.lr, betas=config.optim.betas,
                                  weight_decay=config.optim.weight_decay)
    # Accelerate steps a prepared scheduler once per process per optimiser step, hence the scaling.
    if config.optim.schedule == "inverse_sqrt":  # the released TaDiCodec schedule (not in diffusers)
        from transformers.optimization import get_inverse_sqrt_schedule

        scheduler = get_inverse_sqrt_schedule(optimizer, num_warmup_steps=config.optim.warmup_steps *
                                              accelerator.num_processes)
    else:
        scheduler = get_scheduler(config.optim.schedule, optimizer,
                                  num_warmup_steps=config.optim.warmup_steps * accelerator.num_processes,
                                  num_training_steps=run.steps * accelerator.num_processes)
    ema = None
    if run.ema_decay > 0:
        ema = EMAModel(trainable, decay=run.ema_decay)
        accelerator.register_for_checkpointing(ema)

    # --- data --------------------------------------------------------------------------------------------------
    dataset, heldout = build_dataset(config.data.kind, config.data.source, processor, config.data.holdout,
                                     config.data.augment, run.seed)
    loader = build_loader(dataset, run.batch_size, run.seed, config.data.num_workers,
                          max_frames=config.data.max_frames_per_batch, max_items=config.data.max_items_per_batch,
                          hop_length=getattr(model.config, "hop_length", None))
    if len(loader) // accelerator.num_processes < 1:
        raise ValueError(f"{len(dataset)} training items cannot fill one batch of {run.batch_size} per process on "
                         f"{accelerator.num_processes} processes.")

    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if gan is not None:
        gan.discriminator, disc_optimizer = accelerator.prepare(gan.discriminator, disc_optimizer)
    if repa is not None:
        repa = accelerator.prepare(repa)  # trained with the model's optimiser, checkpointed as a model
    if ema is not None:
        ema.to(accelerator.device)

    # --- resume ------------------------------------------------------------------------------------------------
    step, epoch, batch_in_epoch = 0, 0, 0
    checkpoint = resolve_resume(out / "checkpoints", run.resume)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state = load_trainer_state(checkpoint)
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        accelerator.print(f"resumed from {checkpoint} at step {step}")
    if run.tracker and accelerator.is_main_process:
        accelerator.init_trackers("unitok", config=_flat(config.to_dict()))
    history = out / "loss_history.jsonl"

    # --- loop --------------------------------------------------------------------------------------------------
    progress = None
    if run.progress and accelerator.is_local_main_process:
        from tqdm.auto import tqdm

        progress = tqdm(total=run.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    samples_per_step = run.batch_size * accelerator.num_processes * config.optim.grad_accum
    window_start, window_items, data_wait = time.perf_counter(), 0, 0.0
    main_input = accelerator.unwrap_model(model).main_input_name
    stop_at = min(run.steps, run.stop_at) if run.stop_at else run.steps
    while step < stop_at:
        if batch_in_epoch >= len(loader):  # the checkpoint was taken at the end of an epoch
            epoch, batch_in_epoch = epoch + 1, 0
        loader.set_epoch(epoch)  # the prepared loader passes it on to the sampler and the dataset
        batches = accelerator.skip_first_batches(loader, batch_in_epoch) if batch_in_epoch else loader
        fetch_start = time.perf_counter()
        for batch in batches:
            data_wait += time.perf_counter() - fetch_start
            window_items += batch[main_input].shape[0] * accelerator.num_processes  # dynamic batches vary in size
            extra_terms = {}
            with accelerator.accumulate(model):
                if repa is not None:
                    output = model(**batch, hidden_layer=losses.repa_layer)
                    target = batch[accelerator.unwrap_model(model).main_input_name]
                    extra_terms["repa_loss"] = losses.repa_weight * repa(output.decoder_hidden_states,
                                                                         teacher(target))
                    loss = output.loss + extra_terms["repa_loss"]
                else:
                    output = model(**batch)
                    loss = output.loss
                if perceptual is not None or gan is not None:
                    target = batch[accelerator.unwrap_model(model).main_input_name]
                    if perceptual is not None:
                        extra_terms["perceptual_loss"] = losses.perceptual_weight * perceptual(
                            output.reconstruction, target)
                        loss = loss + extra_terms["perceptual_loss"]
                    if gan is not None:
                        extra_terms["gan_generator_loss"], _ = gan.generator_loss(
                            output.reconstruction, loss, accelerator.unwrap_model(model).adaptive_weight_layer(),
                            step + 1)
                        loss = loss + extra_terms["gan_generator_loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optim.grad_clip > 0:
                    accelerator.clip_grad_norm_(trainable, config.optim.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if gan is not None and gan.is_active(step + 1):  # step + 1: the step being taken (1-based)
                with accelerator.accumulate(gan.discriminator):
                    extra_terms["gan_discriminator_loss"], _ = gan.discriminator_loss(target, output.reconstruction,
                                                                                    step + 1)
                    accelerator.backward(extra_terms["gan_discriminator_loss"])
                    disc_optimizer.step()
                    disc_optimizer.zero_grad(set_to_none=True)
            batch_in_epoch += 1
            if accelerator.sync_gradients:
                step += 1
                if ema is not None:
                    ema.step(trainable)
                if step % run.log_every == 0 or step == stop_at:
                    terms = {"loss": loss.detach(), **output.loss_terms(),
                             **{k: v.detach() for k, v in extra_terms.items()}}
                    logs = {k: accelerator.gather(v.float().reshape(1)).mean().item() for k, v in terms.items()}
                    elapsed = time.perf_counter() - window_start
                    logs.update(lr=scheduler.get_last_lr()[0], samples_per_s=window_items / elapsed,
                                data_wait_share=data_wait / elapsed, **peak_memory_mb(str(accelerator.device)))
                    accelerator.log(logs, step=step)
                    if accelerator.is_main_process:
                        with open(history, "a") as handle:
                            handle.write(json.dumps({"step": step, **logs}) + "\n")
                    if progress is not None:
                        progress.set_postfix(loss=f"{logs['loss']:.4f}", sps=f"{logs['samples_per_s']:.1f}")
                    window_start, window_items, data_wait = time.perf_counter(), 0, 0.0
                if progress is not None:
                    progress.update(1)
                if step % run.checkpoint_every == 0 or step == stop_at:
                    trainer_state = {"step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                                     "samples_seen": step * samples_per_step}
                    save_checkpoint(accelerator, out / "checkpoints", step, trainer_state, config_yaml, run.keep_last)
                if run.validate_every and step % run.validate_every == 0:
                    validate(accelerator, model, ema, trainable, heldout, config, step)
                if step >= stop_at:
                    break
            fetch_start = time.perf_counter()
        else:
            epoch, batch_in_epoch = epoch + 1, 0
    if progress is not None:
        progress.close()

    # --- export ------------------------------------------------------------------------------------------------
    export = out / "export"
    if step >= run.steps:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            with _ema_weights(ema, trainable):
                if config.lora.enabled:  # the adapter alone (loads onto model.pretrained with unitok.lora)
                    from ..lora import save_adapter

                    save_adapter(unwrapped, export)
                else:
                    unwrapped.save_pretrained(export)
            write_atomic(export / "recipe.yaml", config_yaml)
        accelerator.wait_for_everyone()
    accelerator.end_training()
    return export


class _ema_weights:
    """Swap EMA weights in for the duration of a block (no-op without EMA)."""

    def __init__(self, ema, parameters):
        self.ema, self.parameters = ema, parameters

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.parameters)
            self.ema.copy_to(self.parameters)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.parameters)


def validate(accelerator, model, ema, trainable, heldout, config: RunConfig, step: int) -> None:
    """Evaluation-harness metrics on the held-out items (main process), logged to the tracker."""
    from ..evaluation.common import EvalOptions
    from ..evaluation.harness import evaluate

    if accelerator.is_main_process and heldout:
        unwrapped = accelerator.unwrap_model(model)
        with _ema_weights(ema, trainable), torch.random.fork_rng():
            results = evaluate(unwrapped, heldout, Path(config.train.output_dir) / "validation" / f"step_{step:08d}",
                               EvalOptions(num_inference_steps=config.train.validation_steps, compute_fd=False,
                                           device=str(accelerator.device), batch_size=config.train.batch_size))
        unwrapped.train()
        logs = {}
        for tag, entry in results.get("budgets", {}).items():
            for name in ("psnr", "ssim", "st_lpips"):
                if name in entry and math.isfinite(entry[name]["mean"]):
                    logs[f"val/{name}@{tag}"] = entry[name]["mean"]
        for name, value in results.get("metrics", {}).items():
            if isinstance(value, dict) and math.isfinite(value.get("mean", float("nan"))):
                logs[f"val/{name}"] = value["mean"]
        accelerator.log(logs, step=step)
    accelerator.wait_for_everyone()


def _flat(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


__all__ = ["train", "build_model", "reinitialize", "validate"]
