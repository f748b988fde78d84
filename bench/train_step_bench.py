"""One training step of the embedded model's config with ByteDropout (what ships) against nn.Dropout, side by side.

    .venv/bin/python bench/train_step_bench.py [--config configs/embedded.json] [--steps 12] [--rounds 3]

Both models start from the same weights and train on the same prepared batches (`train.make_batch` of the
config's data folder, so run `prepare-data` first); the rounds alternate between them, so a drift in the host's
speed touches both. Prints the median seconds of forward + backward + optimizer step and their ratio. Batch
sampling (`make_batch`, the same for both) is timed apart.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import losses  # noqa: E402
from backend.data import TrainingSet  # noqa: E402
from backend.diffusion import make_schedule, q_sample  # noqa: E402
from backend.model import MDM, ByteDropout, MDMConfig  # noqa: E402
from backend.train import TrainConfig, make_batch  # noqa: E402


def with_torch_dropout(model):
    """The same network with every ByteDropout swapped back for nn.Dropout (the code before ByteDropout)."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, ByteDropout):
                setattr(module, name, torch.nn.Dropout(child.p))
    return model


def step_seconds(model, optimizer, schedule, batch, seed):
    x0, cond = batch
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t = torch.randint(0, schedule.num_steps, (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    began = time.perf_counter()
    x0_hat = model(q_sample(schedule, x0, t, noise), schedule.timestep_map[t], cond)
    loss = losses.x0_mse(x0_hat, x0, cond["frame_mask"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "embedded.json"))
    parser.add_argument("--steps", type=int, default=12, help="steps per model per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cfg = TrainConfig.load(args.config)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    data = TrainingSet(REPO / cfg.data_dir)
    mdm_cfg = MDMConfig(**{**data.model_defaults(), **cfg.model})
    schedule = make_schedule(mdm_cfg.diffusion_steps, mdm_cfg.noise_schedule)
    probabilities = data.probabilities(cfg.category_power)
    began = time.perf_counter()
    batches = [make_batch(data, cfg, mdm_cfg, np.random.default_rng(s), probabilities) for s in range(args.steps)]
    batch_s = (time.perf_counter() - began) / args.steps
    models = {}
    for name in ("ByteDropout", "nn.Dropout"):
        torch.manual_seed(cfg.seed)
        model = MDM(mdm_cfg).train()
        model = with_torch_dropout(model) if name == "nn.Dropout" else model
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
    times = {name: [] for name in models}
    for name, (model, optimizer) in models.items():  # warm-up: allocator and kernels
        step_seconds(model, optimizer, schedule, batches[0], 0)
    for _ in range(args.rounds):
        for name, (model, optimizer) in models.items():
            times[name] += [step_seconds(model, optimizer, schedule, b, s) for s, b in enumerate(batches)]
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{mdm_cfg.latent_dim}-wide, {mdm_cfg.num_layers} layers, batch {cfg.batch_size}, "
          f"{torch.get_num_threads()} threads; {args.rounds} rounds x {args.steps} steps each")
    for name, seconds in median.items():
        print(f"  {name:<12} {seconds:.3f} s/step (forward + backward + AdamW, median)")
    print(f"  make_batch   {batch_s:.3f} s/step (the same for both)")
    print(f"  nn.Dropout / ByteDropout: {median['nn.Dropout'] / median['ByteDropout']:.2f}x")


if __name__ == "__main__":
    main()
