"""The one place that wires a request to a motion: load a model once, encode the condition once per request,
sample, un-normalise, recover joints, and (for in-betweening) place the result exactly on the keys.

Requests and results are plain data (numpy arrays, str, int, float), so the same calls serve the CLI, the add-on's
in-process worker thread and the stdio server.
"""
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import captions, features, keyframes, planting, skeleton
from .checkpoints import LoadedModel, load_checkpoint
from .device import pick_device
from .diffusion import make_schedule
from .errors import UserError
from .inpainting import (anchor_root, denormalize, keyframe_inpainting, reconstruction_guidance, replace_x0,
                         sample_repaint)
from .samplers import gaussian_noise, model_denoiser, sample_ddim, sample_ddpm

SAMPLERS = ("ddpm", "ddim")
# The embedded default model: trained by `python -m backend train` on data we may ship (see docs/benchmarks.md).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "default_model"
MAX_SAMPLES = 16
INPAINTING_METHODS = ("x0_replace", "repaint", "guidance")  # work with any model (official ones included)
# The baseline the methods are measured against: an unconstrained sample, moved onto the keys by the exact
# placement step alone (`keyframes.place_on_keys`). Accepted by name, never offered as a default.
BASELINE_METHOD = "plain"
RECONSTRUCTION_GUIDANCE_WEIGHT = 10.0
CHAIN_OVERLAP = 10  # long clips: frames of the previous window that each next window continues from
MAX_CHAIN_WINDOWS = 8
SEAM_BLEND = 10  # frames over which a chained window's first-frame correction fades out


@dataclass
class MotionRequest:
    """What the user asked for. `frames` counts output frames at the model's fps."""

    text: str = ""
    action: str = ""
    frames: int = 120
    samples: int = 3
    seed: int = 0
    guidance: float = 2.5
    steps: int = 0  # 0 = every step the model was trained with; fewer = respaced
    sampler: str = "ddpm"
    keys: keyframes.Keyframes | None = None  # in-betweening / continuation constraints
    inbetween_method: str = "auto"  # auto = the best the model supports (see `inbetween_methods`)
    hold_root: bool = True  # in-betweening: the root passes exactly through every keyed root
    plant_feet: bool = True  # planted feet keep still: held between keys, then followed by the root (`planting`)
    literal_prompt: bool = False  # condition on the prompt's own embedding, not its nearest known caption


def _continuation(motion, window, overlap):
    """The new frames of a chained `window` (its first `overlap` frames sit near `motion`'s last ones, which it was
    keyed on). The model follows keyed positions but not their pace: its first new frame may jump, and it may set
    off faster or slower than `motion` ended. Over SEAM_BLEND frames the new frames go from continuing `motion` at
    its last velocity to the window's own motion: the root's horizontal velocity is blended from `motion`'s last to
    the window's (the body keeps the offset this leaves, rigidly), and every joint's remaining offset from that
    continuation decays to zero, with zero velocity at both ends (a cubic Hermite, as in inertialization)."""
    new = window[overlap:].copy()
    ground = [0, 2]  # x, z
    # Raised-cosine weight of the window's own root velocity: 0 at the first new frame, 1 from SEAM_BLEND on.
    own = 0.5 * (1 - np.cos(np.pi * np.minimum(np.arange(len(new)), SEAM_BLEND) / SEAM_BLEND))
    root = np.concatenate([motion[-1:, 0, ground], new[:, 0, ground]])  # (1 + N, 2)
    last = motion[-1, 0, ground] - motion[-2, 0, ground]
    velocity = last + own[:, None] * (np.diff(root, axis=0) - last)  # (N, 2)
    new[:, :, ground] += (root[0] + np.cumsum(velocity, axis=0) - root[1:])[:, None, :]
    offset = 2 * motion[-1] - motion[-2] - new[0]  # (22, 3) from continuing at the last velocity
    slope = (motion[-1] - motion[-2]) - (new[1] - new[0])  # (22, 3) per frame
    s = np.minimum(np.arange(len(new)), SEAM_BLEND)[:, None, None] / SEAM_BLEND
    return new + offset * (2 * s**3 - 3 * s**2 + 1) + slope * SEAM_BLEND * (s**3 - 2 * s**2 + s)


