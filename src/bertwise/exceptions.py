"""The package's exceptions.

Every error a user can cause derives from :class:`BertwiseError`; the CLI prints its message on one line and exits
with status 2, without a traceback. They also derive from the built-in the caller would expect (``ValueError``,
``FileNotFoundError``), so generic handlers keep working.
"""

from __future__ import annotations


class BertwiseError(Exception):
    """Base class of the errors bertwise raises for bad input or configuration."""


class DataError(BertwiseError, ValueError):
    """The data set cannot be used as given: the message names the file, row or column, what was expected and found."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file or folder does not exist."""


class ModelError(BertwiseError, ValueError):
    """The backbone cannot be loaded or does not suit the requested strategy."""


class ConfigError(BertwiseError, ValueError):
    """A hyperparameter or option is out of its allowed range."""
