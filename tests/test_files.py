"""Output files are written all or nothing (`files.atomic_outputs`), and unwritable outputs are named up front."""
import pytest

from backend.errors import UserError
from backend.files import atomic_outputs, require_writable


def test_a_failure_in_the_block_leaves_every_output_as_it_was(tmp_path):
    first, second = tmp_path / "a.npz", tmp_path / "b.bvh"
    second.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_outputs(first, second) as (tmp_first, tmp_second):
            tmp_first.write_text("new")
            tmp_second.write_text("new")
            raise RuntimeError("sampling failed")
    assert not first.exists() and second.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bvh"]  # no temporary files left
    with atomic_outputs(first, second) as (tmp_first, tmp_second):
        tmp_first.write_text("new")
        tmp_second.write_text("new")
    assert first.read_text() == second.read_text() == "new"


def test_an_output_that_cannot_be_written_stops_before_any_is_written(tmp_path):
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(UserError, match="folder.npz is a folder"):
        with atomic_outputs(tmp_path / "a.bvh", tmp_path / "folder.npz"):
            pytest.fail("the block must not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz"]


def test_a_folder_output_must_not_be_a_file_or_the_input(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(UserError, match="is a file: give a folder"):
        require_writable(tmp_path / "data", folder=True)
    with pytest.raises(UserError, match="is also the input"):
        require_writable(tmp_path / "mocap", folder=True, inputs=[tmp_path / "mocap/../mocap"])