@dataclass(frozen=True)
class ChainWindow:
    start: int  # the first frame it samples: the previous windows' last frames from here on are its first keys
    stop: int  # the last frame it samples (past the clip's end where the model's shortest window needs it)
    keep_to: int  # the last frame it contributes (it contributes those after the previous window's keep_to)


def chain_windows(key_frames, total, window, overlap, min_frames, fps) -> list[ChainWindow]:
    """How a clip of `total` frames longer than the model's `window` is sampled. Each window after the first starts
    `overlap` frames before the end of what is made so far, which it is keyed on, so it continues that motion.
    A window that reaches user keys ahead contributes up to the second-last of them and samples on to the last,
    so every stretch is sampled knowing the key after it; past the last key (or with no keys) it contributes all
    it samples."""
    key_frames = np.asarray(key_frames, dtype=np.int64)
    pieces, kept = [], -1  # kept: the last frame made so far
    while kept < total - 1:
        start = max(0, kept - overlap + 1)
        reach = start + window - 1
        ahead = key_frames[(key_frames > max(kept, start)) & (key_frames <= reach)]
        if reach >= total - 1 or not (key_frames > kept).any():  # to the clip's end, or past the last key
            end = min(reach, total - 1)
            pieces.append(ChainWindow(start, max(end, start + min_frames - 1), end))
        elif len(ahead):
            # Stopping at the second-last key helps only if the next window, starting there, sees a key past it.
            beyond = key_frames[key_frames > ahead[-1]]
            useful = len(ahead) > 1 and len(beyond) and beyond[0] <= ahead[-2] - overlap + window
            keep_to = ahead[-2] if useful else ahead[-1]
            pieces.append(ChainWindow(start, max(ahead[-1], min(total - 1, start + min_frames - 1)), keep_to))
        else:
            after, before = key_frames[key_frames > max(kept, 0)][0], key_frames[key_frames <= max(kept, 0)]
            gap = f"keys at {before[-1] / fps:.2f} s and" if len(before) else "the clip's start and its first key at"
            raise UserError(f"{gap} {after / fps:.2f} s are too far apart: this model fills at most "
                            f"{(window - overlap) / fps:.1f} s between two keys; add a key between them")
        kept = pieces[-1].keep_to
    return pieces


def piece_keys(made, keys: keyframes.Keyframes | None, piece: ChainWindow) -> keyframes.Keyframes | None:
    """The keys of one chained window, in its own frame numbers: the frames already `made` from its start on (full
    poses) and the user's keys after them that it samples."""
    prefix = made[piece.start:]
    frames, joints, mask = [np.arange(len(prefix))], [prefix], [np.ones(prefix.shape[:2], dtype=bool)]
    if keys is not None:
        ahead = (keys.frames >= len(made)) & (keys.frames <= piece.stop)
        frames.append(keys.frames[ahead] - piece.start), joints.append(keys.joints[ahead])
        mask.append(keys.joint_mask[ahead])
    if not sum(map(len, frames)):
        return None
    return keyframes.Keyframes(np.concatenate(frames), np.concatenate(joints), np.concatenate(mask))


@dataclass
class MotionResult:
    joints: np.ndarray  # (S, T, 22, 3) float32, metres, Y-up, at meta["fps"]
    features: np.ndarray  # (S, T, 263) un-normalised HumanML3D features
    meta: dict = field(default_factory=dict)


def clip_features(joints) -> np.ndarray:
    """(S, T, 22, 3) -> (S, T, 263): the features of finished clips (the last frame repeated: features need a next
    frame)."""
    return np.stack([features.joints_to_features(np.concatenate([j, j[-1:]])) for j in joints])


