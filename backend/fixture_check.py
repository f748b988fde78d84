"""Reproduce the arrays of a golden fixture made by the official MDM code (layout of `mdm_official/`).

Everything about the fixture (array names, shapes, configs, prompts, schedule settings) is read from its JSON and
npz, never assumed, so the same checks pass on a fixture made the same way with other sizes and seeds. Each check
group is a function `group(fixture) -> iterable of Check`; `run_checks` turns an exception inside a group into a
failed check rather than a crash, so one broken part never hides the others.
"""
import json
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


CHECK_GROUPS = (skeleton_checks,)


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
