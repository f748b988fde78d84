"""A small motion classifier (1D convolutions over canonical joints) that scores generated motions for adherence.

metrics.md, "Condition adherence": without HumanML3D's evaluators, a classifier trained on the project's own
labelled real and procedural clips (never on generated ones) tells which category a generated motion shows.
Inputs are per-window canonical motions (`features.canonicalize`: reference skeleton, floor at 0, first frame at
the origin facing +Z), so the classifier sees what the model was trained on, whatever skeleton the source had.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from . import features, procedural, skeleton
from .errors import UserError

# Training crop in frames: 1 s, as the CMU run clips are only 22-29 frames at 20 fps. A prediction averages the
# crops of a longer motion, so it sees what training saw.
WINDOW = skeleton.FPS
PREDICT_STRIDE = 5  # frames between the crops a prediction averages over
CHANNELS = 2 * skeleton.NUM_JOINTS * 3  # root-relative positions + velocities of every joint, per frame


def motion_channels(joints):
    """(T, 22, 3) canonical joints -> (C, T-1) float32: positions relative to the root, and velocities (m/frame).

    Positions are relative to the root in height too, so uneven ground or a floor estimated off a step does not
    change the pose; the root's own height change stays in its velocity. Positions are taken at frames 0..T-2 so
    both blocks describe the same T-1 transitions.
    """
    relative = joints - joints[:, :1]
    velocity = np.diff(joints, axis=0)
    return np.concatenate([relative[:-1], velocity], axis=1).reshape(len(joints) - 1, CHANNELS).T.astype(np.float32)


class MotionClassifier(nn.Module):
    """Three 1D convolutions (two strided), mean over time, a linear head: about 85k parameters."""

    def __init__(self, categories, width=64):
        super().__init__()
        self.categories = tuple(categories)
        self.net = nn.Sequential(
            nn.Conv1d(CHANNELS, width, 5, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, padding=2, stride=2), nn.GELU(),
            nn.Conv1d(width, width, 5, padding=2, stride=2), nn.GELU(),
        )
        self.head = nn.Linear(width, len(self.categories))
        # Per-channel statistics of the training windows, so the classifier can take raw motion channels.
        self.register_buffer("mean", torch.zeros(CHANNELS, 1))
        self.register_buffer("std", torch.ones(CHANNELS, 1))

    def forward(self, x):  # x: [B, C, T]
        h = self.net((x - self.mean) / self.std)  # [B, width, ~T/4]
        return self.head(h.mean(dim=-1))  # [B, categories]

    @torch.no_grad()
    def predict(self, motions, stride=PREDICT_STRIDE) -> list:
        """Category of each (T, 22, 3) motion (any placement, length >= 2): the mean of the class probabilities
        of its WINDOW-frame crops every `stride` frames, each canonicalised as the training crops are (a motion
        shorter than WINDOW is one crop)."""
        self.eval()
        labels = []
        for joints in motions:
            starts = range(0, max(1, len(joints) - WINDOW + 1), stride)
            x = torch.from_numpy(np.stack([motion_channels(features.canonicalize(joints[s:s + WINDOW]))
                                           for s in starts]))  # [crops, C, WINDOW-1]
            probabilities = torch.softmax(self(x.to(self.mean.device)), dim=-1).mean(dim=0)  # [categories]
            labels.append(self.categories[int(probabilities.argmax())])
        return labels


@dataclass
class LabelledClips:
    """Whole clips (T, 22, 3) with their category; the classifier is trained on crops of them. `acting` holds, per
    clip, the (T,) frames that show the category's action, or None when the whole clip does (real clips)."""

    joints: list
    categories: list
    acting: list


# A procedural crop shows its clip's action when at least this share of its frames do; one with no acting frame is
# someone standing, an idle crop; one in between is ambiguous and not used.
ACTING_SHARE = 0.5
STANDING_CATEGORY = "idle"


def procedural_clips(per_category, max_frames, rng: np.random.Generator) -> LabelledClips:
    """`per_category` procedural clips of every procedural category (their generators' names are categories)."""
    clips = LabelledClips([], [], [])
    for category in procedural.GENERATORS:
        for _ in range(per_category):
            clip = procedural.generate(category, rng, max_frames)
            clips.joints.append(clip.joints)
            clips.categories.append(category)
            clips.acting.append(clip.acting)
    return clips


def crop_label(category, acting):
    """The category a crop teaches, from its frames' `acting` flags (None: all acting); None = leave it out.

    Procedural crouch, sit, turn and wave clips start and end standing still; labelled with their clip's category,
    those crops would teach that standing still is crouching."""
    share = 1.0 if acting is None else float(np.mean(acting))
    if share >= ACTING_SHARE:
        return category
    return STANDING_CATEGORY if share == 0 else None


def crops(clips: LabelledClips, stride, window=WINDOW):
    """(x (N, C, window-1) float32, y (N,) int, categories): canonical crops every `stride` frames labelled by
    `crop_label`, each also mirrored left/right (the categories do not depend on the side); clips shorter than
    `window` give none, so `categories` lists only the categories that have crops."""
    xs, labels = [], []
    for joints, category, acting in zip(clips.joints, clips.categories, clips.acting):
        for start in range(0, len(joints) - window + 1, stride):
            label = crop_label(category, None if acting is None else acting[start:start + window])
            if label is None:
                continue
            crop = joints[start:start + window]
            for version in (crop, features.mirror_joints(crop)):
                xs.append(motion_channels(features.canonicalize(version)))
                labels.append(label)
    if not xs:
        raise UserError(f"no classifier training clip is at least {window} frames long")
    categories = sorted(set(labels))
    return np.stack(xs), np.array([categories.index(c) for c in labels]), categories


def train_classifier(clips: LabelledClips, generator: torch.Generator, steps=400, batch_size=64, stride=10,
                     lr=2e-3, device="cpu") -> MotionClassifier:
    """Fit a MotionClassifier on crops of `clips`; batches are drawn class-balanced, so a category with one long
    clip counts as much as one with twenty. Deterministic for a generator seed."""
    x, y, categories = crops(clips, stride)
    threads = torch.get_num_threads()
    # Convolutions this small gain nothing from threads, and on a busy CPU extra threads cost 10x: one thread.
    torch.set_num_threads(1)
    try:
        return _fit(x, y, categories, generator, steps, batch_size, lr, device)
    finally:
        torch.set_num_threads(threads)


def _fit(x, y, categories, generator, steps, batch_size, lr, device):
    with torch.random.fork_rng(devices=[]):  # weight init from the generator's seed, not the global RNG
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=generator)))
        model = MotionClassifier(categories)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model.mean.copy_(x.mean(dim=(0, 2))[:, None])
    model.std.copy_(x.std(dim=(0, 2))[:, None].clamp_min(1e-4))
    model.to(device).train()
    weights = (1.0 / torch.bincount(y, minlength=len(categories)).double())[y]  # class-balanced sampling
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    for _ in range(steps):
        batch = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        loss = nn.functional.cross_entropy(model(x[batch].to(device)), y[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()
