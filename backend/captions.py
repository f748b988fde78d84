"""CMU trial descriptions -> a category label and natural-language captions, with held-out paraphrases for eval.

CMU describes trials tersely ("walk", "run/jog", "Mawashigeri", "playground - climb, jump down, ..."). Each
description is matched against `RULES` (first match wins) to get a category and, for a single-action
description, a few description-specific verb phrases. A caption is a subject ("a person", "someone", ...) plus a
verb phrase. Per category, the verb phrases are split into training phrases and held-out phrases: the held-out
sentences never appear in the training data, so prompt adherence can be measured on paraphrases the model has
not seen (metrics.md, "Condition adherence").

A long clip whose description lists several actions ("playground - forward jumps, turn around") does not show
every action in every training window, so its windows get category-level phrasing only.
"""
import re
from dataclasses import dataclass

from .errors import UserError
from .skeleton import SIDES

# Categories that have training data: CMU clips (walk ... reach) and procedural motion (idle ... sit).
CATEGORIES = (
    "walk", "run", "jump", "kick", "punch", "dance", "martial_arts", "climb", "reach",
    "idle", "turn", "wave", "crouch", "sit",
)
SIDED_CATEGORIES = ("turn", "wave")  # their phrases name a side ("{side}"), swapped in the mirrored copy

SUBJECTS = ("a person", "someone", "a man", "a woman", "the person")

# category -> (training verb phrases, held-out verb phrases). "{side}" is filled with "left" or "right".
CATEGORY_PHRASES = {
    "walk": (
        ("walks forward", "is walking", "walks straight ahead", "walks at a steady pace",
         "takes a few steps forward", "walks in a straight line", "strolls forward", "is walking forward calmly"),
        ("walks ahead casually", "goes for a short walk", "moves forward on foot at a normal pace"),
    ),
    "run": (
        ("runs forward", "is running", "jogs forward", "runs straight ahead", "runs at a quick pace",
         "sprints a short distance", "is jogging ahead"),
        ("dashes forward", "runs quickly in a straight line", "breaks into a run"),
    ),
    "jump": (
        ("jumps", "jumps up", "jumps with both feet", "does a jump", "jumps and lands", "hops up and lands",
         "leaps off the ground"),
        ("jumps in the air", "springs up off the ground", "makes a jump and lands softly"),
    ),
    "kick": (
        ("kicks", "kicks with one leg", "does a kick", "throws a kick", "kicks out with a foot",
         "performs a karate kick"),
        ("lifts a leg and kicks", "delivers a kick", "kicks at something in front of them"),
    ),
    "punch": (
        ("punches", "throws a punch", "punches forward", "does a karate punch", "strikes forward with a fist"),
        ("jabs forward with a fist", "delivers a punch", "punches the air"),
    ),
    "dance": (
        ("dances", "is dancing", "dances energetically", "does a dance", "moves to music",
         "performs a dance routine"),
        ("dances to a rhythm", "grooves to the music", "shows some dance moves"),
    ),
    "martial_arts": (
        ("practices karate", "performs martial arts moves", "does a karate form", "goes through karate techniques",
         "trains martial arts"),
        ("practises a martial arts routine", "does fighting moves", "rehearses karate techniques"),
    ),
    "climb": (
        ("climbs", "climbs on playground equipment", "is climbing", "climbs up and over a structure",
         "climbs around on a jungle gym"),
        ("clambers up a climbing frame", "climbs up something", "scrambles up and climbs"),
    ),
    "reach": (
        ("reaches up", "reaches up high", "stretches up to grab something", "reaches for something above",
         "stands on tiptoe and reaches up"),
        ("reaches overhead", "stretches an arm up to take something from a high shelf", "grabs at something overhead"),
    ),
    "idle": (
        ("stands still", "is standing in place", "stands and breathes calmly", "waits while standing",
         "stands idle", "stands relaxed, swaying slightly"),
        ("stands around doing nothing", "remains standing", "stands quietly"),
    ),
    "turn": (
        ("turns to the {side}", "turns {side} in place", "pivots to the {side}", "turns {side} on the spot",
         "rotates to the {side}", "steps around to face {side}"),
        ("turns around to the {side}", "changes direction, turning {side}", "spins slowly to the {side}"),
    ),
    "wave": (
        ("waves with the {side} hand", "waves the {side} hand", "raises the {side} hand and waves",
         "waves hello with the {side} hand", "greets someone by waving the {side} hand"),
        ("waves their {side} hand in the air", "lifts the {side} arm and waves", "waves goodbye with the {side} hand"),
    ),
    "crouch": (
        ("crouches down and stands back up", "squats down and gets up again", "bends the knees into a crouch and rises",
         "crouches, then stands", "does a squat"),
        ("ducks down low and stands up", "lowers into a squat and comes back up", "squats briefly"),
    ),
    "sit": (
        ("sits down and stands up again", "sits down on a chair and gets back up", "takes a seat and then rises",
         "sits down for a moment, then stands", "lowers onto a chair and stands up"),
        ("sits on a chair and then stands up", "has a seat briefly before getting up", "sits down, then gets up"),
    ),
}
assert tuple(CATEGORY_PHRASES) == CATEGORIES


