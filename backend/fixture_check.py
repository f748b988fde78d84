"""Reproduce the arrays of a golden fixture made by the official MDM code (layout of `mdm_official/`).

Everything about the fixture (array names, shapes, configs, prompts, schedule settings) is read from its JSON and
npz, never assumed, so the same checks pass on a fixture made the same way with other sizes and seeds. Each check
group is a function `group(fixture) -> iterable of Check`; `run_checks` turns an exception inside a group into a
failed check rather than a crash, so one broken part never hides the others.
"""
import json
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import skeleton
from .errors import UserError

# Tolerances of the fixture README ("How to compare"), by kind of comparison.
TOL_EXACT64 = 1e-12  # float64 schedules
TOL_EXACT32 = 1e-6  # float32 arrays the official math reproduces bit for bit (pe, q_sample, joint recovery)
TOL_FORWARD = 1e-5  # one network forward in float32
TOL_FORWARD64 = 1e-10
TOL_STEP = 2e-5  # one p_sample step
TOL_LOOP = 1e-4  # a 10-step sampling loop
TOL_CLIP_FP16 = 8e-3  # CLIP text tower in fp16 weights


class Fixture:
    """A fixture directory: `<name>.json` (configs) plus `<name>.npz` (arrays) and the state-dict files."""

    def __init__(self, directory):
        self.dir = Path(directory)
        jsons = sorted(self.dir.glob("*.json"))
        if not self.dir.is_dir() or len(jsons) != 1:
            raise UserError(f"{self.dir} is not a fixture directory: expected exactly one .json file beside an .npz")
        self.config = json.loads(jsons[0].read_text())
        npz_path = jsons[0].with_suffix(".npz")
        if not npz_path.exists():
            raise UserError(f"fixture array file {npz_path} is missing")
        self._npz = np.load(npz_path)

    def array(self, name) -> np.ndarray:
        return self._npz[name]

    def has(self, *names) -> bool:
        return all(n in self._npz.files for n in names)

    def path(self, filename) -> Path:
        return self.dir / filename


@dataclass
class Check:
    name: str
    max_abs_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs_error)) and self.max_abs_error <= self.tolerance

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name:<48} max_abs_err={self.max_abs_error:.3e}  tol={self.tolerance:.0e}  {verdict}"


def compare(name, actual, expected, tolerance) -> Check:
    """Max absolute error between two arrays; a shape mismatch is an infinite error."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Check(f"{name} (shape {actual.shape} != {expected.shape})", float("inf"), tolerance)
    return Check(name, float(np.max(np.abs(actual - expected), initial=0.0)), tolerance)


def skeleton_checks(fx: Fixture):
    """Our skeleton constants against the fixture's ("skeleton" in the JSON)."""
    ref = fx.config["skeleton"]
    yield compare("skeleton/raw_offsets", skeleton.RAW_OFFSETS, ref["t2m_raw_offsets"], 0.0)
    chain_ok = [list(c) for c in skeleton.KINEMATIC_CHAIN] == ref["t2m_kinematic_chain"]
    yield Check("skeleton/kinematic_chain", 0.0 if chain_ok else float("inf"), 0.0)
    names_ok = list(skeleton.JOINT_NAMES) == ref["HML_JOINT_NAMES"]
    yield Check("skeleton/joint_names", 0.0 if names_ok else float("inf"), 0.0)
    yield compare("skeleton/lower_body_joints", skeleton.LOWER_BODY_JOINTS, ref["HML_LOWER_BODY_JOINTS"], 0.0)
    yield compare("skeleton/fps", skeleton.FPS, ref["fps_humanml"], 0.0)
    yield compare("skeleton/max_frames", skeleton.MAX_FRAMES, ref["max_frames_humanml"], 0.0)
    if fx.has("edit/HML_LOWER_BODY_MASK_263"):
        ours = skeleton.feature_mask(skeleton.LOWER_BODY_JOINTS, contacts=True)
        yield compare("skeleton/lower_body_mask_263", ours, fx.array("edit/HML_LOWER_BODY_MASK_263"), 0.0)


