"""Rectified-flow / flow-matching training pairs and sampling on diffusers' FlowMatchEulerDiscreteScheduler.

Convention (minRF, FlexTok, SD3): t = 1 is pure noise, t = 0 is data, `x_t = t·noise + (1 − t)·x0`, and the network
predicts the velocity `v = noise − x0`. Sampling integrates from t = 1 down to 0 with Euler steps; a fresh
scheduler is built for every call because schedulers hold mutable step state.
"""

from collections.abc import Callable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def sample_flow_time(batch_size: int, *, distribution: str = "logit_normal", mean: float = 0.0, std: float = 1.0,
                     device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training times in (0, 1): `sigmoid(N(mean, std))` (logit-normal, SD3/minRF) or `"uniform"`."""
    if distribution == "logit_normal":
        normal = torch.randn(batch_size, device=device, generator=generator)
        return torch.sigmoid(mean + std * normal)
    if distribution == "uniform":
        return torch.rand(batch_size, device=device, generator=generator)
    raise ValueError(f"Unknown flow time distribution {distribution!r}; expected 'logit_normal' or 'uniform'.")


def flow_training_pair(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(x_t, target_velocity)` with `x_t = t·noise + (1 − t)·x0` and target `noise − x0`; t is `(batch,)`."""
    t = t.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return t * noise + (1 - t) * x0, noise - x0


def make_scheduler(scheduler_config: dict | None = None) -> FlowMatchEulerDiscreteScheduler:
    """A new scheduler (shift 1 by default, i.e. the plain uniform grid of minRF)."""
    return FlowMatchEulerDiscreteScheduler.from_config({"num_train_timesteps": 1000, "shift": 1.0,
                                                        **(scheduler_config or {})})


def uniform_sigmas(num_inference_steps: int) -> np.ndarray:
    """`[1, (N−1)/N, …, 1/N]`: the grid on which minRF/FlexTok evaluate the velocity (the scheduler appends 0)."""
    return np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)


def adaptive_projected_guidance(v_cond: torch.Tensor, v_uncond: torch.Tensor, guidance_scale: float,
                                running: torch.Tensor | None, *, momentum: float = -0.5, eta: float = 0.0,
                                norm_threshold: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
    """APG (Sadat et al. 2024, arXiv 2410.02416) on the velocity, as FlexTok applies it.

    The guidance direction `d = v_c − v_u` is smoothed with a momentum buffer (`running ← d + momentum·running`),
    its per-item L2 norm over all non-batch dims clipped to `norm_threshold`, and split (in float64) into parts
    parallel and orthogonal to `v_c`; the parallel part is down-weighted by `eta`:
    `v = v_c + (s − 1)·(d⊥ + eta·d∥)`. Returns the guided velocity and the new momentum buffer.
    """
    dims = tuple(range(1, v_cond.ndim))
    diff = v_cond - v_uncond
    running = diff if running is None else diff + momentum * running
    diff = running
    if norm_threshold > 0:
        norm = diff.norm(p=2, dim=dims, keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(norm), norm_threshold / norm)
    unit = torch.nn.functional.normalize(v_cond.double().flatten(1), dim=1).view_as(v_cond)
    parallel = (diff.double() * unit).sum(dim=dims, keepdim=True) * unit
    orthogonal = diff.double() - parallel
    update = (orthogonal + eta * parallel).to(v_cond.dtype)
    return v_cond + (guidance_scale - 1) * update, running


@torch.no_grad()
def sample_flow(velocity_fn: Callable, noise: torch.Tensor, *, num_inference_steps: int, guidance_scale: float = 1.0,
                guidance: str = "cfg", scheduler_config: dict | None = None, apg_momentum: float = -0.5,
                apg_eta: float = 0.0, apg_norm_threshold: float = 2.5) -> torch.Tensor:
    """Integrate a flow from `noise` (t = 1) to data (t = 0) with Euler steps of diffusers' scheduler.

    Args:
        velocity_fn: `velocity_fn(x, t, guided)` with `t` of shape `(batch,)` in (0, 1]. When `guided` is True it
            returns `(v_cond, v_uncond)`, otherwise `v_cond`.
        noise: the starting sample.
        num_inference_steps: Euler steps on the uniform grid t = 1, (N−1)/N, …, 1/N.
        guidance_scale: 1 disables guidance. guidance: `"cfg"` (v_u + s·(v_c − v_u)) or `"apg"`.
    """
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}.")
    if guidance not in ("cfg", "apg"):
        raise ValueError(f"guidance must be 'cfg' or 'apg', got {guidance!r}.")
    scheduler = make_scheduler(scheduler_config)
    scheduler.set_timesteps(sigmas=uniform_sigmas(num_inference_steps), device=noise.device)
    guided = guidance_scale != 1.0
    x, running = noise, None
    for timestep in scheduler.timesteps:
        t = (timestep / scheduler.config.num_train_timesteps).expand(x.shape[0]).to(noise.device, torch.float32)
        if not guided:
            velocity = velocity_fn(x, t, False)
        else:
            v_cond, v_uncond = velocity_fn(x, t, True)
            if guidance == "cfg":
                velocity = v_uncond + guidance_scale * (v_cond - v_uncond)
            else:
                velocity, running = adaptive_projected_guidance(
                    v_cond.float(), v_uncond.float(), guidance_scale, running, momentum=apg_momentum, eta=apg_eta,
                    norm_threshold=apg_norm_threshold)
        # The Euler update runs in float32 whatever the autocast context (as the reference sampler does).
        x = scheduler.step(velocity.float(), timestep, x.float()).prev_sample
    return x


__all__ = ["sample_flow_time", "flow_training_pair", "make_scheduler", "uniform_sigmas",
           "adaptive_projected_guidance", "sample_flow"]
