"""Samplers (ancestral DDPM, DDIM) as free functions over a `denoise(x_t, t) -> x0_hat` callable.

`t` is always the index into the (possibly respaced) `DiffusionSchedule`; only `model_denoiser` knows the network
and maps t to the original step index it was trained with. Editing, guidance and constraints are denoiser wrappers
(guidance.py, inpainting.py), so one sampler serves them all. Randomness comes in as an explicit `NoiseSampler`
(built from a `torch.Generator`, or replaying stored noises), never from torch's global RNG.
"""
from typing import Callable, NamedTuple, Optional

import torch

from .diffusion import DiffusionSchedule, extract, q_posterior_mean_variance
from .errors import SamplingCancelled
from .guidance import classifier_free_guidance

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t [B,...], t [B] respaced) -> x0_hat
NoiseSampler = Callable[[torch.Tensor], torch.Tensor]  # like -> N(0, I) with like's shape, dtype and device
Progress = Callable[[int, int], None]  # (steps done, total steps)
Cancelled = Callable[[], bool]


def gaussian_noise(generator: torch.Generator) -> NoiseSampler:
    """Standard normal draws from `generator` (drawn on the generator's device, so a seed gives the same noise
    whichever device samples)."""
    def draw(like):
        return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)
    return draw


def replayed_noise(noises) -> NoiseSampler:
    """Returns the given noise tensors in order, one per draw (to replay a recorded run, e.g. a fixture)."""
    remaining = iter(noises)

    def draw(like):
        noise = next(remaining, None)
        if noise is None:
            raise RuntimeError("replayed_noise ran out of recorded noises")
        return torch.as_tensor(noise).to(device=like.device, dtype=like.dtype).reshape(like.shape)
    return draw


def model_denoiser(model, cond: dict, schedule: DiffusionSchedule, guidance_scale=None) -> Denoiser:
    """The network as a denoiser: respaced t -> original step index, optional classifier-free guidance.

    `model(x, timesteps, cond) -> x0_hat` is MDM's forward; `guidance_scale` is a float or a per-sample [B] tensor.
    """
    forward = model if guidance_scale is None else classifier_free_guidance(model, guidance_scale)
    timestep_map = schedule.timestep_map

    def denoise(x_t, t):
        return forward(x_t, timestep_map[t.cpu()].to(x_t.device), cond)
    return denoise


class PosteriorStep(NamedTuple):
    sample: torch.Tensor  # x_{t-1}
    x0_hat: torch.Tensor
    mean: torch.Tensor
    variance: torch.Tensor  # [B, 1, ..., 1]
    log_variance: torch.Tensor


def p_sample(denoise: Denoiser, schedule: DiffusionSchedule, x_t, t, noise) -> PosteriorStep:
    """One ancestral step x_t -> x_{t-1} (DDPM Algorithm 2) with x0 prediction and fixed-small variance."""
    # 1. x0_hat = f_theta(x_t, t): the network predicts the clean motion; never clamped (official clip_denoised=False).
    x0_hat = denoise(x_t, t)
    # 2. mu_tilde(x_t, x0_hat) and beta_tilde_t of the posterior q(x_{t-1} | x_t, x0) (DDPM eq. 6-7).
    mean, variance, log_variance = q_posterior_mean_variance(schedule, x0_hat, x_t, t)
    # 3. x_{t-1} = mu_tilde + sigma_t z with sigma_t^2 = beta_tilde_t; no noise on the last step (t = 0), where the
    #    sample is x0_hat itself (coef1 = 1, coef2 = 0).
    nonzero = (t != 0).to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
    sample = mean + nonzero * torch.exp(0.5 * log_variance) * noise
    return PosteriorStep(sample, x0_hat, mean, variance, log_variance)


def ddim_step(denoise: Denoiser, schedule: DiffusionSchedule, x_t, t, eta: float, noise=None):
    """One DDIM step x_t -> x_{t-1} (Song et al. 2021, eq. 12); returns (x_{t-1}, x0_hat). eta=0: deterministic."""
    # 1. x0_hat = f_theta(x_t, t).
    x0_hat = denoise(x_t, t)
    # 2. eps_hat = (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t), eq. 9 solved for eps (official form).
    eps_hat = (extract(schedule.sqrt_recip_alpha_bar, t, x_t) * x_t - x0_hat) / extract(
        schedule.sqrt_recipm1_alpha_bar, t, x_t)
    alpha_bar = extract(schedule.alpha_bar, t, x_t)
    alpha_bar_prev = extract(schedule.alpha_bar_prev, t, x_t)
    # 3. sigma_t(eta) = eta sqrt((1 - a_{t-1}) / (1 - a_t)) sqrt(1 - a_t / a_{t-1}), eq. 16 (eta=1: DDPM variance).
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
    # 4. x_{t-1} = sqrt(a_{t-1}) x0_hat + sqrt(1 - a_{t-1} - sigma^2) eps_hat + sigma z, eq. 12.
    sample = x0_hat * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_hat
    if eta > 0:
        nonzero = (t != 0).to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
        sample = sample + nonzero * sigma * noise
    return sample, x0_hat


def sampling_steps(total: int, progress: Optional[Progress], cancelled: Optional[Cancelled]):
    """Yields 0..total-1; checks `cancelled()` before each step and reports `progress(done, total)` after it."""
    for step in range(total):
        if cancelled is not None and cancelled():
            raise SamplingCancelled(f"sampling cancelled after {step} of {total} steps")
        yield step
        if progress is not None:
            progress(step + 1, total)


def timestep_batch(index: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), index, dtype=torch.int64, device=x.device)


@torch.no_grad()
def sample_ddpm(denoise: Denoiser, schedule: DiffusionSchedule, x_T: torch.Tensor, noise: NoiseSampler, *,
                progress: Optional[Progress] = None, cancelled: Optional[Cancelled] = None) -> torch.Tensor:
    """Ancestral sampling t = T-1 .. 0 from x_T (official `p_sample_loop`); one noise draw per step."""
    x = x_T
    for step in sampling_steps(schedule.num_steps, progress, cancelled):
        t = timestep_batch(schedule.num_steps - 1 - step, x)
        x = p_sample(denoise, schedule, x, t, noise(x)).sample
    return x


@torch.no_grad()
def sample_ddim(denoise: Denoiser, schedule: DiffusionSchedule, x_T: torch.Tensor, *, eta: float = 0.0,
                noise: Optional[NoiseSampler] = None, progress: Optional[Progress] = None,
                cancelled: Optional[Cancelled] = None) -> torch.Tensor:
    """DDIM sampling t = T-1 .. 0 (official `ddim_sample_loop`); `noise` is needed only when eta > 0."""
    if eta > 0 and noise is None:
        raise ValueError("DDIM with eta > 0 draws noise: pass noise=gaussian_noise(generator)")
    x = x_T
    for step in sampling_steps(schedule.num_steps, progress, cancelled):
        t = timestep_batch(schedule.num_steps - 1 - step, x)
        x, _ = ddim_step(denoise, schedule, x, t, eta, noise(x) if eta > 0 else None)
    return x
