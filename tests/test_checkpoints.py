"""Official .pt loading, the checkpoint folder, and the import-official / info commands (real files, real
subprocesses), on small official-layout checkpoints built from the golden fixture's state dicts."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend.checkpoints import (load_checkpoint, load_folder, load_official, max_output_difference, probe_inputs,
                                 save_folder)
from backend.errors import UserError
from backend.fixture_check import TOL_FORWARD, Fixture, fixture_inputs
from conftest import FIXTURE_DIR, REPO


class NotATensor:
    """A custom class: a pickle holding it must be refused by weights_only loading."""


@pytest.fixture(scope="module")
def fx(shared_dir):
    return Fixture(FIXTURE_DIR)


def official_args(fx, case_name, **overrides):
    """An args.json as official training writes it, for a fixture case (ff_size/num_heads are fixed in the official
    code; the fixture's small values are given explicitly)."""
    kw = fx.config["cases"][case_name]["constructor_kwargs"]
    args = dict(dataset=kw["dataset"], latent_dim=kw["latent_dim"], layers=kw["num_layers"], arch=kw["arch"],
                emb_trans_dec=kw["emb_trans_dec"], cond_mask_prob=kw["cond_mask_prob"], ff_size=kw["ff_size"],
                num_heads=kw["num_heads"], diffusion_steps=50, noise_schedule="cosine")
    return {**args, **overrides}


def write_official(fx, folder, case_name, ema=False, with_stats=True, **arg_overrides):
    """MODEL.pt + args.json (+ Mean/Std) laid out like a released official checkpoint folder."""
    case = fx.config["cases"][case_name]
    state = torch.load(fx.path(case["state_dict_file"]), weights_only=True)
    state = {**state, "clip_model.token_embedding.weight": torch.zeros(3, 2)}  # official files carry CLIP
    if ema:  # the fixture weights are the EMA ones; 'model' holds different weights that must not be used
        state = {"model": {k: v + 1.0 for k, v in state.items()}, "model_avg": state}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "model000100.pt")
    (folder / "args.json").write_text(json.dumps(official_args(fx, case_name, use_ema=ema, **arg_overrides)))
    if with_stats:
        n = case["constructor_kwargs"]["njoints"] * case["constructor_kwargs"]["nfeats"]
        rng = np.random.default_rng(0)
        np.save(folder / "Mean.npy", rng.normal(size=n).astype(np.float32))
        np.save(folder / "Std.npy", rng.uniform(0.5, 2.0, size=n).astype(np.float32))
    return folder / "model000100.pt"


def forward(model, x, t, cond):
    with torch.no_grad():
        return model(x, t, cond).numpy()


@pytest.mark.parametrize("ema", [False, True])
def test_official_pt_reproduces_the_fixture(fx, tmp_path, ema):
    pt = write_official(fx, tmp_path, "text_trans_enc", ema=ema)
    model, config = load_official(pt)
    assert (config.diffusion_steps, config.latent_dim, config.ff_size) == (50, 64, 128)
    x, t, cond = fixture_inputs(fx, "text_trans_enc")
    np.testing.assert_allclose(forward(model, x, t, cond), fx.array("text/out_cond"), atol=TOL_FORWARD)


