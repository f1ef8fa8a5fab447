"""Typed user errors and how the command line reports them.

Library code raises these (or the standard ``ValueError``/``TypeError``/``OSError`` that name
expected vs actual values); ``ratmir`` turns every exception into one line on stderr and an
exit code, with the traceback only under ``--debug`` or ``RATMIR_DEBUG=1``:

- exit 2: a configuration or usage error (bad argument or config value, missing device,
  unreadable or missing file, output that would be overwritten, nothing to do);
- exit 1: some inputs failed (the commands that process many files report each failure and
  exit 1 themselves), or an unexpected internal error.
"""

from __future__ import annotations

import os

EXIT_FAILED = 1
EXIT_USAGE = 2
DEBUG_ENV = "RATMIR_DEBUG"


class RatmirError(Exception):
    """Base of ratmir's own errors; ``exit_code`` is what the command line exits with."""

    exit_code = EXIT_USAGE


class UsageError(RatmirError, ValueError):
    """A value, option or file the user gave cannot be used (exit 2). A ``ValueError``, so
    callers that catch ``ValueError`` at public entry points keep working."""


class OutputExistsError(UsageError):
    """An output file or folder exists and ``overwrite`` was not asked for (exit 2)."""


class InputsFailedError(RatmirError):
    """The work failed on its inputs (exit 1): ``ratmir prepare`` reports every error so."""

    exit_code = EXIT_FAILED


def debug_requested() -> bool:
    """True when ``RATMIR_DEBUG`` is set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made a single space."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception escaping a command."""
    if isinstance(exc, RatmirError):
        return exc.exit_code, one_line(str(exc))
    if isinstance(exc, (ValueError, TypeError, OSError)):
        # OSError covers missing/unreadable files (FileNotFoundError, PermissionError, ...);
        # its message names the file.
        return EXIT_USAGE, one_line(str(exc) or type(exc).__name__)
    return EXIT_FAILED, one_line(f"internal error {type(exc).__name__}: {exc} "
                                 f"(rerun with --debug or {DEBUG_ENV}=1 for the traceback)")
