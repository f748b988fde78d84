"""The README's main job end to end: prompt -> model -> add-on built, installed and baked in real Blender."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_demo_writes_a_blend_with_the_baked_rig_and_a_preview(tmp_path, tiny_checkpoint):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "backend", "demo", "--out", str(out), "--checkpoint",
                             str(tiny_checkpoint), "--seconds", "2", "--samples", "2"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "preview.png").stat().st_size > 10_000
    motion = np.load(out / "motion.npz")
    assert motion["joints"].shape == (2, 40, 22, 3)
    # Open the saved .blend in a fresh Blender and check the bake is there: a rig whose action carries the prompt.
    check = ("import bpy; bpy.ops.wm.open_mainfile(filepath=%r); "
             "rigs = [o for o in bpy.data.objects if o.type == 'ARMATURE' and o.animation_data and "
             "o.animation_data.action]; a = rigs[0].animation_data.action; "
             "print('PROMPT', a['mdm_prompt'], 'RANGE', tuple(a.frame_range))") % str(out / "demo.blend")
    opened = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert "PROMPT a person walks across the room" in opened.stdout, opened.stderr[-2000:]
