"""`python -m backend convert` and `export-bvh` through a real subprocess: outputs, and clean failures."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import MOCAP_DIR, REPO

from backend import skeleton
from backend.bvh import read_bvh
from backend.features import joints_to_features
from backend.mocap import load_clip

WALK = MOCAP_DIR / "przestr" / "07_01.bvh"  # Daz skeleton, 120 fps, 1 T-pose frame
CMU_WALK = MOCAP_DIR / "mb_misc" / "02_01.bvh"


def backend(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_convert_writes_joints_features_and_metadata(tmp_path):
    out = tmp_path / "walk.npz"
    result = backend("convert", WALK, out, "--fps", 120, "--skip", 1)
    assert result.returncode == 0, result.stderr
    with np.load(out, allow_pickle=False) as data:
        joints, features, meta = data["joints"], data["features"], json.loads(str(data["meta"]))
    expected = load_clip(WALK, fps=120, skip=1).joints
    assert joints.dtype == np.float32 and joints.shape == expected.shape == (53, 22, 3)
    np.testing.assert_allclose(joints, expected, atol=1e-6)
    assert features.dtype == np.float32 and features.shape == (52, skeleton.FEATURE_DIM)
    np.testing.assert_allclose(features, joints_to_features(expected), atol=1e-4)
    assert meta == {"source": str(WALK), "family": "cmu_daz", "source_fps": 120.0, "source_frames": 317,
                    "skipped_frames": 1, "fps": skeleton.FPS, "frames": 53, "units": "metres, Y-up"}


def test_export_bvh_then_convert_gives_the_joints_back(tmp_path):
    assert backend("convert", WALK, tmp_path / "a.npz", "--fps", 120, "--skip", 1).returncode == 0
    result = backend("export-bvh", tmp_path / "a.npz", tmp_path / "a.bvh")
    assert result.returncode == 0, result.stderr
    assert read_bvh(tmp_path / "a.bvh").frame_time == pytest.approx(1 / skeleton.FPS)
    assert backend("convert", tmp_path / "a.bvh", tmp_path / "b.npz").returncode == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        np.testing.assert_allclose(b["joints"], a["joints"], atol=1e-5)
        assert json.loads(str(b["meta"]))["family"] == "humanml3d"


def test_export_bvh_picks_a_sample_and_exact_mode_reproduces_cmu_joints(tmp_path):
    joints = load_clip(CMU_WALK, fps=120, skip=1).joints
    samples = np.stack([joints, joints[:, :, [2, 1, 0]]])  # (S, T, 22, 3); sample 1 is a different motion
    np.savez(tmp_path / "s.npz", joints=samples.astype(np.float32), meta=np.array(json.dumps({"fps": 20})))
    result = backend("export-bvh", tmp_path / "s.npz", tmp_path / "s.bvh", "--sample", 0, "--exact")
    assert result.returncode == 0, result.stderr
    assert backend("convert", tmp_path / "s.bvh", tmp_path / "back.npz").returncode == 0
    with np.load(tmp_path / "back.npz") as back:
        np.testing.assert_allclose(back["joints"], joints, atol=3e-4)


def bad_bvh(tmp_path):
    path = tmp_path / "bad.bvh"
    path.write_text(WALK.read_text().replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 3 Z X Y", 1))
    return path


def unknown_bvh(tmp_path):
    path = tmp_path / "unknown.bvh"
    path.write_text(WALK.read_text().replace("lShin", "lCalf").replace("rShin", "rCalf"))
    return path


def short_bvh(tmp_path):
    path = tmp_path / "short.bvh"
    lines = WALK.read_text().splitlines()
    start = lines.index("MOTION")
    path.write_text("\n".join(lines[:start] + ["MOTION", "Frames: 5", lines[start + 2]] +
                              lines[start + 3:start + 8]) + "\n")
    return path


def nan_bvh(tmp_path):
    path = tmp_path / "nan.bvh"
    lines = WALK.read_text().splitlines()
    values = lines[-1].split()
    lines[-1] = " ".join(["nan"] + values[1:])
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("make_input, extra, message", [
    (lambda tmp: tmp / "absent.bvh", [], "absent.bvh: no such file"),
    (bad_bvh, [], "line 9: bad channel list for 'abdomen': Z X Y"),
    (unknown_bvh, [], "left_knee (needs lShin), right_knee (needs rShin)"),
    (short_bvh, ["--fps", 120], "5 frames at 120 fps give 1 frame(s) at 20 fps; at least 2 are needed"),
    (nan_bvh, ["--fps", 120], "NaN"),
    (lambda tmp: WALK, ["--skip", 400], "cannot skip 400 frames of a 317-frame clip"),
    (lambda tmp: WALK, ["--family", "cmu_mb"], "not a cmu_mb skeleton: 22 of the 22 joints cannot be mapped: pelvis "
                                              "(needs Hips)"),
])
def test_convert_errors_exit_2_and_write_nothing(tmp_path, make_input, extra, message):
    out = tmp_path / "out" / "clip.npz"
    result = backend("convert", make_input(tmp_path), out, *extra)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not any(out.parent.glob("*"))


def truncated(path):
    path.write_bytes(path.read_bytes()[:500])
    return path


def npz_with(tmp_path, **arrays):
    path = tmp_path / "motion.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make_input, extra, message", [
    (lambda tmp: tmp / "absent.npz", [], "absent.npz: no such file"),
    (lambda tmp: WALK, [], "not a readable .npz motion file"),
    (lambda tmp: npz_with(tmp, motion=np.zeros((5, 22, 3))), [], "no `joints` array (it has: motion)"),
    (lambda tmp: npz_with(tmp, joints=np.zeros((5, 21, 3))), [], "must be (T, 22, 3) or (S, T, 22, 3)"),
    (lambda tmp: npz_with(tmp, joints=np.full((5, 22, 3), np.nan)), [], "not finite (NaN or inf) or beyond 1e+06 m in "
                                                                         "frame 0"),
    (lambda tmp: npz_with(tmp, joints=np.full((5, 22, 3), 1e300)), [], "or beyond 1e+06 m in frame 0"),
    (lambda tmp: npz_with(tmp, joints=np.zeros((5, 22, 3))), [], "'left_hip' and 'pelvis' coincide in frame 0"),
    (lambda tmp: npz_with(tmp, joints=np.zeros((2, 5, 22, 3))), ["--sample", 2], "--sample 2 is out of range"),
    (lambda tmp: npz_with(tmp, joints=np.zeros((5, 22, 3))), ["--sample", 3], "--sample 3 does not apply"),
    (lambda tmp: truncated(npz_with(tmp, joints=np.zeros((5, 22, 3)))), [], "not a readable .npz motion file"),
])
def test_export_bvh_errors_exit_2_and_write_nothing(tmp_path, make_input, extra, message):
    out = tmp_path / "out" / "motion.bvh"
    result = backend("export-bvh", make_input(tmp_path), out, *extra)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert not out.exists() and not any(out.parent.glob("*"))


@pytest.mark.parametrize("command, make_output, message", [
    ("convert", lambda tmp: tmp, "is a folder: give a file name"),
    ("convert", lambda tmp: (tmp / "a_file").touch() or tmp / "a_file" / "clip.npz", "a_file is a file, not a folder"),
    ("convert", lambda tmp: tmp / "source.bvh", "is also the input: writing it would destroy the input"),
    ("export-bvh", lambda tmp: tmp / "source.bvh", "is also the input"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, command, make_output, message):
    source = tmp_path / "source.bvh"
    source.write_bytes(WALK.read_bytes())
    output = make_output(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = backend(command, source, output)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert source.read_bytes() == WALK.read_bytes() and sorted(tmp_path.rglob("*")) == before
