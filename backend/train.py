"""`python -m backend train --config CONFIG.json`: train an MDM denoiser on prepared data (see `backend/data.py`).

The loss is MDM's x0 MSE, plus optionally its foot-contact term (`backend.losses`). AdamW with warm-up and cosine
decay, gradient clipping, an EMA copy of the weights (what ships), a tqdm bar with the loss, periodic resumable
checkpoints and a fixed seed. Every step's randomness (batch, noise, timesteps, condition dropout, keyframe
patterns, dropout) is derived from (seed, rank, step), so a resumed run continues bit for bit where it stopped.
The same command runs data-parallel under `torchrun` (gloo on CPU, NCCL on GPUs).
Never imported by the runtime path.
"""
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import keyframes, losses, skeleton
from .checkpoints import read_torch_file, save_folder
from .data import TrainingSet
from .diffusion import make_schedule, q_sample
from .errors import UserError, check_field_types
from .files import atomic_output
from .model import MDM, MDMConfig


@dataclass
class TrainConfig:
    data_dir: str
    out_dir: str
    model: dict = field(default_factory=dict)  # MDMConfig overrides
    steps: int = 6000
    batch_size: int = 64  # per process
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05  # the cosine decays to this fraction of lr
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    keyframe_training: bool = True  # sample CondMDI-style keyframe patterns (keyframes.TRAINING_PATTERNS)
    # False: windows of looped takes (prepare-data --loop-runs) never get keys. Their laps are stitched copies of one
    # stride, so keyed they would teach an in-between the loop's regularity instead of how a take moves.
    key_looped_windows: bool = True
    # Each window's text condition is a random blend of two of its paraphrases (renormalised): the space between
    # captions of one motion is taught to mean that motion, not only the captions' own points (`TrainingSet`).
    paraphrase_mixing: bool = False
    category_power: float = 1.0  # each category's share of the batches ~ its duration ** this (TrainingSet)
    crop_jitter: int = 0  # move each drawn window's start by up to this many frames (Dataset.random_shifts)
    # Weight of `losses.foot_contact` beside the x0 MSE (0 = MDM's plain loss), times each window's alpha_bar_t:
    # where noise hides when the feet are down, matching the data's steps would teach feet that never move.
    foot_contact_weight: float = 0.0
    bone_length_weight: float = 0.0  # weight of `losses.bone_length`, times alpha_bar_t like the foot term
    seed: int = 0
    checkpoint_every: int = 500
    threads: int = 0  # torch intra-op threads; 0 = torch's default

    def __post_init__(self):
        bad = [f"{name} {getattr(self, name)} (must be {rule})" for name, ok, rule in (
            ("steps", self.steps >= 1, ">= 1"), ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"), ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in [0, 1]"), ("grad_clip", self.grad_clip > 0, "> 0"),
            ("ema_decay", 0 <= self.ema_decay < 1, "in [0, 1)"), ("category_power", self.category_power >= 0, ">= 0"),
            ("foot_contact_weight", self.foot_contact_weight >= 0, ">= 0"),
            ("bone_length_weight", self.bone_length_weight >= 0, ">= 0"),
            ("crop_jitter", self.crop_jitter >= 0, ">= 0"),
            ("checkpoint_every", self.checkpoint_every >= 1, ">= 1"), ("threads", self.threads >= 0, ">= 0"),
        ) if not ok]
        if bad:
            raise UserError(f"bad training config: {'; '.join(bad)}")

    @classmethod
    def load(cls, path, **overrides):
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read training config {path}: {err}") from err
        if not isinstance(data, dict):
            raise UserError(f"training config {path} must be a JSON object, got a {type(data).__name__}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(f"training config {path} has unknown keys {unknown}")
        missing = [name for name in ("data_dir", "out_dir") if name not in data]
        if missing:
            raise UserError(f"training config {path} lacks {missing}")
        check_field_types(data, cls, f"training config {path}")
        return cls(**data)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr_ratio * cfg.lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def step_seed(cfg: TrainConfig, rank: int, step: int) -> int:
    return (cfg.seed * 1_000_003 + rank * 7_919 + step) % (2**63)


def make_batch(data: TrainingSet, cfg: TrainConfig, mdm_cfg: MDMConfig, rng: np.random.Generator, probabilities):
    """Sample a batch: normalised features [B, 263, 1, F], valid-frame mask, text embeddings, keyframe channels;
    windows are drawn with `probabilities` (`TrainingSet.probabilities`)."""
    idx = rng.choice(len(data), size=cfg.batch_size, p=probabilities)
    # (no draw at all without jitter, so a config without it samples the batches it always did)
    shifts = data.dataset.random_shifts(idx, cfg.crop_jitter, rng) if cfg.crop_jitter else np.zeros_like(idx)
    windows = [data.window(i, s) for i, s in zip(idx, shifts)]  # each (L_i, 263), normalised
    frames = max(len(w) for w in windows)
    x0 = np.zeros((cfg.batch_size, frames, mdm_cfg.njoints), dtype=np.float32)
    valid = np.zeros((cfg.batch_size, frames), dtype=bool)
    key_values = np.zeros((cfg.batch_size, frames, keyframes.KEY_DIM), dtype=np.float32)
    key_mask = np.zeros_like(key_values, dtype=bool)
    for b, (i, shift, w) in enumerate(zip(idx, shifts, windows)):
        x0[b, : len(w)], valid[b, : len(w)] = w, True
        keyed = cfg.keyframe_training and (cfg.key_looped_windows or not data.dataset.looped[i])
        pattern = keyframes.sample_training_pattern(len(w), rng) if keyed else None
        if pattern is not None:
            keys = keyframes.Keyframes(pattern[0], data.joints(i, shift)[pattern[0]], pattern[1])
            encoded = keyframes.encode(keys, len(w), data.mean, data.std, mdm_cfg.keyframe_heading)
            key_values[b, : len(w)], key_mask[b, : len(w)] = encoded
    text = data.caption_embeddings(idx, rng)  # [B, D], one random paraphrase per window
    as_motion = lambda a: torch.from_numpy(a).permute(0, 2, 1).unsqueeze(2)  # [B, F, C] -> [B, C, 1, F]
    uncond = rng.random(cfg.batch_size) < mdm_cfg.cond_mask_prob
    if cfg.paraphrase_mixing:  # drawn last: the batch is otherwise the one an unmixed config draws
        text = data.blend_paraphrases(idx, text, rng)
    cond = {"text_embed": torch.from_numpy(text), "frame_mask": torch.from_numpy(valid),
            "uncond": torch.from_numpy(uncond)}
    if mdm_cfg.keyframe_dim:
        cond["keyframe_values"], cond["keyframe_mask"] = as_motion(key_values), as_motion(key_mask)
    return as_motion(x0), cond


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers.

    The decay warms up as min(decay, (1 + step) / (10 + step)), so the average forgets the random initialisation
    within the first few hundred steps instead of carrying a (decay ** step) share of it.
    """

    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, step):
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - decay)
            else:
                self.shadow[k].copy_(v)


def _distributed():
    """(rank, world_size, device): torchrun sets RANK/WORLD_SIZE; NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def train(cfg: TrainConfig, stop_after=None, log=print):
    """Run (or resume) training; write `out_dir/train_state.pt` periodically and the EMA model folder at the end.

    `stop_after` ends this run after that many steps (a time-boxed job), with a resumable state saved; it is not
    part of the config, so the next run resumes exactly where this one stopped.
    """
    if stop_after is not None and stop_after < 1:
        raise UserError(f"--stop-after must be at least 1 step, got {stop_after}")
    rank, world, device = _distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    data = TrainingSet(cfg.data_dir)
    mdm_cfg = MDMConfig.from_dict({**data.model_defaults(), **cfg.model})
    schedule = make_schedule(mdm_cfg.diffusion_steps, mdm_cfg.noise_schedule)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = MDM(mdm_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    start, elapsed = 0, 0.0
    state_path = out / "train_state.pt"
    if state_path.exists():
        state = read_torch_file(state_path, device)
        if not RESUME_KEYS <= set(state):
            raise UserError(f"{state_path} is not a training state (it lacks {sorted(RESUME_KEYS - set(state))}); "
                            "move it away to start afresh")
        if state["config"] != asdict(cfg):
            raise UserError(f"{state_path} was written with another training config; use a new out_dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.shadow = state["ema"]
        start, elapsed = state["step"], state["elapsed_s"]
        log(f"resumed from step {start}")
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    probabilities = data.probabilities(cfg.category_power)
    # Feature Mean/Std, and the typical joint step (the velocity block's Std, m/frame) the joint terms are scaled by.
    stats = (torch.from_numpy(data.mean).to(device), torch.from_numpy(data.std).to(device),
             float(data.std[skeleton.VEL].mean()))
    joint_terms = [(weight, term) for weight, term in ((cfg.foot_contact_weight, losses.foot_contact),
                                                       (cfg.bone_length_weight, losses.bone_length)) if weight]

    from tqdm import tqdm

    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=rank != 0, dynamic_ncols=True)
    began = time.perf_counter()
    for step in bar:
        seed = step_seed(cfg, rank, step)
        rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout
        x0, cond = make_batch(data, cfg, mdm_cfg, rng, probabilities)
        x0, cond = x0.to(device), {k: v.to(device) for k, v in cond.items()}
        t = torch.randint(0, schedule.num_steps, (len(x0),), generator=gen).to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        x0_hat = net(q_sample(schedule, x0, t, noise), schedule.timestep_map.to(device)[t], cond)
        loss = losses.x0_mse(x0_hat, x0, cond["frame_mask"])
        signal = schedule.alpha_bar.to(device)[t].to(x0.dtype)  # [B]
        for weight, term in joint_terms:
            loss = loss + weight * term(x0_hat, x0, cond["frame_mask"], *stats, sample_weight=signal)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        ema.update(model, step)
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{learning_rate(cfg, step):.1e}")
        done = step + 1
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end):
            _save_state(state_path, model, optimizer, ema, done, elapsed + time.perf_counter() - began, cfg)
    elapsed += time.perf_counter() - began
    if end < cfg.steps:
        log(f"stopped at step {end} of {cfg.steps}; run the same command again to resume")
    elif rank == 0:
        final = MDM(mdm_cfg)
        final.load_state_dict(ema.shadow)
        meta = {"training": {"config": asdict(cfg), "steps": cfg.steps, "world_size": world,
                             "wall_time_s": round(elapsed, 1)}, **data.meta()}
        save_folder(out / "model", final, mdm_cfg, data.mean, data.std, meta, data.vocabulary())
        log(f"trained {cfg.steps} steps in {elapsed / 60:.1f} min -> {out / 'model'}")
    if world > 1:
        dist.destroy_process_group()
    return out / "model"


RESUME_KEYS = {"model", "optimizer", "ema", "step", "elapsed_s", "config"}  # what `_save_state` writes


def _save_state(path, model, optimizer, ema, step, elapsed, cfg):
    """Everything resume needs, written atomically (tensors and plain data only: loads with weights_only)."""
    # Through an open file: given a path, torch.save names the archive's records after the (random) temporary file.
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.shadow,
                    "step": step, "elapsed_s": elapsed, "config": asdict(cfg)}, f)
