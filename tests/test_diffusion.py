"""Beta schedules, respacing and the Gaussian diffusion quantities (backend/diffusion.py)."""
import numpy as np
import pytest
import torch

from backend.diffusion import (DiffusionSchedule, extract, linear_betas, make_schedule, named_betas,
                               parse_schedule_name, q_posterior_mean_variance, q_sample, q_step_up, space_timesteps)
from backend.errors import UserError
from backend.fixture_check import Fixture, diffusion_step_checks, schedule_checks
from tests.conftest import FIXTURE_DIR


@pytest.fixture(scope="module")
def fixture():
    return Fixture(FIXTURE_DIR)


def assert_all_pass(checks):
    checks = list(checks)
    assert checks, "the group produced no checks"
    failed = [c.line() for c in checks if not c.passed]
    assert not failed, "\n".join(failed)


def test_schedules_match_official_fixture(fixture):
    """Every beta schedule and every derived array of the three respaced schedules, to 1e-12."""
    checks = list(schedule_checks(fixture))
    assert len(checks) == 3 + 3 * 14
    assert_all_pass(checks)


def test_q_sample_and_one_guided_step_match_official_fixture(fixture):
    assert_all_pass(diffusion_step_checks(fixture))


def test_section_respacing_keeps_evenly_spread_steps_with_ends():
    assert space_timesteps(1000, [10]) == list(range(0, 1000, 111))
    assert space_timesteps(1000, "10") == space_timesteps(1000, [10])
    # Two sections of 50 steps; the second has stride 12.25 and Python rounds 24.5 half-to-even, to 24.
    assert space_timesteps(100, "10,5")[10:] == [50, 62, 74, 87, 99]
    assert space_timesteps(50, [50]) == list(range(50))


def test_ddim_respacing_uses_an_integer_stride():
    assert space_timesteps(1000, "ddim10") == list(range(0, 1000, 100))
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    with pytest.raises(UserError, match="integer stride"):
        space_timesteps(10, "ddim7")


@pytest.mark.parametrize("counts", [[20], "5,5", "ddim25"])
def test_respacing_keeps_the_marginals_of_the_kept_steps(counts):
    """beta_i = 1 - abar[k_i]/abar[k_{i-1}] makes q(x_{k_i} | x0) of the respaced chain the original's."""
    base = make_schedule(100)
    spaced = make_schedule(100, respacing=counts)
    kept = spaced.timestep_map
    assert torch.equal(kept, torch.tensor(space_timesteps(100, counts)))
    np.testing.assert_allclose(spaced.alpha_bar.numpy(), base.alpha_bar[kept].numpy(), rtol=1e-12, atol=1e-16)


def test_no_respacing_is_the_plain_schedule():
    """All steps kept: the same chain (the betas are re-derived from alpha_bar ratios, as the official code does,
    so they agree to rounding, not bit for bit)."""
    plain = DiffusionSchedule.from_betas(named_betas("cosine", 50))
    spaced = make_schedule(50, "cosine", "")
    assert torch.equal(spaced.timestep_map, torch.arange(50))
    for name in ("betas", "alpha_bar", "posterior_mean_coef1", "posterior_log_variance_clipped"):
        np.testing.assert_allclose(getattr(spaced, name).numpy(), getattr(plain, name).numpy(), rtol=1e-12,
                                   err_msg=name)


def test_linear_schedule_is_scaled_to_the_step_count():
    betas = linear_betas(50)
    assert betas.dtype == torch.float64
    assert betas[0].item() == pytest.approx(1000 / 50 * 1e-4) and betas[-1].item() == pytest.approx(1000 / 50 * 0.02)


@pytest.mark.parametrize("schedule", [make_schedule(1000), make_schedule(1000, respacing="50"),
                                      make_schedule(100, "linear")])
def test_posterior_is_consistent_with_the_marginals(schedule):
    """Averaging q(x_{t-1} | x_t, x0) over x_t ~ q(x_t | x0) must give q(x_{t-1} | x0) (DDPM eq. 4, 6, 7):
    coef1 + coef2 sqrt(abar_t) = sqrt(abar_{t-1}) and coef2^2 (1 - abar_t) + beta_tilde_t = 1 - abar_{t-1}."""
    s = schedule
    np.testing.assert_allclose((s.posterior_mean_coef1 + s.posterior_mean_coef2 * s.sqrt_alpha_bar).numpy(),
                               torch.sqrt(s.alpha_bar_prev).numpy(), rtol=1e-12)
    np.testing.assert_allclose((s.posterior_mean_coef2 ** 2 * (1 - s.alpha_bar) + s.posterior_variance).numpy(),
                               (1 - s.alpha_bar_prev).numpy(), rtol=1e-12, atol=1e-15)
    assert s.posterior_mean_coef1[0] == 1 and s.posterior_mean_coef2[0] == 0  # t = 0 returns x0 itself


def test_extract_indexes_in_float64_then_casts_and_broadcasts():
    s = make_schedule(10)
    like = torch.zeros(3, 5, 1, 7)
    t = torch.tensor([0, 4, 9])
    values = extract(s.sqrt_alpha_bar, t, like)
    assert values.shape == (3, 1, 1, 1) and values.dtype == torch.float32
    assert torch.equal(values.flatten(), s.sqrt_alpha_bar[t].float())


def test_q_sample_q_step_up_and_posterior_formulas():
    s = make_schedule(10, respacing="")
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 1, 3, generator=gen, dtype=torch.float64), torch.randn(2, 4, 1, 3, generator=gen,
                                                                                         dtype=torch.float64)
    t = torch.tensor([3, 7])
    abar = s.alpha_bar[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(q_sample(s, x0, t, eps), abar.sqrt() * x0 + (1 - abar).sqrt() * eps)
    beta = s.betas[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(q_step_up(s, x0, t, eps), (1 - beta).sqrt() * x0 + beta.sqrt() * eps)
    mean, var, logvar = q_posterior_mean_variance(s, x0, eps, t)
    torch.testing.assert_close(logvar.exp(), var)
    assert var.shape == (2, 1, 1, 1)


def test_schedule_names_and_bad_settings():
    assert parse_schedule_name("native10") == {"diffusion_steps": 10, "respacing": ""}
    assert parse_schedule_name("1000resp10") == {"diffusion_steps": 1000, "respacing": "10"}
    assert parse_schedule_name("1000ddim10") == {"diffusion_steps": 1000, "respacing": "ddim10"}
    for bad in ("resp10", "1000x10"):
        with pytest.raises(UserError, match="schedule name"):
            parse_schedule_name(bad)
    with pytest.raises(UserError, match="unknown noise schedule 'sqrt'"):
        make_schedule(100, "sqrt")
    with pytest.raises(UserError, match="cannot take 20 steps from a section of 10"):
        make_schedule(10, respacing="20")
