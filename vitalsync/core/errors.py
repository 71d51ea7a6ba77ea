"""Errors, typed by what the caller does next.

    VitalsyncError
    ├── ConfigError            a person must fix the config file (exit status 2)
    ├── PersonMustAct          retrying will not help: bad credentials, a missing table, a held sync
    │   └── SyncHeld           a sync looked implausible (mass deletion) and was stopped
    ├── RetryLater             transient: the PMS or the network is away; try again with backoff
    └── SendError              a sender could not hand a message over
        ├── PermanentSendError     the message ends failed (invalid number, unsubscribed)
        ├── UnreachableError       this channel cannot reach the patient: fall back to the next one
        ├── TransientSendError     the request never left: retry later
        └── AmbiguousSendError     the request may have left: reconcile, never resend blindly

The docstring of each class is its default message.
"""

from __future__ import annotations


class VitalsyncError(Exception):
    """vitalsync failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(VitalsyncError):
    """The configuration is not valid."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class PersonMustAct(VitalsyncError):
    """A person must act before this can work."""


class SyncHeld(PersonMustAct):
    """The sync was held: it would have removed an implausible share of upcoming appointments."""


class RetryLater(VitalsyncError):
    """A transient failure; the step will be tried again."""


class SendError(VitalsyncError):
    """The message could not be handed to the provider."""


class PermanentSendError(SendError):
    """The provider refused the message for good."""


class UnreachableError(SendError):
    """This channel cannot reach the recipient; the next channel should be tried."""


class TransientSendError(SendError):
    """The request never reached the provider; it can be retried."""

    #: seconds the provider asked us to wait (HTTP Retry-After), when it said
    retry_after: float | None = None


class AmbiguousSendError(SendError):
    """The request may have reached the provider; the outcome must be reconciled."""
