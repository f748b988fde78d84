"""How far below linear interpolation can an in-betweener trained on our data get? A deterministic check.

    .venv/bin/python bench/inbetween_ceiling_bench.py [--steps 3000] [--data ../shared/mocap/cmu]

The L2P rewards the middle of what could happen between the keys: a predictor trained on the L2P itself aims at
the best score any in-betweener can reach, and a diffusion sample scores worse by its spread about that middle.
This trains the plainest such predictor on the embedded model's training clips (`data.training_rows`, mirrored):
a dilated temporal convolution net (2.7 M parameters, receptive field +-62 frames, so it sees several keys on
either side) that takes the linear interpolation of the keys and predicts each joint's departure from it, trained
on the L2P itself over random windows (60-120 frames, canonicalised and turned to a random heading) keyed every 5,
10, 20 or 40 frames. It then scores `evaluate`'s in-betweening windows and keys, and windows of the training clips
it learned from, beside linear interpolation. About 17 minutes on a quiet 2-core CPU at the default steps.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import data, evaluate, features, skeleton  # noqa: E402
from backend.keyframes import KEY_GAPS, yaw_matrix  # noqa: E402
from backend.mocap import DEFAULT_MOCAP_DIR  # noqa: E402
from inbetween_samples_bench import l2p_root_pose  # noqa: E402

SHORTEST_CLIP = max(KEY_GAPS)  # frames; a shorter clip gives no window to score (room for one gap of the longest)


class DepartureNet(nn.Module):
    """(B, T, 22, 3) linear in-between + (B, T) key mask + gap -> (B, T, 22, 3) departure from the linear one."""

    def __init__(self, width=256, dilations=(1, 2, 4, 8, 16) * 2):
        super().__init__()
        self.inp = nn.Conv1d(skeleton.NUM_JOINTS * 3 + 2, width, 1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.GELU(), nn.Conv1d(width, width, 3, padding=d, dilation=d),
                                                  nn.GELU(), nn.Conv1d(width, width, 1)) for d in dilations)
        self.out = nn.Conv1d(width, skeleton.NUM_JOINTS * 3, 1)

    def forward(self, linear, key_mask, gap):
        # Positions about the linear root's ground point, so the net never sees where on the floor the clip is.
        ground = linear[:, :, :1] * torch.tensor([1.0, 0.0, 1.0])
        x = torch.cat([(linear - ground).flatten(2), key_mask[..., None],
                       torch.full_like(key_mask[..., None], gap / max(KEY_GAPS))], -1)  # (B, T, 68)
        h = self.inp(x.transpose(1, 2))  # (B, width, T)
        for block in self.blocks:
            h = h + block(h)
        departure = self.out(h).transpose(1, 2).reshape(linear.shape)  # (B, T, 22, 3)
        return linear + departure * (1 - key_mask)[..., None, None]  # the keys themselves stay exact


def keyed_batch(windows, gap):
    """(linear in-betweens, key masks) as float32 tensors for same-length windows keyed every `gap` frames."""
    keyed = evaluate.regular_keys(len(windows[0]), gap)
    mask = np.zeros(len(windows[0]), np.float32)
    mask[keyed] = 1
    linear = np.stack([evaluate.linear_inbetween(w, keyed) for w in windows])
    return torch.tensor(linear, dtype=torch.float32), torch.tensor(mask).expand(len(windows), -1)


def training_batch(clips, size, rng):
    """Random windows of one random length, canonicalised and turned to a random heading, and a random gap."""
    length, gap = int(rng.integers(60, 121)), int(rng.choice(KEY_GAPS))
    pool = [c for c in clips if len(c) >= length]
    windows = []
    for _ in range(size):
        clip = pool[rng.integers(len(pool))]
        start = rng.integers(0, len(clip) - length + 1)
        turn = yaw_matrix(rng.uniform(0, 2 * np.pi))
        windows.append(features.canonicalize(clip[start:start + length]) @ turn.T)
    return windows, gap


def train(clips, steps, rng, lr=5e-4, log_every=500):
    net = DepartureNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    started = time.perf_counter()
    for step in range(steps):
        scale = min(1.0, (step + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        windows, gap = training_batch(clips, 32, rng)
        linear, mask = keyed_batch(windows, gap)
        miss = (net(linear, mask, gap) - torch.tensor(np.stack(windows), dtype=torch.float32)).pow(2).sum(-1)
        between = (1 - mask)[..., None]
        loss = ((miss + 1e-8).sqrt() * between).sum() / (between.sum() * skeleton.NUM_JOINTS)  # the L2P
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step}: L2P {loss.item():.4f}, {time.perf_counter() - started:.0f} s", flush=True)
    return net.eval()


@torch.no_grad()
def score(net, windows, name):
    print(f"{name}: {len(windows)} windows; metres: L2P / root / pose about the root")
    for gap in KEY_GAPS:
        linear, learned = [], []
        for real in windows:
            keyed = evaluate.regular_keys(len(real), gap)
            lin, mask = keyed_batch([real], gap)
            linear.append(l2p_root_pose(lin[0].numpy(), real, keyed))
            learned.append(l2p_root_pose(net(lin, mask, gap)[0].double().numpy(), real, keyed))
        (ll, lr, lp), (nl, nr, npose) = np.mean(linear, axis=0), np.mean(learned, axis=0)
        print(f"  gap {gap:3d}: linear {ll:.4f} / {lr:.4f} / {lp:.4f}   learned {nl:.4f} / {nr:.4f} / {npose:.4f}"
              f"   linear / learned {ll / nl:.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_MOCAP_DIR))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the net's initial weights
    train_rows = data.training_rows(Path(args.data))
    joints = [data.load_joints(row)[0] for row in train_rows]
    clips = joints + [features.mirror_joints(j) for j in joints]
    print(f"{len(train_rows)} training clips, each also mirrored: {sum(map(len, clips))} frames")
    net = train(clips, args.steps, np.random.default_rng(args.seed))
    options = evaluate.EvalOptions(frames=data.Windowing().window)  # evaluate's windows for the embedded model
    held_out = evaluate.load_eval_clips(evaluate.read_eval_rows(args.data), print)
    seen = list(zip(train_rows, joints))
    for name, clips_to_score in (("eval windows (held out)", held_out), ("training windows (seen)", seen)):
        score(net, [w for _, w in evaluate.eval_windows(clips_to_score, options, SHORTEST_CLIP)], name)


if __name__ == "__main__":
    main()