def on_reference_skeleton(keys: keyframes.Keyframes) -> keyframes.Keyframes:
    """Full-pose keys moved onto the skeleton the model knows (HumanML3D's reference bone lengths, the root path
    scaled by the ratio of leg lengths about the first key), so keys from any rig are poses the model can reach and
    the result keeps one set of proportions. Partial keys (a joint subset) are used as given."""
    if not keys.joint_mask.all():
        return keys
    origin = keys.joints[0, 0] * np.array([1.0, 0.0, 1.0])
    moved = features.check_joints(keys.joints - origin, min_frames=1)
    return keyframes.Keyframes(keys.frames, features.uniform_skeleton(moved) + origin, keys.joint_mask)


def check_keys_fit(keys: keyframes.Keyframes, frames: int):
    """A UserError unless the user's keys can constrain a clip of `frames` frames."""
    keys.validate(frames)
    if len(keys.frames) < 2:
        raise UserError("in-betweening needs at least two keyed frames")


def floor_under_first_key(keys: keyframes.Keyframes) -> float:
    """The height of the first key's lowest keyed joint when that key constrains both feet (ankles and toes), else
    0: a key of other joints (a root path, a hand) need not touch any floor. The model learned people on a flat
    floor at y = 0, and keys posed on a step, a slope, or a rig whose floor lies elsewhere start it in the air: it
    answers with a root that rushes off between the keys (docs/benchmarks.md: przestr/03_01 on the metarig). So
    keys are sampled with this height taken off and the result is raised back by it, which still meets every key
    exactly."""
    first, keyed = keys.joints[0], keys.joint_mask[0]
    return float(first[keyed, 1].min()) if keyed[list(skeleton.CONTACT_JOINTS)].all() else 0.0


def raised(keys: keyframes.Keyframes, height: float) -> keyframes.Keyframes:
    return keyframes.Keyframes(keys.frames, keys.joints + np.array([0.0, height, 0.0]), keys.joint_mask)


