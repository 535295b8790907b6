"""Errors a duty officer can act on.

Every failure that reaches the CLI or UI is one of these: a one-line message
that says what went wrong and what to do, never a traceback.
"""


class NeocError(Exception):
    """Base class: ``str(err)`` is the whole, user-facing message."""


class InputError(NeocError):
    """The question or file given by the user cannot be used as it is."""


class StoreError(NeocError):
    """The knowledge-base store is missing, locked, corrupt or out of space."""


class StoreUnavailableError(StoreError):
    """The shared knowledge-base server cannot be reached; retry once it is back."""


class ModelError(NeocError):
    """The GGUF model (or reranker) is missing, truncated or not loadable."""


class UnavailableError(ModelError):
    """No language-model server answered; the answer falls back to the documents' own sentences."""


class BusyError(NeocError):
    """All model contexts are in use and the wait timed out; retry shortly."""


class MemoryGuardError(NeocError):
    """Memory is too tight to start new work safely; retry once load drops."""
