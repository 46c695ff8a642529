"""Errors of the spend journal, hung under llmswitch's one tree (see :mod:`llmswitch.errors`).

    LLMSwitchError
     └── JournalError              the journal could not write a record, or is not open
          └── JournalLockedError   another process has the journal's directory open

A database outage is never an error here: the shipper waits it out and the journal keeps the records.
"""

from __future__ import annotations

from llmswitch.errors import LLMSwitchError


class JournalError(LLMSwitchError):
    """The journal could not make a record durable (disk full, I/O error), or it is not open.

    ``directory`` is the journal's directory.
    """

    def __init__(self, message: str, *, directory: str) -> None:
        super().__init__(message)
        self.directory = directory


class JournalLockedError(JournalError):
    """Another process (or another :class:`Journal` in this one) has the journal's directory open.

    Each gateway process needs a directory of its own.
    """
