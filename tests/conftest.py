"""Shared test set-up: where the shared data lives, and markers for slow and Blender tests."""
import os
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