def ric_checks(fx: Fixture):
    """HumanML3D features -> root rotation, root position and joints (official `recover_from_ric`)."""
    from . import features

    case = fx.config["recover_from_ric"]
    motion = fx.array(case["input"].split()[0])
    root_quat, root_pos = features.recover_root(motion)
    ours = {"ric/r_rot_quat": root_quat, "ric/r_pos": root_pos,
            f"ric/joints_{skeleton.NUM_JOINTS}": features.features_to_joints(motion)}
    for name in case["outputs"]:
        if name not in ours:
            yield Check(f"{name} (no counterpart in backend.features)", float("inf"), TOL_EXACT32)
            continue
        yield compare(name, ours[name], fx.array(name), TOL_EXACT32)


def fixture_array_names(fx: Fixture, text: str) -> list:
    """The npz arrays a JSON description mentions, in order (e.g. "text/x_t [2,263,1,40]" -> ["text/x_t"])."""
    return [word for word in re.findall(r"[\w.]+/[\w.]+", text) if fx.has(word)]


def fixture_model(fx: Fixture, case_name: str, mask_frames=False, frequencies=None):
    """The MDM of a fixture case, built through the same path as a user's official checkpoint (official constructor
    arguments -> MDMConfig, strict load of the state dict), float32, eval mode, on the CPU. `frequencies`
    replaces the positional table's (see `fixture_frequencies`)."""
    from .checkpoints import build_model, read_torch_file
    from .model import MDMConfig, sinusoid_table

    case = fx.config["cases"][case_name]
    kwargs = {**case["constructor_kwargs"], **({"mask_frames": True} if mask_frames else {})}
    path = fx.path(case["state_dict_file"])
    model = build_model(read_torch_file(path), MDMConfig.from_official_kwargs(kwargs), source=str(path))
    if frequencies is not None:
        pe = model.sequence_pos_encoder.pe
        pe.copy_(sinusoid_table(pe.shape[0], pe.shape[1], frequencies))
    return model


def fixture_inputs(fx: Fixture, case_name: str):
    """(x_t, timesteps, cond) of a case's forward, in our cond format (a case may reuse another case's inputs)."""
    import torch

    cases = fx.config["cases"]
    inputs = cases[case_name]["inputs"]
    if isinstance(inputs, str):  # "same x_t, timesteps, mask, text_embed as text_trans_enc"
        return fixture_inputs(fx, next(name for name in cases if name != case_name and name in inputs.split()))

    def tensor(key):
        return torch.from_numpy(fx.array(fixture_array_names(fx, inputs[key])[0]))

    cond = {}
    if "y.text_embed" in inputs:
        text = tensor("y.text_embed")  # official cache layout [S, B, D], S = 1 for pooled CLIP
        cond["text_embed"] = text[0] if text.shape[0] == 1 else text.transpose(0, 1)
    if "y.action" in inputs:
        cond["action"] = tensor("y.action").reshape(-1)  # official [B, 1]
    return tensor("x_t"), tensor("timesteps"), cond


def fixture_clip_encoder(fx: Fixture, case_name: str):
    """The case's tiny random CLIP (text tower from its state dict) behind our `ClipTextEncoder`."""
    import clip

    from .checkpoints import read_torch_file
    from .text import ClipTextEncoder

    spec = fx.config["cases"][case_name]["tiny_clip"]
    model = clip.model.CLIP(**spec["config"])
    missing, unexpected = model.load_state_dict(read_torch_file(fx.path(spec["state_dict_file"])), strict=False)
    if unexpected or any(not key.startswith("visual.") for key in missing):  # only the image tower may be absent
        raise ValueError(f"tiny CLIP text tower does not match: missing {missing}, unexpected {unexpected}")
    context = int(re.search(r"context_length=(\d+)", spec["tokenize"]).group(1))
    return ClipTextEncoder(model, context_length=context)


def fixture_frequencies(fx: Fixture):
    """The sinusoid frequencies the fixture's machine used: ours, or ours moved by one float32 ulp where the
    fixture's table says so. float32 exp() is not correctly rounded and its last bit differs between CPUs; one ulp
    of a frequency shifts pe[999] by ~3e-5. Returns (frequencies, indices that differ from ours)."""
    import torch

    from .model import sinusoid_frequencies, sinusoid_table

    rows, expected = fx.array("pe/rows"), fx.array("pe/values_d64")
    ours = sinusoid_frequencies(expected.shape[1]).numpy()
    chosen = ours.copy()
    for i, f in enumerate(ours):
        candidates = [f, np.nextafter(f, np.float32(0)), np.nextafter(f, np.float32(1))]
        errors = []
        for candidate in candidates:
            trial = chosen.copy()
            trial[i] = candidate
            table = sinusoid_table(int(rows.max()) + 1, expected.shape[1], torch.from_numpy(trial))[rows].numpy()
            errors.append(np.abs(table[:, 2 * i:2 * i + 2] - expected[:, 2 * i:2 * i + 2]).max())
        chosen[i] = candidates[int(np.argmin(errors))]
    return torch.from_numpy(chosen), np.flatnonzero(chosen != ours)


