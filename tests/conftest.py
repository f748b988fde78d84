"""Shared test set-up: where the shared data lives, and markers for slow and Blender tests."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI clones the repository with `shared/` beside it; MDM_SHARED overrides for other layouts.
SHARED = Path(os.environ.get("MDM_SHARED", REPO.parent / "shared"))
FIXTURE_DIR = SHARED / "fixtures" / "mdm_official"
HUMANML_SAMPLE_DIR = SHARED / "fixtures" / "humanml3d_sample"
MOCAP_DIR = SHARED / "mocap" / "cmu"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder {SHARED} is missing (set MDM_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A real checkpoint folder small enough for tests: an untrained keyframe-conditioned MiniLM text model (the
    embedded model's layout) with Mean/Std of a real CMU clip."""
    import numpy as np
    import torch

    from backend import features, keyframes, mocap
    from backend.checkpoints import save_folder
    from backend.model import MDM, MDMConfig

    real = mocap.load_clip(MOCAP_DIR / "przestr/03_01.bvh", fps=120, skip=1).joints
    feats = features.joints_to_features(real)
    config = MDMConfig(latent_dim=32, num_layers=1, ff_size=64, diffusion_steps=4, text_encoder="minilm",
                       cond_dim=384, mask_frames=True, keyframe_dim=keyframes.KEY_DIM)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MDM(config)
    folder = tmp_path_factory.mktemp("checkpoint") / "tiny"
    return save_folder(folder, model, config, feats.mean(0), np.maximum(feats.std(0), 1e-2))


def pytest_sessionfinish(session, exitstatus):
    session.config.mdm_exitstatus = exitstatus


def pytest_unconfigure(config):
    """The LTS releases as Python modules do not always get through their own exit teardown: 4.2 can crash once
    Rigify or an extension has been enabled and disabled, and 4.5.15 can hang for good in a static destructor
    (`GlobalState::~GlobalState` waits on its `delayed_close_thread_run` thread, seen in gdb after the add-on
    tests) — module issues of those builds; 5.0 exits cleanly. By now every result is reported, so leave with
    pytest's own status instead of running that teardown."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (5, 0, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(getattr(config, "mdm_exitstatus", 0)))
