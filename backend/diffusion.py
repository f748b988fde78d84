"""Gaussian diffusion quantities: beta schedules, timestep respacing and the q(x_t|x_0) / q(x_{t-1}|x_t,x_0) math.

Conventions follow the official MDM code (itself improved-diffusion, Nichol & Dhariwal 2021): index t = 0..T-1,
x_t has alpha_bar[t] (so the clean motion is "index -1"), the network predicts x0, and every array is computed and
kept in float64, then indexed and cast to the sample's dtype at each use (`extract`), which is what makes the
float32 numbers match the official ones bit for bit.
"""
import math
import re
from dataclasses import dataclass

import torch

from .errors import UserError

MAX_BETA = 0.999  # improved-diffusion clips the cosine betas so the last step is not a pure-noise singularity


def cosine_betas(num_steps: int, max_beta: float = MAX_BETA) -> torch.Tensor:
    """Nichol & Dhariwal eq. 17: alpha_bar(s) = cos^2(((s + 0.008) / 1.008) * pi / 2), beta_i = 1 - ab(i+1)/ab(i)."""

    def alpha_bar(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    # Python floats (not a vectorised cos) so the betas are the official ones to the last bit.
    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float64)


def linear_betas(num_steps: int) -> torch.Tensor:
    """Ho et al. 2020 linear schedule 1e-4..0.02 at T=1000, scaled by 1000/T so any T spans the same noise range."""
    scale = 1000 / num_steps
    return torch.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=torch.float64)


BETA_SCHEDULES = {"cosine": cosine_betas, "linear": linear_betas}


def named_betas(name: str, num_steps: int) -> torch.Tensor:
    if name not in BETA_SCHEDULES:
        raise UserError(f"unknown noise schedule {name!r}: use one of {sorted(BETA_SCHEDULES)}")
    if num_steps < 1:
        raise UserError(f"diffusion_steps must be at least 1, got {num_steps}")
    return BETA_SCHEDULES[name](num_steps)


def space_timesteps(num_steps: int, section_counts) -> list[int]:
    """The original step indices kept by respacing (improved-diffusion `space_timesteps`), sorted.

    `section_counts` is a list of per-section counts (the T steps are cut into equal sections and each section is
    sampled evenly, ends included), the same as a comma string ("10" or "10,15,20"), or "ddimN": the integer stride
    that gives exactly N steps starting at 0 (DDIM's spacing).
    """
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for stride in range(1, num_steps):
                if len(range(0, num_steps, stride)) == desired:
                    return list(range(0, num_steps, stride))
            raise UserError(f"cannot take exactly {desired} of {num_steps} steps with an integer stride")
        section_counts = [int(c) for c in section_counts.split(",")]
    size_per, extra = divmod(num_steps, len(section_counts))
    start, kept = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if not 1 <= count <= size:
            raise UserError(f"cannot take {count} steps from a section of {size} steps")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        # round() is Python's (half to even), as in the official code: it decides which steps are kept.
        kept += [start + round(k * stride) for k in range(count)]
        start += size
    return sorted(set(kept))