def model_checks(fx: Fixture):
    """Positional table, tiny-CLIP tokens and embedding, and every MDM forward output of every case (CFG outputs
    belong to the guidance checks).

    The network is checked with the positional table rebuilt from the fixture machine's frequencies (each at most
    one float32 ulp of exp() from ours), the way the README keeps CLIP's fp16 error apart from the MDM checks by
    using the stored embedding: the last bit of exp() is the platform's, the rest is MDM's math."""
    import torch

    from .model import sinusoid_table

    frequencies = None
    if fx.has("pe/rows", "pe/values_d64"):
        rows, expected = fx.array("pe/rows"), fx.array("pe/values_d64")
        frequencies, moved = fixture_frequencies(fx)
        ours = sinusoid_table(int(rows.max()) + 1, expected.shape[1])
        plain = compare("pe/values_d64 (this CPU's exp)", ours[rows], expected, TOL_EXACT32)
        note = f"{len(moved)}/{len(frequencies)} frequencies 1 ulp apart" if len(moved) else "bit-exact exp"
        table = sinusoid_table(int(rows.max()) + 1, expected.shape[1], frequencies)
        yield compare(f"pe/values_d64 (exp within 1 ulp: {note}; raw {plain.max_abs_error:.1e})", table[rows],
                      expected, TOL_EXACT32)

    for case_name, case in fx.config["cases"].items():
        if "tiny_clip" in case:
            yield from clip_checks(fx, case_name)
        x, t, cond = fixture_inputs(fx, case_name)
        outputs = {name: desc for name, desc in case["outputs"].items() if "cfg" not in name}
        frame_masks = [n for desc in outputs.values() for n in fixture_array_names(fx, desc)
                       if fx.array(n).dtype == bool]  # official y['mask'] [B, 1, 1, F]
        for name in outputs:
            variant = set(name.split("/")[-1].split("_"))  # e.g. {"out", "uncond", "maskframes"}
            model = fixture_model(fx, case_name, mask_frames="maskframes" in variant, frequencies=frequencies)
            expected = fx.array(name)
            dtype = torch.float64 if expected.dtype == np.float64 else torch.float32
            run_cond = cond_as(cond, dtype)
            run_cond["uncond"] = torch.full((x.shape[0],), "uncond" in variant)
            if "maskframes" in variant:
                run_cond["frame_mask"] = torch.from_numpy(fx.array(frame_masks[0])).reshape(x.shape[0], x.shape[-1])
            with torch.no_grad():
                out = model.to(dtype)(x.to(dtype), t, run_cond)
            yield compare(name, out.numpy(), expected, TOL_FORWARD64 if dtype == torch.float64 else TOL_FORWARD)


def cond_as(cond: dict, dtype) -> dict:
    """The condition with its floating tensors in `dtype` (masks, actions and flags unchanged)."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in cond.items()}


def clip_checks(fx: Fixture, case_name: str):
    """Tokens (exact) and the fp16 text embedding of the case's tiny CLIP on the case's prompts."""
    case = fx.config["cases"][case_name]
    encoder = fixture_clip_encoder(fx, case_name)
    prompts = case["inputs"]["prompts"]
    prefix = fixture_array_names(fx, case["inputs"]["x_t"])[0].split("/")[0]
    tokens = encoder.tokenize(prompts).numpy()  # [B, 77]
    for name in fx.config["npz_arrays"]:
        if name.startswith(f"{prefix}/") and "tokens" in name:
            width = fx.array(name).shape[1]  # the context length, or the padded length
            yield compare(name, tokens[:, :width], fx.array(name), 0.0)
    embed_name = fixture_array_names(fx, case["inputs"]["y.text_embed"])[0]
    yield compare(embed_name, encoder.encode(prompts).unsqueeze(0).numpy(), fx.array(embed_name), TOL_CLIP_FP16)


SCHEDULE_ARRAY_NAMES = {"alphas_cumprod": "alpha_bar"}  # official name fragment -> ours (alpha_bar_prev, ...)


def fixture_schedule(fx: Fixture, name: str):
    """A schedule of the fixture by its name ("native10", "1000resp10", "1000ddim10"); the beta schedule's kind is
    the first word of the JSON's diffusion.common.schedule ("cosine, s=0.008, ...")."""
    from .diffusion import make_schedule, parse_schedule_name

    kind = re.match(r"\w+", fx.config["diffusion"]["common"]["schedule"])[0]
    return make_schedule(noise_schedule=kind, **parse_schedule_name(name))


