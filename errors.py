"""Errors that are the user's to fix: reported by the command line without a traceback."""

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake of the user's (a missing file, an unknown target, a bad grid...); the
    message says what was given and what is allowed."""