class Pipeline:
    """A loaded model plus its text encoder; `generate` runs one request."""

    def __init__(self, checkpoint=None, device="auto", clip_path=None):
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        self.device = pick_device(device)
        self.loaded: LoadedModel = load_checkpoint(checkpoint, device=self.device)
        self.config = self.loaded.config
        if self.config.data_rep != "hml_vec":
            raise UserError(f"{checkpoint}: {self.config.data_rep} models (e.g. the official action models) output "
                            f"SMPL rotations, which need the SMPL body model to become joints; only HumanML3D-feature "
                            f"models are supported for generation")
        self._clip_path = clip_path
        self._text_encoder = None  # built on the first text request: loading CLIP takes seconds

    # ------------------------------------------------------------------ what the model offers
    @property
    def action_prompts(self) -> dict:
        """Action name -> the prompt that stands for it (our text models list their training categories)."""
        return dict(self.loaded.meta.get("action_prompts", {}))

    @property
    def actions(self) -> list:
        return list(self.config.action_names) or list(self.action_prompts)

    def info(self) -> dict:
        c, frames, vocabulary = self.config, self.loaded.frames, self.loaded.vocabulary
        return {"arch": c.arch, "cond_mode": c.cond_mode, "text_encoder": c.text_encoder if c.cond_mode == "text"
                else None, "actions": self.actions, "fps": frames["fps"], "min_frames": frames["min_frames"],
                "max_frames": frames["max_frames"], "max_chained_frames": self.longest_frames(),
                "diffusion_steps": c.diffusion_steps,
                "keyframe_conditioned": bool(c.keyframe_dim),
                "known_captions": len(vocabulary.sentences) if vocabulary else 0,  # prompts are read as these
                "parameters": sum(p.numel() for p in self.loaded.model.parameters()), "device": str(self.device),
                "path": self.loaded.meta.get("path")}

    # ------------------------------------------------------------------ one request
    def inbetween_methods(self) -> list:
        """Ways this model can meet keyframes, the default first: its own keyframe channels when it was trained
        with them, else the inference-time methods (see docs/benchmarks.md for how they compare)."""
        return (["keyframe"] if self.config.keyframe_dim else []) + list(INPAINTING_METHODS)

    def generate(self, request: MotionRequest, progress=None, cancelled=None) -> MotionResult:
        """One window of the model (`generate_long` chains them)."""
        prompt = self._validate(request)
        if request.keys is not None:
            request = replace(request, keys=on_reference_skeleton(request.keys))
        return self._sample(request, prompt, progress, cancelled)

    def _sample(self, request: MotionRequest, prompt: str, progress, cancelled) -> MotionResult:
        """One validated window whose keys are on the reference skeleton. A prompt naming the side our models do not
        tell apart is sampled as its mirror image (`samples_mirrored`)."""
        if self.samples_mirrored(prompt):
            keys = None if request.keys is None else keyframes.mirrored(request.keys)
            result = self._sample(replace(request, keys=keys), captions.mirror_caption(prompt), progress, cancelled)
            joints = features.mirror_joints(result.joints)
            read_as = result.meta["prompt_read_as"]
            meta = {**result.meta, "prompt": prompt, "sampled_mirrored": True,
                    "prompt_read_as": read_as and captions.mirror_caption(read_as)}
            return MotionResult(joints, clip_features(joints).astype(np.float32), meta)
        began = time.perf_counter()
        text_embed, reading = self.read_prompt(prompt, request.literal_prompt)
        method = self._inbetween_method(request)
        floor = 0.0  # the height the keys are lowered by for sampling, and the result raised by
        if request.keys is not None:
            floor = floor_under_first_key(request.keys)
            request = replace(request, keys=raised(request.keys, -floor))
        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        schedule = make_schedule(self.config.diffusion_steps, self.config.noise_schedule,
                                 str(request.steps) if request.steps else "")
        denoise = self._denoiser(prompt, text_embed, request, schedule, method)
        shape = (request.samples, self.config.njoints, self.config.nfeats, request.frames)
        x_T = torch.randn(shape, generator=generator).to(self.device)
        noise = gaussian_noise(generator)
        if method == "repaint":
            known, keep = self._known_features(request)
            x0 = sample_repaint(denoise, schedule, x_T, known, keep, noise, progress=progress, cancelled=cancelled)
        elif request.sampler == "ddim":
            x0 = sample_ddim(denoise, schedule, x_T, eta=0.0, progress=progress, cancelled=cancelled)
        else:
            x0 = sample_ddpm(denoise, schedule, x_T, noise, progress=progress, cancelled=cancelled)
        feats = denormalize(x0.double(), self.loaded.mean, self.loaded.std).cpu().numpy()  # (S, T, 263)
        if request.keys is not None and request.hold_root and request.keys.frames[0] == 0:
            # Re-anchor the root velocities so the features themselves pass through the keyed roots.
            feats = anchor_root(torch.from_numpy(feats), self._local_keys(request.keys)).numpy()
        joints = features.features_to_joints(feats)  # (S, T, 22, 3), the clip's own frame
        unsnapped_error = None
        if request.keys is not None:
            # How close the sampler itself came (after a rigid fit), before the exact placement.
            unsnapped_error = [keyframes.keyframe_error(keyframes.align_to_keys(j, request.keys), request.keys)
                               for j in joints]
            joints = np.stack([keyframes.place_on_keys(j, request.keys, request.hold_root) for j in joints])
        if request.plant_feet:
            keyed = () if request.keys is None else request.keys.frames
            joints = planting.keep_feet_planted(joints, feats, keyed)
            if planting.root_path_start(keyed, request.frames) is not None:
                feats = clip_features(joints)  # where the root's path moved: the features of what is returned
        joints[..., 1] += floor  # the features stay on the model's floor, as they stay in its heading frame
        meta = {"prompt": prompt, **reading, "action": request.action, "seed": request.seed,
                "guidance": request.guidance, "sampler": "repaint" if method == "repaint" else request.sampler,
                "steps": schedule.num_steps, "frames": request.frames, "fps": self.loaded.frames["fps"],
                "device": str(self.device), "inbetween_method": method, "plant_feet": request.plant_feet,
                "keyframe_error_unsnapped": unsnapped_error, "seconds_taken": round(time.perf_counter() - began, 3)}
        return MotionResult(joints.astype(np.float32), feats.astype(np.float32), meta)

    def longest_frames(self) -> int:
        """The longest clip `generate_long` makes: MAX_CHAIN_WINDOWS windows' worth of new frames."""
        return MAX_CHAIN_WINDOWS * (self.loaded.frames["max_frames"] - CHAIN_OVERLAP) + CHAIN_OVERLAP

    def generate_long(self, request: MotionRequest, progress=None, cancelled=None) -> MotionResult:
        """Any length up to MAX_CHAIN_WINDOWS windows' worth, keyed or not: a clip longer than the model's window
        is sampled as a chain (`chain_windows`). Each window after the first is keyed on its sample's last
        CHAIN_OVERLAP frames so far and on the user's keys it reaches (`piece_keys`), and contributes the frames
        after them; one request per sample from the second window on, since every sample continues its own
        motion."""
        window, min_frames, fps = (self.loaded.frames[k] for k in ("max_frames", "min_frames", "fps"))
        if request.frames <= window:
            return self.generate(request, progress, cancelled)
        longest = self.longest_frames()
        if request.frames > longest:
            raise UserError(f"length {request.frames} frames ({request.frames / fps:.1f} s) is too long: chained "
                            f"generation reaches {longest} frames ({longest / fps:.1f} s)")
        keys = None
        if request.keys is not None:  # refused as `generate` refuses, before the keys are worked on
            self._validate(replace(request, frames=window), check_keys=False)
            check_keys_fit(request.keys, request.frames)
            keys = on_reference_skeleton(request.keys)  # once for the whole clip: every window keeps its scale
        key_frames = [] if keys is None else keys.frames
        pieces = chain_windows(key_frames, request.frames, window, CHAIN_OVERLAP, min_frames, fps)
        runs = 1 + (len(pieces) - 1) * request.samples
        report = lambda run: progress and (lambda done, total: progress(run * total + done, runs * total))
        empty = np.zeros((0, skeleton.NUM_JOINTS, 3))
        first = self._piece(request, piece_keys(empty, keys, pieces[0]), pieces[0], report(0), cancelled)
        motions = [joints[:pieces[0].keep_to + 1] for joints in first.joints]
        unsnapped = [[error] for error in first.meta["keyframe_error_unsnapped"] or []]
        for index, piece in enumerate(pieces[1:], 1):
            for s, motion in enumerate(motions):
                window_keys = piece_keys(motion, keys, piece)
                result = self._piece(replace(request, samples=1, seed=request.seed + index * MAX_SAMPLES + s,
                                             hold_root=True), window_keys, piece,
                                     report(1 + (index - 1) * request.samples + s), cancelled)
                made = len(motion) - piece.start  # the window's first frames, which sit on the motion so far
                sampled = result.joints[0][:piece.keep_to - piece.start + 1]
                keyed_ahead = len(window_keys.frames) > made
                motions[s] = np.concatenate([motion, sampled[made:] if keyed_ahead
                                             else _continuation(motion, sampled, made)])
                if unsnapped:
                    unsnapped[s].extend(result.meta["keyframe_error_unsnapped"])
        joints = np.stack([m[:request.frames] for m in motions]).astype(np.float32)  # (S, T, 22, 3)
        feats = clip_features(joints)  # the windows' own features are each relative to their window
        meta = {**first.meta, "frames": request.frames, "windows": len(pieces), "chain_overlap": CHAIN_OVERLAP,
                "keyframe_error_unsnapped": [float(np.mean(e)) for e in unsnapped] if unsnapped else None}
        return MotionResult(joints, feats.astype(np.float32), meta)

    def _piece(self, request: MotionRequest, keys, piece: ChainWindow, progress, cancelled) -> MotionResult:
        """One window of a chain: frames piece.start..piece.stop, keyed on `keys` (on the reference skeleton)."""
        window = replace(request, frames=piece.stop - piece.start + 1, keys=keys)
        return self._sample(window, self._validate(window, check_keys=False), progress, cancelled)

    def _inbetween_method(self, request: MotionRequest):
        if request.keys is None:
            return None
        methods = self.inbetween_methods()
        method = methods[0] if request.inbetween_method == "auto" else request.inbetween_method
        if method not in methods + [BASELINE_METHOD]:
            raise UserError(f"unknown in-betweening method {method!r} for this model; use one of {methods}")
        return method

    def _denoiser(self, prompt, text_embed, request, schedule, method):
        """The network as a denoiser with guidance and, for the inference-time methods, the keyframe edits."""
        cond = self._condition(prompt, text_embed, request, keyed=method == "keyframe")
        # An unprompted text model (an in-between with no prompt) is unconditioned in both halves of the guidance
        # batch, so guidance would only run the same forward twice.
        unprompted = self.config.cond_mode == "text" and not prompt
        guided = (self.config.cond_mode != "no_cond" and self.config.cond_mask_prob > 0 and request.guidance != 1
                  and not unprompted)
        denoise = model_denoiser(self.loaded.model, cond, schedule,
                                 guidance_scale=request.guidance if guided else None)
        if method == "x0_replace":
            return replace_x0(denoise, *self._known_features(request))
        if method == "guidance":
            return reconstruction_guidance(denoise, schedule, self._local_keys(request.keys), self.loaded.mean,
                                           self.loaded.std, weight=RECONSTRUCTION_GUIDANCE_WEIGHT)
        return denoise

    @staticmethod
    def _local_keys(keys: keyframes.Keyframes) -> keyframes.Keyframes:
        """Keys in the clip's own frame (the first key's heading frame: pelvis at the XZ origin, facing +Z)."""
        origin, yaw = keyframes.heading(keys.joints[0])
        return keyframes.Keyframes(keys.frames, keyframes.to_heading_frame(keys.joints, origin, yaw), keys.joint_mask)

    def _known_features(self, request):
        """(known, keep) in network space for the feature-space inpainting methods."""
        known, keep = keyframe_inpainting(self._local_keys(request.keys), request.frames, self.loaded.mean,
                                          self.loaded.std, batch=request.samples)
        return known.to(self.device), keep.to(self.device)

    def _validate(self, request: MotionRequest, check_keys=True) -> str:
        """Check the request against the model; return the prompt to encode ('' for unconditioned models)."""
        frames = self.loaded.frames
        if not frames["min_frames"] <= request.frames <= frames["max_frames"]:
            fps = frames["fps"]
            raise UserError(f"length {request.frames} frames ({request.frames / fps:.2f} s) is outside this model's "
                            f"range of {frames['min_frames']}-{frames['max_frames']} frames "
                            f"({frames['min_frames'] / fps:.1f}-{frames['max_frames'] / fps:.1f} s)")
        if not 1 <= request.samples <= MAX_SAMPLES:
            raise UserError(f"samples must be between 1 and {MAX_SAMPLES}, got {request.samples}")
        if request.sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {request.sampler!r}: use one of {SAMPLERS}")
        if request.steps and not 1 <= request.steps <= self.config.diffusion_steps:
            raise UserError(f"steps must be between 1 and the model's {self.config.diffusion_steps}")
        if request.keys is not None and check_keys:
            check_keys_fit(request.keys, request.frames)
        self._inbetween_method(request)  # an unknown method is refused before the keys are worked on
        prompt = request.text.strip()
        if request.action:
            if request.action not in self.actions:
                raise UserError(f"unknown action {request.action!r}; this model knows: {', '.join(self.actions)}")
            prompt = prompt or self.action_prompts.get(request.action, "")
        if self.config.cond_mode == "text" and not prompt and request.keys is None:
            raise UserError("this model is text-conditioned: type a prompt (or pick an action)")
        return prompt

    def _condition(self, prompt: str, text_embed, request: MotionRequest, keyed: bool) -> dict:
        """The model's cond dict for S samples; the prompt's [1, D] `text_embed` is shared by every sample."""
        c, S = self.config, request.samples
        cond = {}
        if c.cond_mode == "text":
            cond["text_embed"] = text_embed.expand(S, -1)  # [S, D]
            cond["uncond"] = torch.full((S,), not prompt, device=self.device)  # no prompt: unconditioned rows
        elif c.cond_mode == "action":
            cond["action"] = torch.full((S,), c.action_names.index(request.action), device=self.device)
        if c.mask_frames:
            cond["frame_mask"] = torch.ones(S, request.frames, dtype=torch.bool, device=self.device)
        if c.keyframe_dim:
            if keyed:
                values, mask = keyframes.encode(request.keys, request.frames, self.loaded.mean, self.loaded.std,
                                                c.keyframe_heading)
            else:
                values = np.zeros((request.frames, c.keyframe_dim), np.float32)
                mask = np.zeros((request.frames, c.keyframe_dim), bool)
            as_motion = lambda a: torch.from_numpy(a).T[None, :, None, :].expand(S, -1, -1, -1).to(self.device)
            cond["keyframe_values"], cond["keyframe_mask"] = as_motion(values), as_motion(mask)
        return cond

    def samples_mirrored(self, prompt: str) -> bool:
        """Whether `prompt` is sampled as its left/right mirror image, the result mirrored back: a prompt that names
        only the right side, on a model trained by our own command (it ships its captions). Sentence embeddings
        hardly tell "left" from "right" (cosine 0.95-0.98), so such a model answers both sides with one motion,
        and the embedded one with the left side's (docs/benchmarks.md); its data holds each clip mirrored, so the
        mirrored request is as likely as the asked one. Official models read CLIP and are sampled as given."""
        return self.loaded.vocabulary is not None and captions.sides_named(prompt) == {"right"}

    def read_prompt(self, prompt: str, literal=False) -> tuple[torch.Tensor | None, dict]:
        """The [1, D] text condition of `prompt` (None for models without text) and how it was read. A model that
        ships the captions it was trained on (`LoadedModel.vocabulary`) is conditioned on the one nearest to the
        prompt: it learned motion at those few hundred points of the embedding space only, and a paraphrase that
        falls between them lands where it learned little (docs/benchmarks.md measures both readings). `literal`
        conditions on the prompt's own embedding."""
        reading = {"prompt_read_as": None, "prompt_similarity": None}
        if self.config.cond_mode != "text":
            return None, reading
        embedding, vocabulary = self.encode_text(prompt), self.loaded.vocabulary
        if literal or vocabulary is None or not prompt:
            return embedding, reading
        index, similarity = vocabulary.nearest(prompt, embedding)
        return (vocabulary.embeddings[index:index + 1].to(self.device),
                {"prompt_read_as": vocabulary.sentences[index], "prompt_similarity": round(similarity, 3)})

    def encode_text(self, prompt: str) -> torch.Tensor:
        """[1, D] embedding of one prompt (zeros for an empty prompt, which is then run unconditioned)."""
        if not prompt:
            return torch.zeros(1, self.config.cond_dim, device=self.device)
        if self._text_encoder is None:
            from .text import load_text_encoder

            self._text_encoder = load_text_encoder(self.config, self.device, clip_path=self._clip_path)
        return self._text_encoder.encode([prompt]).to(self.device, torch.float32)