def test_missing_args_json_is_named(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc")
    (tmp_path / "args.json").unlink()
    with pytest.raises(UserError, match=r"args\.json is missing"):
        load_official(pt)


def test_mismatched_state_dict_names_the_keys(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc")
    state = torch.load(pt, weights_only=True)
    state["embed_text.weight"] = torch.zeros(64, 7)
    del state["output_process.poseFinal.bias"]
    state["embed_lyrics.weight"] = torch.zeros(1)
    torch.save(state, pt)
    with pytest.raises(UserError) as err:
        load_official(pt)
    message = str(err.value)
    assert "missing keys (1): output_process.poseFinal.bias" in message
    assert "unexpected keys (1): embed_lyrics.weight" in message
    assert "embed_text.weight (64, 7) != (64, 512)" in message


def test_wrong_architecture_in_args_is_a_mismatch(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc", layers=3)
    with pytest.raises(UserError, match=r"missing keys \(\d+\): seqTransEncoder\.layers\.2\."):
        load_official(pt)


def test_corrupt_file_is_refused(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc")
    pt.write_bytes(pt.read_bytes()[:5000])
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_official(pt)


@pytest.mark.parametrize("content", [b"", b"hello\n"])
def test_a_file_that_is_not_a_checkpoint_is_refused(fx, tmp_path, content):
    pt = write_official(fx, tmp_path, "text_trans_enc")
    pt.write_bytes(content)  # empty: torch raises an error without a message; text: a KeyError from the unpickler
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_official(pt)


def test_pickled_code_is_refused(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc")
    torch.save({"model": NotATensor()}, pt)
    with pytest.raises(UserError, match=r"could run code \(weights_only=True\)"):
        load_official(pt)


def test_folder_round_trip_is_identical(fx, tmp_path):
    pt = write_official(fx, tmp_path / "official", "action_trans_enc", with_stats=False)
    source = load_checkpoint(pt)
    assert source.mean is None and source.config.action_names[4] == "drink"
    folder = save_folder(tmp_path / "converted", source.model, source.config, extra_meta={"note": "test"})
    loaded = load_folder(folder)
    assert loaded.config == source.config
    assert loaded.meta["note"] == "test" and loaded.frames == {"fps": 20, "min_frames": 60, "max_frames": 60}
    assert max_output_difference(source.model, loaded.model, source.config) == 0.0
    x, t, cond = fixture_inputs(fx, "action_trans_enc")
    np.testing.assert_allclose(forward(loaded.model, x, t, cond), fx.array("action/out_cond"), atol=TOL_FORWARD)


def test_folder_keeps_statistics_and_checksums(fx, tmp_path):
    pt = write_official(fx, tmp_path / "official", "text_trans_dec_emb")
    source = load_checkpoint(pt)
    folder = save_folder(tmp_path / "converted", source.model, source.config, source.mean, source.std)
    document = json.loads((folder / "config.json").read_text())
    assert set(document["sha256"]) == {"model.safetensors", "Mean.npy", "Std.npy"}
    loaded = load_folder(folder)
    np.testing.assert_array_equal(loaded.mean, np.load(tmp_path / "official" / "Mean.npy"))
    np.testing.assert_array_equal(loaded.std, np.load(tmp_path / "official" / "Std.npy"))
    x, t, cond = probe_inputs(loaded.config, torch.Generator().manual_seed(1))
    assert np.array_equal(forward(source.model, x, t, cond), forward(loaded.model, x, t, cond))


@pytest.mark.parametrize("name", ["model.safetensors", "Std.npy"])
def test_folder_with_a_changed_file_is_refused(fx, tmp_path, name):
    source = load_checkpoint(write_official(fx, tmp_path / "official", "text_trans_enc"))
    folder = save_folder(tmp_path / "converted", source.model, source.config, source.mean, source.std)
    data = bytearray((folder / name).read_bytes())
    data[-3] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{name} does not match the checksum"):
        load_folder(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda doc: doc["config"].update(num_layers="four"), "model configuration: 'num_layers' must be int, got 'four'"),
    (lambda doc: doc["config"].update(latent_dim=None), "'latent_dim' must be int, got None"),
    (lambda doc: doc.update(format_version="x"), "written by a newer version"),
    (lambda doc: doc["meta"].pop("frames"), "meta.frames must be"),
    (lambda doc: doc["meta"].update(frames={"fps": 20, "min_frames": 0, "max_frames": -5}), "meta.frames must be"),
])
def test_a_hand_edited_config_is_refused_with_its_fault(fx, tmp_path, edit, message):
    source = load_checkpoint(write_official(fx, tmp_path / "official", "text_trans_enc"))
    folder = save_folder(tmp_path / "converted", source.model, source.config, source.mean, source.std)
    document = json.loads((folder / "config.json").read_text())
    edit(document)
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(UserError, match=re.escape(message)):
        load_folder(folder)


def test_save_folder_refuses_an_existing_folder(fx, tmp_path):
    source = load_checkpoint(write_official(fx, tmp_path / "official", "text_trans_enc"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("user file")
    with pytest.raises(UserError, match="not an empty folder"):
        save_folder(tmp_path / "taken", source.model, source.config, source.mean, source.std)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def test_a_vocabulary_round_trips_byte_for_byte_and_must_fit_the_model(fx, tmp_path):
    from backend.text import PromptVocabulary

    source = load_checkpoint(write_official(fx, tmp_path / "official", "text_trans_enc"))
    sentences = ("a person walks.", "a person jumps.", "a person waves the left hand.")
    vocabulary = PromptVocabulary(sentences, torch.randn(3, source.config.cond_dim, generator=torch.Generator()
                                                         .manual_seed(0)))
    folders = [save_folder(tmp_path / name, source.model, source.config, source.mean, source.std,
                           vocabulary=vocabulary) for name in ("a", "b")]
    assert len({(f / "vocabulary.safetensors").read_bytes() for f in folders}) == 1  # a retrain's checksum holds
    loaded = load_folder(folders[0]).vocabulary
    assert loaded.sentences == sentences and torch.equal(loaded.embeddings, vocabulary.embeddings)
    narrow = PromptVocabulary(sentences, torch.zeros(3, 384))
    with pytest.raises(UserError, match="384-d embeddings does not fit a text model with 512-d"):
        save_folder(tmp_path / "c", source.model, source.config, source.mean, source.std, vocabulary=narrow)
    assert not (tmp_path / "c").exists()
    with pytest.raises(UserError, match="one embedding row per sentence"):
        PromptVocabulary(sentences[:2], vocabulary.embeddings)


def test_text_model_without_statistics_is_refused(fx, tmp_path):
    pt = write_official(fx, tmp_path, "text_trans_enc", with_stats=False)
    with pytest.raises(UserError, match=r"Mean\.npy is missing"):
        load_checkpoint(pt)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_import_official_then_info_through_the_cli(fx, tmp_path):
    pt = write_official(fx, tmp_path / "official", "text_trans_enc", ema=True)
    out = tmp_path / "imported"
    done = run_cli("import-official", pt, "--mean", tmp_path / "official" / "Mean.npy",
                   "--std", tmp_path / "official" / "Std.npy", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "max abs difference, folder vs model000100.pt: 0.000e+00" in done.stdout
    x, t, cond = fixture_inputs(fx, "text_trans_enc")  # the EMA weights were the ones converted
    np.testing.assert_allclose(forward(load_folder(out).model, x, t, cond), fx.array("text/out_cond"),
                               atol=TOL_FORWARD)

    info = run_cli("info", "--checkpoint", out)
    assert info.returncode == 0, info.stderr
    n_params = sum(p.numel() for p in load_folder(out).model.parameters())
    assert "trans_enc, 2 layers, latent 64, ff 128, 4 heads" in info.stdout
    assert f"parameters:     {n_params:,}" in info.stdout
    assert "text (clip, 512-d), classifier-free guidance" in info.stdout
    assert "40-196 at 20 fps" in info.stdout and "50 steps" in info.stdout


def test_info_lists_action_names_of_an_official_pt(fx, tmp_path):
    pt = write_official(fx, tmp_path, "action_trans_enc", with_stats=False)
    info = run_cli("info", "--checkpoint", pt, "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["condition"]["action_names"][11] == "throw"
    assert described["frames"]["max_frames"] == 60 and not described["condition"]["classifier_free_guidance"]


def test_import_official_failure_writes_nothing(fx, tmp_path):
    pt = write_official(fx, tmp_path / "official", "text_trans_enc", with_stats=False)
    done = run_cli("import-official", pt, "--out", tmp_path / "imported")
    assert done.returncode == 2 and "error:" in done.stderr and "Mean.npy is missing" in done.stderr
    assert not (tmp_path / "imported").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["official"]
