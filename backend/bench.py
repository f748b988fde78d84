"""`python -m backend bench`: speed and memory measured side by side in one run, on the official full-size
text model (random weights: speed does not depend on their values).

Every figure is a median of repeated wall-clock timings on this process's device; ratios compare numbers measured
in the same run. Nothing here asserts a speed: tests must never fail because a machine is slow.
"""
import resource
import statistics
import time

import torch

from .diffusion import make_schedule
from .guidance import classifier_free_guidance
from .inpainting import sample_repaint
from .model import MDM, MDMConfig
from .samplers import gaussian_noise, model_denoiser, p_sample, sample_ddpm, timestep_batch
from .text import CLIP_CONTEXT, clip_tokens

# The released humanml_trans_enc_512 model: the MDMConfig defaults (latent 512, ff 1024, 8 layers, 4 heads, CLIP).
FULL_SIZE = MDMConfig(mask_frames=False)
# CLIP ViT-B/32 (the text tower is what MDM runs per prompt), for the official recipe's per-step re-encoding.
CLIP_VIT_B32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                    context_length=CLIP_CONTEXT, vocab_size=49408, transformer_width=512, transformer_heads=8,
                    transformer_layers=12)
GUIDANCE = 2.5  # classifier-free guidance scale of every guided figure (the official default)
REPAINT_JUMP_LENGTH, REPAINT_JUMP_N_SAMPLE = 10, 10  # RePaint's j and r
# The embedded model's request: a clip of EMBEDDED_SECONDS, EMBEDDED_SAMPLES samples, guided by GUIDANCE.
EMBEDDED_SECONDS, EMBEDDED_SAMPLES = 6.0, 3