@dataclass(frozen=True)
class Rule:
    """A description part matching `pattern` belongs to `category`; `phrases` say what that part shows."""
    pattern: str
    category: str
    phrases: tuple = ()  # description-specific training verb phrases; empty: the category's own


# First match wins, so specific rules come before general ones ("slow walk" before "walk"). Descriptions of
# the procedural clips ("turn left", "wave right hand", ...) go through the same rules.
RULES = (
    Rule(r"\bslow walk", "walk", ("walks slowly", "walks forward slowly", "is walking at a slow pace",
                                  "takes slow, careful steps forward")),
    Rule(r"\bwalk", "walk"),
    Rule(r"\brun\b|\bjog", "run"),
    Rule(r"forward jump", "jump", ("jumps forward", "does a standing long jump", "jumps forward with both feet",
                                   "leaps forward and lands")),
    Rule(r"jump up to grab", "reach", ("jumps up to grab something overhead",
                                       "jumps up and reaches for something high")),
    Rule(r"\bjump|\bhop", "jump"),
    Rule(r"front kick", "kick", ("does a front kick", "kicks straight forward", "does a karate front kick")),
    Rule(r"mawashigeri|roundhouse", "kick", ("does a roundhouse kick", "swings a leg around in a roundhouse kick",
                                             "does a karate roundhouse kick")),
    Rule(r"yokogeri|side kick", "kick", ("does a side kick", "kicks out sideways", "does a karate side kick")),
    Rule(r"\bkick", "kick"),
    Rule(r"oiduki|oizuki|lunge punch", "punch", ("steps forward and punches", "does a lunge punch",
                                                 "does a karate stepping punch")),
    Rule(r"\bpunch|\bstrike", "punch"),
    Rule(r"gedanbarai|gedan barai|low block", "martial_arts", ("does a karate low block",
                                                               "blocks downward with the forearm",
                                                               "sweeps an arm down in a karate block")),
    Rule(r"syutouuke|shutouke|shuto uke|knife.hand", "martial_arts", ("does a karate knife-hand block",
                                                                       "blocks with an open hand in a karate stance")),
    Rule(r"\bempi\b|\benpi\b|heian|\bkata\b", "martial_arts", ("performs a karate kata",
                                                            "goes through a karate form step by step")),
    Rule(r"karate|martial", "martial_arts"),
    Rule(r"salsa", "dance", ("dances salsa", "does salsa steps", "is dancing salsa")),
    Rule(r"\bdanc|pirouette", "dance"),
    Rule(r"climb", "climb"),
    Rule(r"reach", "reach"),
    Rule(r"\bidle\b", "idle"),
    Rule(r"\bturn (?P<side>left|right)\b", "turn"),
    Rule(r"\bwave (?P<side>left|right)\b", "wave"),
    Rule(r"\bcrouch", "crouch"),
    Rule(r"\bsit down", "sit"),
)


@dataclass(frozen=True)
class Description:
    """What a clip shows: its category and its training captions."""
    category: str
    captions: tuple


def _sentences(phrases, side=None):
    sides = (side,) if side else SIDES
    return tuple(dict.fromkeys(
        f"{subject} {phrase.format(side=s)}." for phrase in phrases for s in sides for subject in SUBJECTS
    ))


def train_captions(category, side=None):
    """Category-level training sentences (both sides of a sided category unless `side` is given)."""
    return _sentences(CATEGORY_PHRASES[category][0], side)


def heldout_captions(category, side=None):
    """Category-level sentences that never appear in the training data (for adherence on paraphrases)."""
    return _sentences(CATEGORY_PHRASES[category][1], side)


def _parts(description):
    """'playground - climb, jump down (x)' -> ['climb', 'jump down', 'playground']: actions first, then context."""
    text = re.sub(r"\(.*?\)", "", description.lower())
    context, _, actions = text.rpartition(" - ")
    parts = [p.strip() for p in re.split(r"[,;]", actions) if p.strip()]
    return parts, context.strip()


def _match(text):
    for rule in RULES:
        found = re.search(rule.pattern, text)
        if found:
            return rule, found.groupdict().get("side")
    return None, None


def describe(description):
    """Category and training captions of a CMU (or procedural) description; UserError when no rule knows it."""
    parts, context = _parts(description)
    for text in parts + ([context] if context else []):
        rule, side = _match(text)
        if rule is not None:
            break
    else:
        raise UserError(f"no caption rule matches the description {description!r}: add a Rule to "
                        f"backend.captions.RULES")
    single_action = len(parts) == 1
    specific = _sentences(rule.phrases, side) if single_action else ()
    return Description(rule.category, specific + train_captions(rule.category, side))


_SIDE_WORD = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def sides_named(text) -> set:
    """The side words in `text`, lower-cased: {'left'}, {'left', 'right'} or none."""
    return {word.lower() for word in _SIDE_WORD.findall(text)}


def mirror_caption(text):
    """Swap 'left' and 'right' (keeping capitals): the caption of the left/right mirrored motion."""
    def swap(found):
        word = found.group(0)
        other = "right" if word.lower() == "left" else "left"
        return other.capitalize() if word[0].isupper() else other
    return _SIDE_WORD.sub(swap, text)