def schedule_checks(fx: Fixture):
    """Beta schedules and every derived array of every respaced schedule (float64, bit-exact in the official)."""
    from .diffusion import named_betas

    for name in fx.config["npz_arrays"]:
        if m := re.fullmatch(r"sched/betas_(\w+)_(\d+)", name):
            yield compare(name, named_betas(m[1], int(m[2])).numpy(), fx.array(name), TOL_EXACT64)
        elif m := re.fullmatch(r"sched/(\w+)/(\w+)", name):
            ours = m[2]
            for official, renamed in SCHEDULE_ARRAY_NAMES.items():
                ours = ours.replace(official, renamed)
            yield compare(name, getattr(fixture_schedule(fx, m[1]), ours).numpy(), fx.array(name), TOL_EXACT64)


def guided_text_case(fx: Fixture):
    """(model, x_t, timesteps, cond, output name, scale) of the case with a classifier-free-guided output."""
    for case_name, case in fx.config["cases"].items():
        for name in case["outputs"]:
            if m := re.search(r"cfg_s([\d.]+)$", name):
                x, t, cond = fixture_inputs(fx, case_name)
                return fixture_model(fx, case_name), x, t, cond, name, float(m[1])
    raise ValueError("no case of the fixture has a classifier-free-guided output (cfg_sX)")


def described_scale(description: str) -> float:
    """The guidance scale a JSON description names ("CFG 2.5", "CFG(text model, scale 2.5)")."""
    return float(re.search(r"CFG\D*?(\d+(?:\.\d+)?)", description)[1])


def guidance_checks(fx: Fixture):
    """Batched classifier-free guidance (one forward of 2B) against the official two-pass output."""
    import torch

    from .guidance import classifier_free_guidance

    model, x, t, cond, name, scale = guided_text_case(fx)
    with torch.no_grad():
        out = classifier_free_guidance(model, torch.full((x.shape[0],), scale))(x, t, cond)
    yield compare(name, out.numpy(), fx.array(name), TOL_FORWARD)


def diffusion_step_checks(fx: Fixture):
    """q_sample on every schedule; one guided ancestral step (mean, variance, sample, x0) and the two official
    editing modes (x0 replacement) on the same step, with the upper-body mask rebuilt from the skeleton."""
    import torch

    from .diffusion import q_sample
    from .inpainting import replace_x0, upper_body_mask
    from .samplers import model_denoiser, p_sample

    def tensor(name):
        return torch.from_numpy(fx.array(name))

    desc = fx.config["diffusion"]
    x0, noise = tensor("diff/x0"), tensor("diff/q_noise")
    for name in fx.config["npz_arrays"]:
        if m := re.fullmatch(r"diff/q_sample_(\w+)", name):
            out = q_sample(fixture_schedule(fx, m[1]), x0, tensor("diff/q_t"), noise)
            yield compare(name, out.numpy(), fx.array(name), TOL_EXACT32)

    model, x_t, _, cond, _, _ = guided_text_case(fx)
    step_names = [n for n in fx.config["npz_arrays"] if re.fullmatch(r"diff/p_sample_\w+", n) and "pred" not in n]
    for sample_name in step_names:
        sched_name = sample_name.removeprefix("diff/p_sample_")
        schedule = fixture_schedule(fx, sched_name)
        denoise = model_denoiser(model, cond, schedule, guidance_scale=described_scale(desc["p_sample"]))
        t = tensor("diff/p_t")
        yield compare("diff/p_model_timesteps", schedule.timestep_map[t], fx.array("diff/p_model_timesteps"), 0)
        with torch.no_grad():
            step = p_sample(denoise, schedule, x_t, t, noise)
        yield compare(f"diff/p_{sched_name}_mean", step.mean, fx.array(f"diff/p_{sched_name}_mean"), TOL_STEP)
        for quantity in ("variance", "log_variance"):
            name = f"diff/p_{sched_name}_{quantity}_per_sample"
            yield compare(name, getattr(step, quantity).flatten(), fx.array(name), TOL_STEP)
        yield compare(sample_name, step.sample, fx.array(sample_name), TOL_STEP)
        yield compare(f"{sample_name}_pred_xstart", step.x0_hat, fx.array(f"{sample_name}_pred_xstart"), TOL_STEP)

        for edit_name in [n for n in fx.config["npz_arrays"] if re.fullmatch(r"edit/p_sample_[a-z]+", n)]:
            mode = edit_name.removeprefix("edit/p_sample_")  # "inbetween", "upperbody"
            mask_name = next(n for n in fx.config["npz_arrays"]
                             if n.startswith("edit/") and n.replace("_", "") == f"edit/{mode}mask")
            keep = tensor(mask_name)
            if mode == "upperbody":
                yield compare(f"{mask_name} (rebuilt)", upper_body_mask(keep.shape), keep, 0)
            with torch.no_grad():
                edited = p_sample(replace_x0(denoise, x0, keep), schedule, x_t, t, noise)
            yield compare(edit_name, edited.sample, fx.array(edit_name), TOL_STEP)
            yield compare(f"{edit_name}_pred_xstart", edited.x0_hat, fx.array(f"{edit_name}_pred_xstart"), TOL_STEP)


