"""Samplers and classifier-free guidance: golden loops with a dummy linear denoiser against a float64 reference
written here from the papers' formulas, the official fixture loops, cancellation, progress and RNG handling."""
import numpy as np
import pytest
import torch

from backend.diffusion import make_schedule
from backend.fixture_check import (Fixture, cond_as, fixture_inputs, fixture_model, guidance_checks,
                                   sampling_loop_checks)
from backend.guidance import classifier_free_guidance
from backend.samplers import (SamplingCancelled, gaussian_noise, model_denoiser, replayed_noise, sample_ddim,
                              sample_ddpm)
from tests.conftest import FIXTURE_DIR

SHAPE = (2, 6, 1, 5)  # [B, njoints, nfeats, F]


class LinearMotionModel:
    """A fixed linear x0 predictor with MDM's forward signature: W x + time term + condition term.

    Records (batch size, timesteps) of every call. `text_embed` [B, D] adds its mean to every feature unless the
    sample is `uncond`, like MDM's zeroed null condition.
    """

    def __init__(self, channels, dtype=torch.float64, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.weight = (0.6 * torch.eye(channels) + 0.1 * torch.randn(channels, channels, generator=gen)).to(dtype)
        self.calls = []

    def __call__(self, x, timesteps, cond):
        self.calls.append((x.shape[0], timesteps.tolist()))
        out = torch.einsum("ij,bjcf->bicf", self.weight.to(x.dtype), x)
        out = out + (timesteps.to(x.dtype) / 1000).view(-1, 1, 1, 1)
        if "text_embed" in cond:
            text = cond["text_embed"].mean(-1).to(x.dtype)  # [B]
            if "uncond" in cond:
                text = torch.where(cond["uncond"], torch.zeros_like(text), text)
            out = out + text.view(-1, 1, 1, 1)
        return out


def reference_schedule(total_steps, kept):
    """Cosine betas of the kept steps, computed here in numpy from the paper's alpha_bar (Nichol & Dhariwal eq. 17)."""
    s = np.arange(total_steps + 1) / total_steps
    f = np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2
    alpha_bar = np.cumprod(1 - np.minimum(1 - f[1:] / f[:-1], 0.999))[kept]
    return 1 - alpha_bar / np.append(1.0, alpha_bar[:-1])


def reference_ddpm(model, kept, betas, x_T, noises):
    """DDPM Algorithm 2 with x0 prediction and sigma_t^2 = beta_tilde_t, float64, one step at a time."""
    alpha = 1 - betas
    abar = np.cumprod(alpha)
    abar_prev = np.append(1.0, abar[:-1])
    x = x_T
    for k, t in enumerate(reversed(range(len(betas)))):
        x0 = model(torch.from_numpy(x), torch.full((len(x),), kept[t]), {}).numpy()
        mean = (np.sqrt(abar_prev[t]) * betas[t] * x0 + np.sqrt(alpha[t]) * (1 - abar_prev[t]) * x) / (1 - abar[t])
        std = np.sqrt(betas[t] * (1 - abar_prev[t]) / (1 - abar[t]))
        x = mean + (std * noises[k] if t > 0 else 0.0)
    return x


def reference_ddim(model, kept, betas, x_T, noises, eta):
    """DDIM, Song et al. eq. 12 with sigma from eq. 16, float64."""
    abar = np.cumprod(1 - betas)
    abar_prev = np.append(1.0, abar[:-1])
    x = x_T
    for k, t in enumerate(reversed(range(len(betas)))):
        x0 = model(torch.from_numpy(x), torch.full((len(x),), kept[t]), {}).numpy()
        eps = (x - np.sqrt(abar[t]) * x0) / np.sqrt(1 - abar[t])
        sigma = eta * np.sqrt((1 - abar_prev[t]) / (1 - abar[t]) * (1 - abar[t] / abar_prev[t]))
        x = np.sqrt(abar_prev[t]) * x0 + np.sqrt(1 - abar_prev[t] - sigma ** 2) * eps + sigma * noises[k]
    return x


def noises_and_start(steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((steps,) + SHAPE, generator=gen, dtype=torch.float64), torch.randn(SHAPE, generator=gen,
                                                                                         dtype=torch.float64)


@pytest.mark.parametrize("total,respacing", [(10, ""), (100, "10"), (100, "ddim8")])
def test_ddpm_loop_matches_float64_reference(total, respacing):
    schedule = make_schedule(total, respacing=respacing)
    kept = schedule.timestep_map.numpy()
    noises, x_T = noises_and_start(schedule.num_steps)
    model = LinearMotionModel(SHAPE[1])
    expected = reference_ddpm(model, kept, reference_schedule(total, kept), x_T.numpy(), noises.numpy())

    ours = sample_ddpm(model_denoiser(model, {}, schedule), schedule, x_T, replayed_noise(noises))
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-12)
    ours32 = sample_ddpm(model_denoiser(model, {}, schedule), schedule, x_T.float(), replayed_noise(noises))
    assert ours32.dtype == torch.float32
    np.testing.assert_allclose(ours32.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_loop_matches_float64_reference(eta):
    schedule = make_schedule(100, respacing="ddim10")
    kept = schedule.timestep_map.numpy()
    noises, x_T = noises_and_start(schedule.num_steps)
    model = LinearMotionModel(SHAPE[1])
    expected = reference_ddim(model, kept, reference_schedule(100, kept), x_T.numpy(), noises.numpy(), eta)
    ours = sample_ddim(model_denoiser(model, {}, schedule), schedule, x_T, eta=eta, noise=replayed_noise(noises))
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-12)


def test_ddim_eta0_is_deterministic_and_draws_no_noise():
    schedule = make_schedule(50, respacing="ddim10")
    _, x_T = noises_and_start(1)
    denoise = model_denoiser(LinearMotionModel(SHAPE[1]), {}, schedule)
    first = sample_ddim(denoise, schedule, x_T)
    assert torch.equal(first, sample_ddim(denoise, schedule, x_T, noise=gaussian_noise(torch.Generator())))
    with pytest.raises(ValueError, match="eta > 0"):
        sample_ddim(denoise, schedule, x_T, eta=0.5)


def test_model_receives_original_step_indices_from_last_to_first():
    schedule = make_schedule(1000, respacing="10")
    model = LinearMotionModel(SHAPE[1])
    sample_ddpm(model_denoiser(model, {}, schedule), schedule, torch.zeros(SHAPE), gaussian_noise(
        torch.Generator().manual_seed(0)))
    assert [ts for _, ts in model.calls] == [[k, k] for k in reversed(range(0, 1000, 111))]


def test_a_seed_reproduces_a_sample():
    schedule = make_schedule(10)
    denoise = model_denoiser(LinearMotionModel(SHAPE[1], dtype=torch.float32), {}, schedule)

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return sample_ddpm(denoise, schedule, torch.randn(SHAPE, generator=gen), gaussian_noise(gen))

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


def test_progress_reports_every_step():
    schedule = make_schedule(10)
    reports = []
    sample_ddpm(model_denoiser(LinearMotionModel(SHAPE[1]), {}, schedule), schedule, torch.zeros(SHAPE),
                gaussian_noise(torch.Generator()), progress=lambda done, total: reports.append((done, total)))
    assert reports == [(k, 10) for k in range(1, 11)]


@pytest.mark.parametrize("sampler", [sample_ddpm, sample_ddim])
def test_cancellation_stops_before_the_next_model_call(sampler):
    schedule = make_schedule(10)
    model = LinearMotionModel(SHAPE[1])
    done = []
    noise = gaussian_noise(torch.Generator())
    with pytest.raises(SamplingCancelled, match="after 3 of 10"):
        sampler(model_denoiser(model, {}, schedule), schedule, torch.zeros(SHAPE), noise=noise,
                progress=lambda k, total: done.append(k), cancelled=lambda: len(done) >= 3)
    assert len(model.calls) == 3


def test_replayed_noise_runs_out_loudly():
    draw = replayed_noise(torch.zeros(1, 2, 3))
    draw(torch.empty(2, 3))
    with pytest.raises(RuntimeError, match="ran out"):
        draw(torch.empty(2, 3))


def two_pass_guidance(model, x, t, cond, scale):
    """The official ClassifierFreeSampleModel: two forwards, uncond + s * (cond - uncond)."""
    out = model(x, t, cond)
    out_uncond = model(x, t, {**cond, "uncond": torch.ones(len(x), dtype=torch.bool)})
    return out_uncond + torch.as_tensor(scale).view(-1, 1, 1, 1) * (out - out_uncond)


def test_guidance_is_one_batched_forward_with_per_sample_scales():
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(SHAPE, generator=gen, dtype=torch.float64), torch.tensor([5, 700])
    cond = {"text_embed": torch.randn(2, 8, generator=gen, dtype=torch.float64)}
    scale = torch.tensor([2.5, 0.0])
    model = LinearMotionModel(SHAPE[1])
    guided = classifier_free_guidance(model, scale)(x, t, cond)
    assert model.calls == [(4, [5, 700, 5, 700])]
    expected = two_pass_guidance(LinearMotionModel(SHAPE[1]), x, t, cond, scale)
    torch.testing.assert_close(guided, expected, rtol=0, atol=1e-14)
    # s = 0 is the unconditional output, s = 1 the conditional one.
    uncond = model(x, t, {**cond, "uncond": torch.ones(2, dtype=torch.bool)})
    torch.testing.assert_close(guided[1], uncond[1], rtol=0, atol=1e-14)


def test_guidance_scale_one_costs_nothing():
    model = LinearMotionModel(SHAPE[1])
    assert classifier_free_guidance(model, 1.0) is model
    assert classifier_free_guidance(model, torch.ones(2)) is model
    schedule = make_schedule(10)
    denoise = model_denoiser(model, {"text_embed": torch.ones(2, 4)}, schedule, guidance_scale=torch.ones(2))
    denoise(torch.zeros(SHAPE, dtype=torch.float64), torch.tensor([3, 3]))
    assert model.calls == [(2, [3, 3])]


def test_batched_guidance_equals_two_passes_on_the_fixture_text_model():
    fx = Fixture(FIXTURE_DIR)
    case = next(name for name, c in fx.config["cases"].items() if any("cfg" in o for o in c["outputs"]))
    # float64: the batched and the two-pass forward are the same algebra, and float32 matmuls of different batch
    # sizes may round differently (the fused encoder kernel does, by ~2e-6).
    model = fixture_model(fx, case).double()
    x, t, cond = fixture_inputs(fx, case)
    x, cond = x.double(), cond_as(cond, torch.float64)
    with torch.no_grad():
        batched = classifier_free_guidance(model, 2.5)(x, t, cond)
        two_pass = two_pass_guidance(model, x, t, cond, torch.tensor(2.5, dtype=torch.float64))
    torch.testing.assert_close(batched, two_pass, rtol=0, atol=1e-12)


def test_guidance_and_sampling_loops_match_official_fixture():
    fx = Fixture(FIXTURE_DIR)
    checks = list(guidance_checks(fx)) + list(sampling_loop_checks(fx))
    assert {"text/out_cfg_s2.5", "loop/final_plain", "loop/final_inbetween", "loop/final_ddim_1000ddim10_eta0"} <= {
        c.name for c in checks}
    failed = [c.line() for c in checks if not c.passed]
    assert not failed, "\n".join(failed)
