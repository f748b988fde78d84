"""Training: a real prepared subset, a tiny model, exact resume, and the torchrun (gloo) data-parallel path."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from backend.checkpoints import load_folder
from backend.keyframes import KEY_DIM
from conftest import MOCAP_DIR, REPO

TINY_MODEL = {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2, "diffusion_steps": 10}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "prepared"
    subprocess.run([sys.executable, "-m", "backend", "prepare-data", "--mocap", str(MOCAP_DIR), "--out", str(out),
                    "--limit", "2", "--window", "40", "--captions-per-window", "2"], cwd=REPO, check=True,
                   capture_output=True)
    return out


def _config(tmp_path, data_dir, name, **overrides):
    config = {"data_dir": str(data_dir), "out_dir": str(tmp_path / name), "model": TINY_MODEL, "steps": 4,
              "batch_size": 3, "warmup_steps": 2, "checkpoint_every": 2, "threads": 1, **overrides}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def _train(config, *extra, launcher=(sys.executable, "-m", "backend")):
    result = subprocess.run([*launcher, "train", "--config", str(config), *extra], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_resume_continues_bit_for_bit(tmp_path, data_dir):
    # With every optional training term on: tempered categories, the foot-contact and bone-length losses, random
    # crops and the input skip filter of the departure from the keys.
    straight = _config(tmp_path, data_dir, "straight", category_power=0.5, foot_contact_weight=0.1,
                       bone_length_weight=0.1, crop_jitter=10,
                       model={**TINY_MODEL, "input_skip_taps": 3, "input_skip_departure": True})
    _train(straight)
    resumed = _config(tmp_path, data_dir, "resumed")
    shutil.copy(straight, resumed)  # the same config, another out_dir
    config = json.loads(resumed.read_text())
    config["out_dir"] = str(tmp_path / "resumed")
    resumed.write_text(json.dumps(config))
    first = _train(resumed, "--stop-after", "2")
    assert "resume" in first.stdout and not (tmp_path / "resumed" / "model").exists()
    second = _train(resumed)
    assert "resumed from step 2" in second.stdout
    a = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["skip_taps.weight"].abs().max() > 0  # the filter starts at zero and learns


def test_the_trained_folder_describes_itself(tmp_path, data_dir):
    _train(_config(tmp_path, data_dir, "run", steps=2))
    document = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert document["config"]["keyframe_dim"] == KEY_DIM and document["config"]["text_encoder"] == "minilm"
    assert document["config"]["keyframe_heading"] == "smoothed"  # sampling must encode keys as training did
    meta = document["meta"]
    assert meta["training"]["steps"] == 2 and meta["action_prompts"]
    assert set(meta["action_prompts"]) == set(meta["categories"])
    # It ships every distinct training caption with the embedding it was trained on (prompts are read as them).
    vocabulary = load_folder(tmp_path / "run" / "model").vocabulary
    captions = np.unique(np.load(data_dir / "dataset.npz")["captions"])
    assert vocabulary.sentences == tuple(captions) and vocabulary.embeddings.shape == (len(captions), 384)
    assert np.array_equal(vocabulary.embeddings.numpy(), np.load(data_dir / "captions_minilm.npy"))


def test_resuming_with_another_config_is_refused(tmp_path, data_dir):
    config = _config(tmp_path, data_dir, "run", steps=2)
    _train(config)
    changed = json.loads(config.read_text())
    changed["lr"] = 1e-3
    config.write_text(json.dumps(changed))
    result = subprocess.run([sys.executable, "-m", "backend", "train", "--config", str(config)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "another training config" in result.stderr


def test_bad_config_values_are_named_and_nothing_is_written(tmp_path, data_dir):
    config = _config(tmp_path, data_dir, "bad", category_power=-0.5, foot_contact_weight=-0.1, ema_decay=1.0,
                     crop_jitter=-2, bone_length_weight=-1)
    result = subprocess.run([sys.executable, "-m", "backend", "train", "--config", str(config)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2
    for named in ("category_power -0.5", "foot_contact_weight -0.1", "ema_decay 1.0", "crop_jitter -2",
                  "bone_length_weight -1"):
        assert named in result.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("write, message", [
    (lambda path, config: path.write_text(json.dumps([config])), "must be a JSON object, got a list"),
    (lambda path, config: path.write_text(json.dumps({**config, "steps": "10"})), "'steps' must be int, got '10'"),
    (lambda path, config: path.write_text(json.dumps({k: v for k, v in config.items() if k != "data_dir"})),
     "lacks ['data_dir']"),
    (lambda path, config: path.write_text(json.dumps({**config, "model": {"layers": 2}})), "unknown keys ['layers']"),
    (lambda path, config: (Path(config["out_dir"]).mkdir(), (Path(config["out_dir"]) / "train_state.pt").write_bytes(
        b"")), "train_state.pt is not a readable PyTorch checkpoint"),
])
def test_an_unusable_config_or_state_is_named(tmp_path, data_dir, write, message):
    path = _config(tmp_path, data_dir, "run")
    write(path, json.loads(path.read_text()))
    result = subprocess.run([sys.executable, "-m", "backend", "train", "--config", str(path)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path, data_dir):
    config = _config(tmp_path, data_dir, "ddp", steps=2)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    _train(config, launcher=(torchrun, "--standalone", "--nproc_per_node", "2", "-m", "backend"))
    meta = json.loads((tmp_path / "ddp" / "model" / "config.json").read_text())["meta"]
    assert meta["training"]["world_size"] == 2


def test_looped_windows_can_be_left_unkeyed(tmp_path):
    """`key_looped_windows: false` gives the windows of looped takes no keys, and every other window its patterns."""
    import numpy as np
    from backend.data import TrainingSet
    from backend.model import MDMConfig
    from backend.train import TrainConfig, make_batch

    out = tmp_path / "prepared"
    subprocess.run([sys.executable, "-m", "backend", "prepare-data", "--mocap", str(MOCAP_DIR), "--out", str(out),
                    "--files", "przestr/09_02.bvh", "przestr/07_01.bvh", "--loop-runs", "--window", "40",
                    "--procedural-share", "0", "--captions-per-window", "1"], cwd=REPO, check=True,
                   capture_output=True)
    data = TrainingSet(out)
    assert data.dataset.looped.any() and not data.dataset.looped.all()
    mdm_cfg = MDMConfig(**{**data.model_defaults(), **TINY_MODEL})
    for key_looped, from_looped in ((False, True), (True, True), (False, False)):
        cfg = TrainConfig(str(out), str(tmp_path / "run"), batch_size=24, key_looped_windows=key_looped)
        drawn = data.dataset.looped == from_looped  # draw only looped windows, or only the others
        _, cond = make_batch(data, cfg, mdm_cfg, np.random.default_rng(0), drawn / drawn.sum())
        keyed = cond["keyframe_mask"].flatten(1).any(1)  # (B,) windows that got any key
        assert bool(keyed.any()) == (key_looped or not from_looped), (key_looped, from_looped)


def test_paraphrase_mixing_blends_each_windows_own_paraphrases(tmp_path, data_dir):
    """Mixed, each text row is a unit vector in the span of its window's paraphrase embeddings, and the rest of the
    batch is the one an unmixed config draws."""
    from backend.data import TrainingSet
    from backend.model import MDMConfig
    from backend.train import TrainConfig, make_batch

    data = TrainingSet(data_dir)
    mdm_cfg = MDMConfig(**{**data.model_defaults(), **TINY_MODEL})
    probabilities = data.probabilities()
    batches = [make_batch(data, TrainConfig(str(data_dir), str(tmp_path), batch_size=16, paraphrase_mixing=mixing),
                          mdm_cfg, np.random.default_rng(3), probabilities) for mixing in (False, True)]
    (x_plain, plain), (x_mixed, mixed) = batches
    assert torch.equal(x_plain, x_mixed)
    assert all(torch.equal(plain[k], mixed[k]) for k in plain if k != "text_embed")
    text = mixed["text_embed"].numpy()
    assert not np.allclose(text, plain["text_embed"].numpy())
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    idx = np.random.default_rng(3).choice(len(data), size=16, p=probabilities)  # make_batch's first draw
    for row, window in zip(text, idx):
        own = data.embeddings[data.caption_index[window]]  # (K, D) the window's paraphrases
        coefficients = np.linalg.lstsq(own.T, row, rcond=None)[0]
        np.testing.assert_allclose(own.T @ coefficients, row, atol=1e-4)
