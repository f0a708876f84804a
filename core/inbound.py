"""Where client bytes become Python values: JSON parsed once, checked once, for every transport.

JSON can carry values that Python takes but nothing downstream can: a lone UTF-16 surrogate
(`"\\ud800"`) decodes into a `str` that PostgreSQL, SQLite, tokenizers and `zipfile` cannot
encode, a NUL that PostgreSQL cannot store, `NaN` and `Infinity` (not JSON, but Python's parser
takes them), numbers of thousands of digits, nesting past the parser's recursion limit. Each is
refused here with one stable code, for every string and key at any depth, before any code that
would choke on it (or store it, and break every page that reads it later) sees the message.
"""

import json
import math
import time

from core.errors import ApiError, RateLimited

# Deeper than any message of the protocol needs (params sit at depth 2), far below the parser's
# recursion limit: a message nested a thousand levels is refused, not a RecursionError.
MAX_DEPTH = 32
# The most a client message may be, as UTF-8.
MAX_MESSAGE_BYTES = 64 * 1024
# Longer than any id, seed or count the protocol takes (2^64 has 20 digits); Python itself
# refuses to convert more than 4300.
MAX_NUMBER_DIGITS = 40


def parse_json(data):
    """The JSON value of `data` (str or UTF-8 bytes); ApiError `invalid_json`, `too_deep` or
    `invalid_character` when it cannot be taken as it is."""
    try:
        value = json.loads(
            data,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise too_deep() from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise ApiError("invalid_json", "The data is not JSON (RFC 8259, UTF-8).") from None
    return refuse_unstorable(value)


def refuse_unstorable(value):
    """Returns `value` if every string in it (keys too, at any depth) can be stored and encoded
    as UTF-8 and it nests at most MAX_DEPTH levels; else raises ApiError. Walks without
    recursion, so no structure can make the check itself fail."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise too_deep()
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return value


def check_text(text):
    """Refuses a NUL (PostgreSQL cannot store it) and a lone surrogate (not a character: no
    encoding can write it) anywhere in `text`."""
    if "\x00" in text:
        raise ApiError("invalid_character", "Text may not contain NUL (\\u0000) characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(
            "invalid_character",
            f"Text may not contain a lone UTF-16 surrogate (\\u{ord(text[error.start]):04x}): "
            "it is half of a character.",
        ) from None
    return text


def whole_number(text, high):
    """`text` (a query parameter) as a whole number from 0 to `high`, or None. ASCII digits only
    ("²" is a digit to `str.isdigit`, not to `int`), and no more digits than `high` has: Python
    refuses to convert a string of thousands of them at all."""
    if text.isascii() and text.isdigit() and len(text) <= len(str(high)) and int(text) <= high:
        return int(text)
    return None


def too_deep():
    return ApiError("too_deep", f"JSON may nest at most {MAX_DEPTH} levels deep.")


def _refuse_constant(name):
    raise ApiError("invalid_json", f"{name} is not a JSON number.")


def _finite_float(text):
    number = float(text)
    if not math.isfinite(number):
        raise ApiError("invalid_json", f"The number {text[:20]}... is too large.")
    return number


def _bounded_int(text):
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ApiError(
            "invalid_json", f"Numbers may have at most {MAX_NUMBER_DIGITS} digits, not {len(text)}."
        )
    return int(text)


class OverBudget(RateLimited):
    """A connection sent more than its budget; `wait` is exactly how long until it may send
    again (`retry_after` rounds it up to whole seconds)."""

    def __init__(self, wait):
        super().__init__(math.ceil(wait), "messages on this connection")
        self.wait = wait


class Budget:
    """How much one connection may send: a token bucket of messages and one of bytes, each
    refilled at its rate up to its burst. A message over either is refused, not delayed."""

    def __init__(self, messages_per_second, message_burst, bytes_per_second, byte_burst):
        self.buckets = [
            _Bucket(messages_per_second, message_burst),
            _Bucket(bytes_per_second, byte_burst),
        ]

    def charge(self, size):
        """Takes one message of `size` bytes from the budget, or raises OverBudget (and takes
        nothing) when the connection has sent more than it may."""
        now = time.monotonic()
        messages, data = self.buckets
        wait = max(messages.wait(1, now), data.wait(size, now))
        if wait > 0:
            raise OverBudget(wait)
        messages.take(1)
        data.take(size)


class _Bucket:
    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def wait(self, wanted, now):
        """Seconds until `wanted` tokens are there (0: now), after refilling up to `now`."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return max(0.0, (wanted - self.tokens) / self.rate)

    def take(self, wanted):
        self.tokens -= wanted