def median_seconds(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def random_clip(device):
    """A CLIP text tower of ViT-B/32's size with random weights, as the official code runs it (fp16 weights)."""
    import clip

    torch.manual_seed(0)
    model = clip.model.CLIP(**CLIP_VIT_B32).to(device)
    clip.model.convert_weights(model)
    return model.eval()


class Bench:
    def __init__(self, device, steps=50, repeat=5, official_measured_steps=50):
        self.device, self.steps, self.repeat = device, steps, repeat
        self.official_measured_steps = official_measured_steps
        torch.manual_seed(0)
        self.model = MDM(FULL_SIZE).to(device).eval()
        self.params = sum(p.numel() for p in self.model.parameters())

    def inputs(self, batch, frames):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, FULL_SIZE.njoints, FULL_SIZE.nfeats, frames, generator=g).to(self.device)
        cond = {"text_embed": torch.randn(batch, FULL_SIZE.cond_dim, generator=g).to(self.device)}
        return x, cond

    @torch.no_grad()
    def forward_ms(self, batch, frames):
        x, cond = self.inputs(batch, frames)
        t = torch.full((batch,), 500, device=self.device)
        return 1000 * median_seconds(lambda: self.model(x, t, cond), self.repeat)

    @torch.no_grad()
    def cfg_step_ms(self, frames, batched: bool):
        """One guided denoising call: cond and uncond batched (ours) or two passes (official)."""
        x, cond = self.inputs(1, frames)
        t = torch.full((1,), 500, device=self.device)
        if batched:
            guided = classifier_free_guidance(self.model, GUIDANCE)
            return 1000 * median_seconds(lambda: guided(x, t, cond), self.repeat)

        def two_passes():
            out_c = self.model(x, t, cond)
            out_u = self.model(x, t, {**cond, "uncond": torch.ones(1, dtype=torch.bool, device=self.device)})
            return out_u + GUIDANCE * (out_c - out_u)
        return 1000 * median_seconds(two_passes, self.repeat)

    @torch.no_grad()
    def our_sample_s(self, frames):
        """Our fastest honest path: a 50-step model (the official *-50steps recipe: trained with 50 steps, not a
        respaced 1000-step model), ancestral sampling, batched CFG, the prompt encoded once (outside the loop)."""
        schedule = make_schedule(self.steps, "cosine")
        x, cond = self.inputs(1, frames)
        denoise = model_denoiser(self.model, cond, schedule, guidance_scale=GUIDANCE)

        def run():
            g = torch.Generator().manual_seed(0)
            return sample_ddpm(denoise, schedule, torch.randn(x.shape, generator=g).to(self.device), gaussian_noise(g))
        return median_seconds(run, repeat=max(1, self.repeat // 2))

    @torch.no_grad()
    def official_recipe_s(self, frames, clip_model, total_steps=1000):
        """The official generate.py recipe: 1000 ancestral steps, cond and uncond as two passes, and the prompt
        re-encoded by CLIP at every step. Timed over `official_measured_steps` steps and scaled to 1000 (steps
        cost the same at every t)."""
        schedule = make_schedule(total_steps, "cosine")
        x, _ = self.inputs(1, frames)
        tokens = clip_tokens(["a person walks forward and then turns around."]).to(self.device)
        noise = gaussian_noise(torch.Generator().manual_seed(0))

        def one_step(x_t, index):
            text = clip_model.encode_text(tokens).float()
            cond = {"text_embed": text}

            def two_pass_guided(x_in, t_in, c):
                out_c = self.model(x_in, t_in, c)
                out_u = self.model(x_in, t_in, {**c, "uncond": torch.ones(1, dtype=torch.bool, device=self.device)})
                return out_u + GUIDANCE * (out_c - out_u)
            denoise = lambda x_in, t: two_pass_guided(x_in, schedule.timestep_map[t.cpu()].to(self.device), cond)
            return p_sample(denoise, schedule, x_t, timestep_batch(index, x_t), noise(x_t)).sample

        def run():
            x_t = x
            for k in range(self.official_measured_steps):
                x_t = one_step(x_t, total_steps - 1 - k)
        measured = median_seconds(run, repeat=1, warmup=0)
        return measured * total_steps / self.official_measured_steps

    @torch.no_grad()
    def repaint(self, frames):
        """(model calls, wall time) of RePaint on the `steps`-step schedule."""
        schedule = make_schedule(self.steps, "cosine")
        x, cond = self.inputs(1, frames)
        calls = 0
        guided = classifier_free_guidance(self.model, GUIDANCE)

        def counting(x_t, t):
            nonlocal calls
            calls += 1
            return guided(x_t, schedule.timestep_map[t.cpu()].to(self.device), cond)
        keep = torch.zeros_like(x, dtype=torch.bool)
        keep[..., : frames // 4] = True
        g = torch.Generator().manual_seed(0)
        began = time.perf_counter()
        sample_repaint(counting, schedule, torch.randn(x.shape, generator=g).to(self.device), x, keep,
                       gaussian_noise(g), jump_length=REPAINT_JUMP_LENGTH, jump_n_sample=REPAINT_JUMP_N_SAMPLE)
        return calls, time.perf_counter() - began


def embedded_latency(device, repeat=5):
    """(median wall time, `Pipeline.info()`) of the embedded model's guided request: EMBEDDED_SAMPLES clips of
    EMBEDDED_SECONDS, every step it was trained with, the prompt encoded once (the encoder is loaded before
    timing)."""
    from .pipeline import MotionRequest, Pipeline

    pipeline = Pipeline(None, device)
    request = MotionRequest(text="a person walks forward and waves", samples=EMBEDDED_SAMPLES, guidance=GUIDANCE,
                            frames=round(EMBEDDED_SECONDS * pipeline.loaded.frames["fps"]))
    pipeline.generate(request)  # loads the text encoder and warms up
    return median_seconds(lambda: pipeline.generate(request), repeat=repeat, warmup=0), pipeline.info()


def run_bench(device, frames_list=(120, 196), steps=50, repeat=5, official_measured_steps=50, out=print):
    """Print every figure; return them as a dict (for docs/benchmarks.md)."""
    out(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    try:
        latency, info = embedded_latency(device, repeat)
        results["embedded_s"] = latency
        out(f"embedded model ({info['parameters'] / 1e6:.2f} M parameters, {info['diffusion_steps']} steps): "
            f"{EMBEDDED_SECONDS:g} s clip, {EMBEDDED_SAMPLES} samples, guidance {GUIDANCE}: {latency:.2f} s "
            f"(median of {repeat})")
    except Exception as err:  # no embedded model in this checkout: say so, measure the rest
        out(f"embedded model: not measured ({err})")
    if frames_list:
        bench = Bench(device, steps, repeat, official_measured_steps)
        out(f"full-size MDM: {bench.params / 1e6:.2f} M parameters, random weights")
        clip_model = random_clip(device)
    for frames in frames_list:
        r = {}
        r["forward_b1_ms"] = bench.forward_ms(1, frames)
        r["forward_b2_ms"] = bench.forward_ms(2, frames)
        r["cfg_batched_ms"] = bench.cfg_step_ms(frames, batched=True)
        r["cfg_two_pass_ms"] = bench.cfg_step_ms(frames, batched=False)
        r["ours_sample_s"] = bench.our_sample_s(frames)
        r["floor_s"] = steps * r["forward_b2_ms"] / 1000  # 50 forward passes at batch 2: the compute floor
        r["official_s"] = bench.official_recipe_s(frames, clip_model)
        r["repaint_calls"], r["repaint_s"] = bench.repaint(frames)
        r["peak_rss_mb"] = peak_rss_mb()
        if device.type == "cuda":
            r["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        results[frames] = r
        out(f"\n== {frames} frames ==")
        out(f"one forward, batch 1 / batch 2:        {r['forward_b1_ms']:8.1f} / {r['forward_b2_ms']:.1f} ms")
        out(f"guided step, batched CFG / two passes: {r['cfg_batched_ms']:8.1f} / {r['cfg_two_pass_ms']:.1f} ms "
            f"(two passes / batched = {r['cfg_two_pass_ms'] / r['cfg_batched_ms']:.2f}x)")
        out(f"ours: {steps}-step guided sample:       {r['ours_sample_s']:8.2f} s  = "
            f"{r['ours_sample_s'] / r['floor_s']:.2f}x the floor ({steps} forwards at batch 2: {r['floor_s']:.2f} s)")
        out(f"official recipe (1000 steps, 2 passes, CLIP per step; {official_measured_steps} steps timed, "
            f"scaled): {r['official_s']:.1f} s  -> ours is {r['official_s'] / r['ours_sample_s']:.1f}x faster")
        out(f"RePaint {steps} steps, j={REPAINT_JUMP_LENGTH} r={REPAINT_JUMP_N_SAMPLE}:          "
            f"{r['repaint_calls']} model calls "
            f"({r['repaint_calls'] / steps:.1f}x plain), {r['repaint_s']:.2f} s "
            f"({r['repaint_s'] / r['ours_sample_s']:.1f}x plain sampling)")
        out(f"peak memory: {r['peak_rss_mb']:.0f} MB resident (process)"
            + (f", {r['peak_cuda_mb']:.0f} MB CUDA" if "peak_cuda_mb" in r else ""))
    return results
