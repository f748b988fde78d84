"""Captions: CMU descriptions -> categories and paraphrases, held-out paraphrases, left/right swap."""
import re

import pytest

from backend import captions as cap
from backend import procedural
from backend.errors import UserError
from backend.mocap import read_index
from conftest import MOCAP_DIR


def every_training_sentence():
    """All sentences any description or category can put into training data."""
    sentences = {s for c in cap.CATEGORIES for s in cap.train_captions(c)}
    for rule in cap.RULES:
        sentences |= set(cap._sentences(rule.phrases))
    return sentences


def test_heldout_paraphrases_never_appear_in_training():
    training = every_training_sentence()
    for category in cap.CATEGORIES:
        heldout = cap.heldout_captions(category)
        assert len(heldout) >= 10 and len(cap.train_captions(category)) >= 20
        assert not set(heldout) & training, category
        # Not even as a phrase inside a longer training sentence.
        for phrase in cap.CATEGORY_PHRASES[category][1]:
            for side in cap.SIDES:
                assert not any(phrase.format(side=side) in s for s in training), phrase


def test_every_training_clip_is_described_and_every_category_has_data():
    rows = [r for r in read_index(MOCAP_DIR / "index.csv") if r.split == "train"]
    real = {cap.describe(r.description).category for r in rows if r.path.parent.name != "iclone"}
    assert real | set(procedural.GENERATORS) == set(cap.CATEGORIES)


@pytest.mark.parametrize("description, category, example", [
    ("walk", "walk", "a person walks forward."),
    ("slow walk", "walk", "someone walks slowly."),
    ("run/jog", "run", "a person runs forward."),
    ("forward jump", "jump", "a person jumps forward."),
    ("Front Kick", "kick", "a person does a front kick."),
    ("Mawashigeri", "kick", "a man does a roundhouse kick."),
    ("Oiduki", "punch", "a person does a lunge punch."),
    ("Heiansyodan", "martial_arts", "a person performs a karate kata."),
    ("salsa dance (salsa partner pair: subject 60 or 61, not stated by source)", "dance", "a woman dances salsa."),
    ("turn right in place", "turn", "a person turns to the right."),
    ("wave left hand", "wave", "someone waves with the left hand."),
    ("sit down and stand up", "sit", "a person sits down and stands up again."),
])
def test_describe_gives_category_and_natural_sentences(description, category, example):
    described = cap.describe(description)
    assert described.category == category
    assert example in described.captions
    assert all(re.fullmatch(r"[a-z][a-z ,'-]+\.", c) for c in described.captions)


def test_several_actions_get_category_level_captions_only():
    """A long playground clip does not show its first action in every window."""
    described = cap.describe("playground - forward jumps, turn around")
    assert described.category == "jump"
    assert set(described.captions) == set(cap.train_captions("jump"))
    assert "a person jumps forward." in cap.describe("forward jump").captions


def test_sided_captions_name_one_side_and_mirror_to_the_other():
    left = cap.describe("turn left in place").captions
    assert all("left" in c and "right" not in c for c in left)
    mirrored = [cap.mirror_caption(c) for c in left]
    assert set(mirrored) <= set(cap.describe("turn right in place").captions)
    assert cap.mirror_caption("Left hand up, then the right one; leftover stays.") == \
        "Right hand up, then the left one; leftover stays."


def test_unknown_description_is_a_clear_error():
    with pytest.raises(UserError, match="no caption rule matches the description 'swordplay'"):
        cap.describe("swordplay")