@dataclass(frozen=True)
class DiffusionSchedule:
    """Every per-step array of a (possibly respaced) diffusion, float64 [T] (timestep_map: int64 [T]).

    `timestep_map[t]` is the ORIGINAL step index the network was trained with and must receive for respaced index t.
    """
    betas: torch.Tensor
    timestep_map: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    alpha_bar_next: torch.Tensor
    sqrt_alpha_bar: torch.Tensor
    sqrt_one_minus_alpha_bar: torch.Tensor
    log_one_minus_alpha_bar: torch.Tensor
    sqrt_recip_alpha_bar: torch.Tensor
    sqrt_recipm1_alpha_bar: torch.Tensor
    posterior_variance: torch.Tensor  # beta_tilde, DDPM eq. 7: the FIXED_SMALL sampling variance
    posterior_log_variance_clipped: torch.Tensor  # log beta_tilde with t=0 (where it is 0) replaced by t=1
    posterior_mean_coef1: torch.Tensor  # multiplies x0 in mu_tilde (DDPM eq. 7)
    posterior_mean_coef2: torch.Tensor  # multiplies x_t

    @classmethod
    def from_betas(cls, betas: torch.Tensor, timestep_map=None) -> "DiffusionSchedule":
        betas = betas.to(torch.float64)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        one = torch.ones(1, dtype=torch.float64)
        alpha_bar_prev = torch.cat([one, alpha_bar[:-1]])
        alpha_bar_next = torch.cat([alpha_bar[1:], torch.zeros(1, dtype=torch.float64)])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        if timestep_map is None:
            timestep_map = torch.arange(len(betas))
        return cls(
            betas=betas,
            timestep_map=torch.as_tensor(timestep_map, dtype=torch.int64),
            alpha_bar=alpha_bar,
            alpha_bar_prev=alpha_bar_prev,
            alpha_bar_next=alpha_bar_next,
            sqrt_alpha_bar=torch.sqrt(alpha_bar),
            sqrt_one_minus_alpha_bar=torch.sqrt(1.0 - alpha_bar),
            log_one_minus_alpha_bar=torch.log(1.0 - alpha_bar),
            sqrt_recip_alpha_bar=torch.sqrt(1.0 / alpha_bar),
            sqrt_recipm1_alpha_bar=torch.sqrt(1.0 / alpha_bar - 1),
            posterior_variance=posterior_variance,
            # beta_tilde[0] = 0, so its log would be -inf: the official code uses beta_tilde[1] there. With a
            # single step there is no t=1 and no noise is ever added, so any finite value serves.
            posterior_log_variance_clipped=torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
            if len(betas) > 1 else torch.zeros(1, dtype=torch.float64),
            posterior_mean_coef1=betas * torch.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            posterior_mean_coef2=(1.0 - alpha_bar_prev) * torch.sqrt(alphas) / (1.0 - alpha_bar),
        )

    @classmethod
    def respaced(cls, base_betas: torch.Tensor, kept_steps) -> "DiffusionSchedule":
        """Keep only `kept_steps` of a schedule: beta_i = 1 - alpha_bar[k_i] / alpha_bar[k_{i-1}] (same marginals)."""
        base_alpha_bar = torch.cumprod(1.0 - base_betas.to(torch.float64), 0)
        kept = sorted(kept_steps)
        new_betas, last = [], 1.0
        for k in kept:  # float64 scalar division in the official order
            ab = base_alpha_bar[k].item()
            new_betas.append(1 - ab / last)
            last = ab
        return cls.from_betas(torch.tensor(new_betas, dtype=torch.float64), timestep_map=kept)

    @property
    def num_steps(self) -> int:
        return len(self.betas)


def make_schedule(diffusion_steps: int, noise_schedule: str = "cosine", respacing="") -> DiffusionSchedule:
    """The official `create_gaussian_diffusion`: T steps of the named schedule, respaced by `respacing`.

    `respacing` is "" (all T steps), section counts ("50", "10,10", [50]) or "ddimN".
    """
    betas = named_betas(noise_schedule, diffusion_steps)
    return DiffusionSchedule.respaced(betas, space_timesteps(diffusion_steps, respacing or [diffusion_steps]))


def parse_schedule_name(name: str) -> dict:
    """Fixture-style schedule names -> `make_schedule` kwargs: "native10", "1000resp10" ([10]), "1000ddim10"."""
    if m := re.fullmatch(r"native(\d+)", name):
        return {"diffusion_steps": int(m[1]), "respacing": ""}
    if m := re.fullmatch(r"(\d+)resp([\d,]+)", name):
        return {"diffusion_steps": int(m[1]), "respacing": m[2]}
    if m := re.fullmatch(r"(\d+)(ddim\d+)", name):
        return {"diffusion_steps": int(m[1]), "respacing": m[2]}
    raise UserError(f"schedule name {name!r} is not nativeN, TrespN or TddimN")


def extract(array: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """array[t] cast to like's dtype/device, shaped [B, 1, ..., 1] to broadcast over a sample batch.

    Indexed in float64 on the array's device, cast afterwards (official `_extract_into_tensor`); this also works
    on devices without float64 (MPS).
    """
    values = array[t.to(array.device)].to(device=like.device, dtype=like.dtype)
    return values.view(-1, *([1] * (like.dim() - 1)))


def q_sample(schedule: DiffusionSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """DDPM eq. 4: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps."""
    return extract(schedule.sqrt_alpha_bar, t, x0) * x0 + extract(schedule.sqrt_one_minus_alpha_bar, t, x0) * noise


def q_step_up(schedule: DiffusionSchedule, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
    """DDPM eq. 2 forward step q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (RePaint's re-noising)."""
    beta = extract(schedule.betas, t, x_prev)
    return torch.sqrt(1 - beta) * x_prev + torch.sqrt(beta) * noise


def q_posterior_mean_variance(schedule: DiffusionSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """DDPM eq. 6-7: q(x_{t-1} | x_t, x0) = N(coef1_t x0 + coef2_t x_t, beta_tilde_t): (mean, variance, log var)."""
    mean = extract(schedule.posterior_mean_coef1, t, x_t) * x0 + extract(schedule.posterior_mean_coef2, t, x_t) * x_t
    variance = extract(schedule.posterior_variance, t, x_t)
    log_variance = extract(schedule.posterior_log_variance_clipped, t, x_t)
    return mean, variance, log_variance
