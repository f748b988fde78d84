"""The request -> motion pipeline, its command-line front ends and the stdio server, on a real small checkpoint."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from backend import keyframes, skeleton
from backend.errors import UserError
from backend.pipeline import MotionRequest, Pipeline, floor_under_first_key, on_reference_skeleton
from backend.server import decode
from conftest import HUMANML_SAMPLE_DIR, REPO


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint):
    return Pipeline(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def motion():
    return np.load(HUMANML_SAMPLE_DIR / "new_joints_012314.npy").astype(np.float64)  # tests only


def test_same_seed_same_motion_and_another_seed_another(pipeline):
    request = MotionRequest(text="a person walks forward.", frames=40, samples=2, seed=3)
    a, b = pipeline.generate(request), pipeline.generate(request)
    assert np.array_equal(a.joints, b.joints) and a.joints.shape == (2, 40, 22, 3)
    c = pipeline.generate(MotionRequest(text="a person walks forward.", frames=40, samples=2, seed=4))
    assert not np.allclose(a.joints, c.joints)


def test_progress_counts_every_step_and_cancel_stops(pipeline):
    seen = []
    pipeline.generate(MotionRequest(text="a person jumps.", frames=40, samples=1),
                      progress=lambda done, total: seen.append((done, total)))
    steps = pipeline.config.diffusion_steps
    assert seen == [(k, steps) for k in range(1, steps + 1)]
    from backend.samplers import SamplingCancelled

    with pytest.raises(SamplingCancelled):
        pipeline.generate(MotionRequest(text="a person jumps.", frames=40), cancelled=lambda: True)


@pytest.mark.parametrize("method", ["keyframe", "x0_replace", "repaint", "guidance", "plain"])
def test_every_inbetween_method_hits_the_keys(pipeline, motion, method):
    """Each method meets the keys (after the exact placement), and each is its own sampler: the same seed gives
    another motion than the plain sampler's, and the methods that write the keys into the sample meet them even
    before the placement."""
    frames = [0, 20, 45]
    keys = keyframes.Keyframes.full_poses(frames, motion[frames])
    request = MotionRequest(frames=46, samples=1, keys=keys, inbetween_method=method, guidance=1.0)
    result = pipeline.generate(request)
    target = on_reference_skeleton(keys).joints
    assert np.abs(result.joints[0, frames] - target).max() < 1e-5
    assert result.meta["inbetween_method"] == method and len(result.meta["keyframe_error_unsnapped"]) == 1
    assert (result.meta["sampler"] == "repaint") == (method == "repaint")
    if method in ("x0_replace", "repaint"):
        assert result.meta["keyframe_error_unsnapped"][0] < 1e-3
    if method != "plain":
        plain = pipeline.generate(replace(request, inbetween_method="plain"))
        assert not np.allclose(result.joints, plain.joints, atol=1e-3)


@pytest.mark.parametrize("unkeyed", [(), ("left_collar", "right_collar", "spine3")])  # a rig without those bones
def test_keys_on_a_raised_floor_give_the_same_motion_raised(pipeline, motion, unkeyed):
    """Keys posed 0.7 m up (on a step, or on a rig whose floor lies elsewhere) are sampled on the model's floor:
    the in-between is the same motion as from the keys on the floor, raised."""
    frames = [0, 20, 45]
    mask = np.ones((3, 22), bool)
    mask[:, [skeleton.JOINT_INDEX[name] for name in unkeyed]] = False
    on_floor = keyframes.Keyframes(np.array(frames), motion[frames], mask)
    up = keyframes.Keyframes(np.array(frames), motion[frames] + [0.0, 0.7, 0.0], mask)
    a, b = (pipeline.generate(MotionRequest(frames=46, samples=2, keys=keys, guidance=1.0)).joints
            for keys in (on_floor, up))
    height = on_reference_skeleton(up).joints[0, 0, 1] - on_reference_skeleton(on_floor).joints[0, 0, 1]
    assert height > 0.5 and np.abs(b - a - [0.0, height, 0.0]).max() < 1e-5


def test_only_keys_that_stand_on_both_feet_say_where_the_floor_is(motion):
    frames = np.array([0, 20])
    full = keyframes.Keyframes.full_poses(frames, motion[frames] + [0.0, 0.7, 0.0])
    assert floor_under_first_key(full) == pytest.approx(motion[0, :, 1].min() + 0.7)
    root_only = keyframes.Keyframes(frames, full.joints, np.eye(1, 22, dtype=bool).repeat(2, 0))
    assert floor_under_first_key(root_only) == 0.0  # a root path is not a pose on a floor


def test_an_unprompted_inbetween_runs_no_guidance_batch(pipeline, motion, monkeypatch):
    """With no prompt both halves of a guidance batch are unconditioned: one forward of the samples is the same."""
    batches, forward = [], pipeline.loaded.model.forward
    monkeypatch.setattr(pipeline.loaded.model, "forward", lambda x, *args: batches.append(len(x)) or forward(x, *args))
    keys = keyframes.Keyframes.full_poses([0, 45], motion[[0, 45]])
    for text, batch in (("", 2), ("a person walks forward.", 4)):
        batches.clear()
        pipeline.generate(MotionRequest(text=text, frames=46, samples=2, keys=keys, guidance=2.5, steps=3))
        assert batches == [batch] * 3


@pytest.fixture(scope="module")
def known_captions(tmp_path_factory, pipeline):
    """The tiny model again, shipping four captions as its vocabulary (their real MiniLM embeddings)."""
    import torch

    from backend.checkpoints import save_folder
    from backend.text import PromptVocabulary

    sentences = ("a person walks forward.", "a person waves the left hand.", "a person waves the right hand.",
                 "a person jumps.")
    vocabulary = PromptVocabulary(sentences, torch.cat([pipeline.encode_text(s) for s in sentences]))
    loaded = pipeline.loaded
    folder = save_folder(tmp_path_factory.mktemp("vocabulary") / "tiny", loaded.model, loaded.config, loaded.mean,
                         loaded.std, vocabulary=vocabulary)
    return Pipeline(folder, device="cpu")


def test_a_prompt_is_read_as_the_nearest_caption_the_model_knows(known_captions):
    paraphrase = MotionRequest(text="a man walks ahead casually.", frames=40, samples=1, seed=2)
    read = known_captions.generate(paraphrase)
    assert read.meta["prompt_read_as"] == "a person walks forward." and 0.5 < read.meta["prompt_similarity"] < 1
    caption = known_captions.generate(MotionRequest(text="a person walks forward.", frames=40, samples=1, seed=2,
                                                    literal_prompt=True))
    assert np.array_equal(read.joints, caption.joints)  # conditioned on the caption's very embedding
    literal = known_captions.generate(MotionRequest(text="a man walks ahead casually.", frames=40, samples=1,
                                                    seed=2, literal_prompt=True))
    assert literal.meta["prompt_read_as"] is None and not np.allclose(literal.joints, read.joints)


def test_a_prompt_that_names_a_side_is_read_as_a_caption_of_that_side(known_captions):
    for side in ("left", "right"):
        _, reading = known_captions.read_prompt(f"someone waves goodbye with the {side} hand")
        assert reading["prompt_read_as"] == f"a person waves the {side} hand."


def test_a_prompt_naming_the_right_side_is_the_left_sides_motion_mirrored(known_captions, pipeline, motion):
    """Sentence embeddings hardly tell the sides apart, so our models sample the right side as the left one's mirror
    image; keys go through the mirror and back, and are met. Official models (no captions) sample the prompt as
    given."""
    from backend.features import mirror_joints

    request = MotionRequest(frames=40, samples=2, seed=4)
    right = known_captions.generate(replace(request, text="someone waves with the right hand"))
    left = known_captions.generate(replace(request, text="someone waves with the left hand"))
    np.testing.assert_array_equal(right.joints, mirror_joints(left.joints))
    assert right.meta["sampled_mirrored"] and right.meta["prompt_read_as"] == "a person waves the right hand."
    assert right.meta["prompt"] == "someone waves with the right hand"
    keys = keyframes.Keyframes.full_poses([0, 39], motion[[0, 39]])
    keyed = known_captions.generate(replace(request, text="someone waves with the right hand", keys=keys))
    assert keyed.meta["sampled_mirrored"]
    assert max(keyframes.keyframe_error(joints, keys) for joints in keyed.joints) < 1e-6
    assert not pipeline.samples_mirrored("someone waves with the right hand")
    assert not known_captions.samples_mirrored("the left hand passes the cup to the right hand")


def test_a_model_without_captions_reads_prompts_as_typed(pipeline):
    embedding, reading = pipeline.read_prompt("a man walks ahead casually.")
    assert reading == {"prompt_read_as": None, "prompt_similarity": None}
    assert np.array_equal(embedding, pipeline.encode_text("a man walks ahead casually."))


def test_the_keyframe_model_offers_its_own_method_first(pipeline):
    assert pipeline.inbetween_methods()[0] == "keyframe"


def test_keys_reach_the_network_with_the_heading_estimate_it_was_trained_with(tmp_path, pipeline, motion):
    """A checkpoint that names no estimate was trained with each key's own facing ("instant"); one that names
    "smoothed" gets the smoothed estimate. Sampled the other way, a model would read its keys turned."""
    from dataclasses import replace

    from backend.checkpoints import save_folder

    assert pipeline.config.keyframe_heading == "instant"
    loaded = pipeline.loaded
    folder = save_folder(tmp_path / "smoothed", loaded.model, replace(pipeline.config, keyframe_heading="smoothed"),
                         loaded.mean, loaded.std)
    smoothed = Pipeline(folder, device="cpu")
    keys = keyframes.Keyframes.full_poses([0, 12, 24, 36], motion[[0, 12, 24, 36]])
    request = MotionRequest(frames=40, keys=keys)
    for pipe, key_heading in ((pipeline, "instant"), (smoothed, "smoothed")):
        values, _ = keyframes.encode(keys, 40, pipe.loaded.mean, pipe.loaded.std, key_heading)
        unprompted = pipe.read_prompt("")[0]
        sent = pipe._condition("", unprompted, request, keyed=True)["keyframe_values"][0, :, 0].T.numpy()  # [F, K]
        assert np.array_equal(sent, values)
    instant, _ = keyframes.encode(keys, 40, loaded.mean, loaded.std, "instant")
    assert not np.allclose(instant, values)


@pytest.mark.parametrize("request_fields, message", [
    (dict(text="   "), "type a prompt"),
    (dict(text="a person walks", frames=500), "outside this model's range"),
    (dict(action="moonwalk"), "unknown action"),
    (dict(text="a person walks", samples=0), "samples must be"),
    (dict(text="a person walks", sampler="euler"), "unknown sampler"),
    (dict(text="a person walks", inbetween_method="magic",
          keys=keyframes.Keyframes.full_poses([0, 10], np.zeros((2, 22, 3)))), "unknown in-betweening method"),
    (dict(frames=40, keys=keyframes.Keyframes.full_poses([0, 50], np.zeros((2, 22, 3)))), "outside the clip"),
    (dict(frames=40, keys=keyframes.Keyframes.full_poses([0], np.zeros((1, 22, 3)))), "at least two keyed frames"),
])
def test_bad_requests_are_refused_clearly(pipeline, request_fields, message):
    with pytest.raises(UserError, match=message):
        pipeline.generate(MotionRequest(**{"frames": 40, **request_fields}))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=REPO, capture_output=True, text=True)


def test_generate_cli_writes_joints_features_and_bvh(tmp_path, tiny_checkpoint):
    out = tmp_path / "walk.npz"
    done = _cli("generate", "--checkpoint", tiny_checkpoint, "--text", "a person walks", "--seconds", 2,
                "--samples", 2, "--out", out, "--bvh", tmp_path / "walk.bvh")
    assert done.returncode == 0, done.stderr
    data = np.load(out)
    assert data["joints"].shape == (2, 40, 22, 3) and data["features"].shape == (2, 40, 263)
    assert json.loads(str(data["meta"]))["prompt"] == "a person walks"
    assert "sampling" in done.stderr  # the progress bar
    assert (tmp_path / "walk.bvh").read_text().startswith("HIERARCHY")


@pytest.mark.parametrize("args, message", [
    (["--text", ""], "type a prompt"),
    (["--text", "a person walks", "--seconds", 0.1], "outside this model's range"),
    (["--text", "a person walks", "--seconds", 600], "too long: chained generation reaches"),
    (["--action", "moonwalk"], "unknown action"),
])
def test_generate_cli_bad_input_writes_nothing(tmp_path, tiny_checkpoint, args, message):
    out = tmp_path / "out.npz"
    done = _cli("generate", "--checkpoint", tiny_checkpoint, *args, "--out", out)
    assert done.returncode == 2 and message in done.stderr and not out.exists()


def test_a_corrupt_checkpoint_is_named(tmp_path, tiny_checkpoint):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "model.safetensors").write_bytes(b"not a model")
    done = _cli("generate", "--checkpoint", broken, "--text", "a person walks", "--out", tmp_path / "o.npz")
    assert done.returncode == 2 and "model.safetensors" in done.stderr and not (tmp_path / "o.npz").exists()


def test_inbetween_cli_rejects_a_key_outside_the_clip(tmp_path, tiny_checkpoint, motion):
    keys = tmp_path / "keys.npz"
    np.savez(keys, frames=np.array([0, 60]), joints=motion[[0, 60]])
    done = _cli("inbetween", "--checkpoint", tiny_checkpoint, "--keys", keys, "--frames", 50, "--out",
                tmp_path / "o.npz")
    assert done.returncode == 2 and "outside the clip" in done.stderr and not (tmp_path / "o.npz").exists()
    done = _cli("inbetween", "--checkpoint", tiny_checkpoint, "--keys", keys, "--out", tmp_path / "o.npz")
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "o.npz")["joints"].shape == (1, 61, 22, 3)  # default length: through the last key


def test_stdio_server_speaks_the_protocol(tiny_checkpoint):
    requests = [{"id": 1, "op": "hello"}, "garbage", {"id": 2, "op": "generate", "checkpoint": str(tiny_checkpoint),
                "params": {"text": "a person jumps", "frames": 40, "samples": 1, "seed": 0}},
                {"id": 3, "op": "generate", "checkpoint": str(tiny_checkpoint), "params": {"text": ""}},
                {"id": 4, "op": "shutdown"}]
    stdin = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in requests) + "\n"
    done = subprocess.run([sys.executable, "-m", "backend.server"], cwd=REPO, input=stdin, capture_output=True,
                          text=True, timeout=300)
    events = [decode(json.loads(line)) for line in done.stdout.splitlines()]  # every stdout line is protocol
    by_kind = {(e["id"], e["event"]) for e in events}
    assert {(1, "hello"), (None, "error"), (2, "progress"), (2, "result"), (3, "error"), (4, "bye")} <= by_kind
    result = next(e for e in events if e["event"] == "result")
    assert result["joints"].shape == (1, 40, 22, 3) and result["joints"].dtype == np.float32
    assert next(e for e in events if e["id"] == 3)["kind"] == "user"


def _serve(stdin: bytes):
    """The stdio server's events for raw `stdin` bytes (it must end by itself: at shutdown or at the end of input)."""
    done = subprocess.run([sys.executable, "-m", "backend.server"], cwd=REPO, input=stdin, capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def test_stdio_server_answers_malformed_requests_and_keeps_serving(tiny_checkpoint):
    """Ids and targets that cannot be set keys, bytes that are not UTF-8, and mistyped fields are each answered
    with an error; the requests after them are still served."""
    generate = {"op": "generate", "checkpoint": str(tiny_checkpoint)}
    two_keys = {"frames": [0, 1.5], "joints": [[[0, 0, 0]] * 22] * 2}
    requests = [{"id": [1], "op": "hello"}, {"id": 2, "op": "cancel", "target": {}},
                *({"id": i, **generate, "params": params} for i, params in (
                    (4, {"text": "a jump", "frames": "forty"}), (5, {"text": "a jump", "seed": 1e30}),
                    (6, {"text": 42}), (7, "walk"), (8, {"text": "a jump", "keys": two_keys}),
                    (9, {"text": "a jump", "keys": {"frames": [0]}}))),
                {"id": 10, "op": "hello"}]  # then the end of input: no shutdown request
    lines = [json.dumps(request).encode() for request in requests]
    lines.insert(2, b'{"id": 3, "op": "hello", "device": "\xff\xfe"}')
    events = _serve(b"\n".join(lines) + b"\n")
    unreadable = [e["kind"] for e in events if e["id"] is None and e["event"] == "error"]
    assert unreadable == ["protocol", "protocol"]  # the id and the target
    errors = {e["id"]: e for e in events if e["event"] == "error" and e["id"] is not None}
    assert {rid: errors[rid]["kind"] for rid in range(3, 10)} == dict.fromkeys(range(3, 10), "user")
    assert "must be int, got 'forty'" in errors[4]["message"] and "must be int, got 1e+30" in errors[5]["message"]
    assert "whole frame numbers" in errors[8]["message"] and "request keys must be" in errors[9]["message"]
    assert (10, "hello") in {(e["id"], e["event"]) for e in events} and events[-1]["event"] == "bye"


def test_generate_refuses_an_unwritable_output_before_sampling_and_keeps_existing_files(tmp_path, tiny_checkpoint):
    user_bvh = tmp_path / "take.bvh"
    user_bvh.write_text("the user's own take\n")
    (tmp_path / "outdir").mkdir()
    done = _cli("generate", "--checkpoint", tiny_checkpoint, "--text", "a person walks", "--seconds", 2,
                "--out", tmp_path / "outdir", "--bvh", user_bvh)
    assert done.returncode == 2 and "outdir is a folder: give a file name" in done.stderr
    assert "sampling" not in done.stderr and user_bvh.read_text() == "the user's own take\n"
    done = _cli("generate", "--checkpoint", tiny_checkpoint, "--text", "a person walks", "--seconds", "nan",
                "--out", tmp_path / "o.npz")
    assert done.returncode == 2 and "'nan' is not a finite number" in done.stderr
