"""Prompt weights in AUTOMATIC1111's syntax, read strictly.

`(word)` weighs `word` by 1.1, `[word]` by 1/1.1, `(word:1.3)` by 1.3; groups nest and their
weights multiply (`((word))` is 1.21, `((word:1.3))` 1.43); `\\(`, `\\)`, `\\[`, `\\]` and `\\\\`
are the characters themselves. The parse is A1111's `parse_prompt_attention`, except that where
A1111 quietly makes something of a slip (an unclosed `(`, a stray `]`, `(word:abc)` read as
text, a weight of 5), PartyHub refuses the prompt (`invalid_prompt`) with a sentence naming the
slip. A1111 syntax that is not weights (`[from:to:when]` prompt editing, `[a|b]` alternation,
`AND`, `BREAK`) is refused too, rather than drawn as words it was not meant as.

The weights themselves are applied to the text encoder's output by compel (generation/modes.py);
this module is plain Python, for the web process's checks and token counts as much as the worker.
"""

import re
from dataclasses import dataclass
from fractions import Fraction

from generation.errors import Refused

# Past 2 a weight makes noise of most models' pictures (compel's docs: garbage above about 1.6
# with SD 1.5); 0 removes the words. Refused outside, never clamped.
MIN_WEIGHT, MAX_WEIGHT = 0, 2
UP = Fraction(11, 10)  # A1111's `(word)`; exact fractions, so `[(word)]` is exactly 1
ESCAPES = {"\\(": "(", "\\)": ")", "\\[": "[", "\\]": "]", "\\\\": "\\"}
NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)")
NOT_WEIGHTS = re.compile(r"\b(AND|BREAK)\b")
LITERAL = r" (\( \) \[ \] are the brackets themselves)"


@dataclass(frozen=True)
class Weighted:
    """A prompt read in A1111's syntax: its pieces of text in order, each with its weight (runs
    of one weight joined, as A1111 joins them). Hashable: the embeddings cache keys on it."""

    fragments: tuple  # ((text, weight as float), ...)

    @property
    def text(self):
        """What the text encoder reads: the prompt without its weight syntax."""
        return "".join(text for text, _ in self.fragments)

    @property
    def weighted(self):
        """The pieces whose weight is not 1, in order."""
        return [(text, weight) for text, weight in self.fragments if weight != 1]


def parse(text, field="text"):
    """`text` read in A1111's weight syntax; raises Refused (`invalid_prompt`, naming `field`)
    for syntax it cannot read as written or that is not weights."""
    found = NOT_WEIGHTS.search(text)
    if found:
        raise _refused(
            field,
            f"{found.group(1)} is AUTOMATIC1111's syntax for {_NOT_WEIGHTS[found.group(1)]}, "
            "which PartyHub does not do; write it in lower case to mean the word",
        )
    pieces, groups = [], []  # groups: (bracket, position in text, index of its first piece)
    at = 0
    while at < len(text):
        at = _step(text, at, field, pieces, groups)
    if groups:
        bracket, position, _ = groups[-1]
        raise _refused(
            field, f"the {bracket!r} at character {position + 1} is never closed{LITERAL}"
        )
    return Weighted(_fragments(pieces, field))


_NOT_WEIGHTS = {"AND": "composing prompts", "BREAK": "starting a new chunk of 75 tokens"}


def _step(text, at, field, pieces, groups):
    """Read what starts at `at` into `pieces` and `groups`; returns where the next thing starts."""
    char = text[at]
    if text[at : at + 2] in ESCAPES:
        pieces.append([ESCAPES[text[at : at + 2]], Fraction(1)])
        return at + 2
    if char in "([":
        groups.append((char, at, len(pieces)))
        return at + 1
    if char in ")]":
        _close(text, at, field, pieces, groups, UP if char == ")" else 1 / UP)
        return at + 1
    if char == ":" and groups and groups[-1][0] == "(":
        return _close_weighted(text, at, field, pieces, groups)
    if char in ":|" and groups and groups[-1][0] == "[":
        raise _refused(
            field,
            f"{char!r} inside [...] at character {at + 1} is AUTOMATIC1111's prompt editing "
            "([from:to:when]) or alternation ([a|b]), which PartyHub does not do; square "
            "brackets here only weigh words down",
        )
    end = at + 1
    while end < len(text) and text[end] not in "()[]:|\\":
        end += 1
    pieces.append([text[at:end], Fraction(1)])
    return end


def _close(text, at, field, pieces, groups, factor):
    closer = text[at]
    opener = "(" if closer == ")" else "["
    if not groups:
        raise _refused(field, f"the {closer!r} at character {at + 1} closes nothing{LITERAL}")
    bracket, position, first = groups.pop()
    if bracket != opener:
        raise _refused(
            field,
            f"the {bracket!r} at character {position + 1} is closed by the {closer!r} at "
            f"character {at + 1}",
        )
    _weigh(text[position : at + 1], field, pieces, first, factor)


def _close_weighted(text, at, field, pieces, groups):
    """`(words:1.3)`: the number after the colon is the group's weight, then `)`."""
    number = NUMBER.match(text, at + 1)
    _, position, first = groups[-1]
    if number is None:
        end = text.find(")", at)
        written = text[at + 1 : end] if end != -1 else text[at + 1 :]
        raise _refused(
            field,
            f"the weight after the ':' at character {at + 1} must be a number followed by ')', "
            f"not {written.strip()!r} (a colon inside (...) always starts a weight)",
        )
    weight = Fraction(number.group(1))
    group = text[position : number.end()]
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise _refused(
            field,
            f"the weight {number.group(1)} in {group!r} is outside {MIN_WEIGHT} to {MAX_WEIGHT}",
        )
    groups.pop()
    _weigh(group, field, pieces, first, weight)
    return number.end()


def _weigh(group, field, pieces, first, factor):
    """Multiply the weights of the group's pieces (those from `first` on) by `factor`."""
    if not "".join(text for text, _ in pieces[first:]).strip():
        raise _refused(field, f"{group!r} weighs no words")
    for piece in pieces[first:]:
        piece[1] *= factor


def _fragments(pieces, field):
    """Runs of one weight joined. A weighed piece of only spaces is dropped: it is no tokens,
    and compel, finding no token to weigh down, would fail. Every weight, nested groups'
    products included, must stay within MIN_WEIGHT and MAX_WEIGHT."""
    joined = []
    for text, weight in pieces:
        if joined and joined[-1][1] == weight:
            joined[-1][0] += text
        else:
            joined.append([text, weight])
    for text, weight in joined:
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise _refused(
                field,
                f"{text.strip()!r} is weighed {float(weight):.3g} by its nested groups, outside "
                f"{MIN_WEIGHT} to {MAX_WEIGHT}",
            )
    return tuple((text, float(weight)) for text, weight in joined if text.strip() or weight == 1)


def _refused(field, why):
    return Refused("invalid_prompt", f"{field}, read with prompt weights: {why}.")