def sampling_loop_checks(fx: Fixture):
    """Full guided loops from the stored initial noise with the stored per-step noises: ancestral DDPM, the same
    with official in-between editing (mask rebuilt from the clip length), and DDIM."""
    import torch

    from .inpainting import inbetween_mask, replace_x0
    from .samplers import model_denoiser, replayed_noise, sample_ddim, sample_ddpm

    desc = fx.config["diffusion"]["loop"]
    ddpm_schedule = fixture_schedule(fx, re.search(r"p_sample_loop on (\w+)", desc)[1])  # "p_sample_loop on native10"
    model, _, _, cond, _, _ = guided_text_case(fx)
    scale = described_scale(desc)
    x_T, step_noises = torch.from_numpy(fx.array("loop/init_noise")), torch.from_numpy(fx.array("loop/step_noises"))

    denoise = model_denoiser(model, cond, ddpm_schedule, guidance_scale=scale)
    final = sample_ddpm(denoise, ddpm_schedule, x_T, replayed_noise(step_noises))
    yield compare("loop/final_plain", final, fx.array("loop/final_plain"), TOL_LOOP)

    keep = inbetween_mask([x_T.shape[-1]] * x_T.shape[0], x_T.shape)
    yield compare("loop/inpainting_mask (rebuilt)", keep, fx.array("loop/inpainting_mask"), 0)
    known = torch.from_numpy(fx.array("loop/inpainted_motion"))
    final = sample_ddpm(replace_x0(denoise, known, keep), ddpm_schedule, x_T, replayed_noise(step_noises))
    yield compare("loop/final_inbetween", final, fx.array("loop/final_inbetween"), TOL_LOOP)

    for name in fx.config["npz_arrays"]:
        if m := re.fullmatch(r"loop/final_ddim_(\w+)_eta([\d.]+)", name):
            schedule = fixture_schedule(fx, m[1])
            final = sample_ddim(model_denoiser(model, cond, schedule, guidance_scale=scale), schedule, x_T,
                                eta=float(m[2]), noise=replayed_noise(step_noises))
            yield compare(name, final, fx.array(name), TOL_LOOP)


CHECK_GROUPS = (skeleton_checks, ric_checks, model_checks, schedule_checks, guidance_checks, diffusion_step_checks,
                sampling_loop_checks)


def run_checks(directory, groups=CHECK_GROUPS, out=print) -> bool:
    """Print one line per check; return True when every check passed."""
    fx = Fixture(directory)
    checks = []
    for group in groups:
        try:
            for check in group(fx):
                checks.append(check)
                out(check.line())
        except Exception as err:  # a broken group is a failed check, reported with its cause
            check = Check(f"{group.__name__} raised {type(err).__name__}: {err}", float("inf"), 0.0)
            checks.append(check)
            out(check.line())
            out(traceback.format_exc())
    failed = sum(not c.passed for c in checks)
    out(f"{len(checks) - failed} passed, {failed} failed")
    return failed == 0
