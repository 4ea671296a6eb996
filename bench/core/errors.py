"""Errors of bad input: each message says what is wrong and what to do; the command lines print
it as one line and exit with EXIT_BAD_INPUT."""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class BadInput(ValueError):
    """Anything a user gave that cannot be used; the command lines catch this one type."""


class MethodError(BadInput):
    """A method cannot be created as asked; the message says why."""


class DataNotFoundError(BadInput, FileNotFoundError):
    """A data set is missing or incomplete; the message says what, where and how to get it."""


class MaskError(BadInput):
    """A mask or mask folder that cannot be used; the message says why."""


MAX_ERROR_LINE = 1000  # characters of a printed refusal: one line a person reads, whatever it lists


def error_line(error: BaseException | str) -> str:
    """`error: …` on one line of at most MAX_ERROR_LINE characters (a cut says how much it left
    out): every command line prints its refusals through this."""
    text = " ".join(str(error).split())
    if len(text) > MAX_ERROR_LINE:
        left = len(text) - MAX_ERROR_LINE
        text = f"{text[:MAX_ERROR_LINE]}… ({left:,} characters more)"
    return f"error: {text}"
