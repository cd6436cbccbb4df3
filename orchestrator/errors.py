"""One error root for the whole platform.

Every error raised on purpose by regsandbox derives from :class:`RegSandboxError`, and
most also derive from the built-in that describes them best, so callers may catch either
``RegSandboxError`` or the standard type (``ValueError``, ``LookupError``, ``TimeoutError``).
"""

from __future__ import annotations


class RegSandboxError(Exception):
    """Root of every error regsandbox raises deliberately."""


class SpecError(RegSandboxError, ValueError):
    """A trial spec (or another user document) is malformed.

    ``problems`` holds one human-readable line per problem, each naming the field path.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class PolicyError(RegSandboxError, ValueError):
    """A policy profile is malformed or inconsistent."""


class DataError(RegSandboxError, ValueError):
    """Trial data could not be produced, verified or validated."""


class PackError(DataError):
    """An evaluation pack is unknown, or its manifest or items are malformed."""


class TemplateError(RegSandboxError, LookupError):
    """A sandbox template is unknown or its image cannot be built."""


class ModelError(RegSandboxError, LookupError):
    """The candidate model cannot be resolved or fetched."""


class BackendError(RegSandboxError, RuntimeError):
    """An isolation backend failed to provision, deploy or tear down a sandbox."""


class BackendUnavailableError(BackendError):
    """The isolation backend's engine does not answer (no Docker engine, no cluster)."""


class IsolationError(BackendError):
    """The isolation probes showed a protection the backend claims is not in force."""


class SandboxTimeoutError(BackendError, TimeoutError):
    """A sandbox did not become healthy, or an operation on it did not finish, in time."""


class GatewayError(RegSandboxError, RuntimeError):
    """The developer endpoint gateway failed to start or forward."""


class TrialFailedError(RegSandboxError, RuntimeError):
    """A trial stopped before producing its evidence; the report says where and why."""


class InjectedFaultError(TrialFailedError):
    """A failure injected on purpose (``REGSANDBOX_FAIL_AT``) to drill teardown paths."""


class TrialCancelledError(RegSandboxError):
    """The trial was cancelled (from the Prefect UI or API, the portal, or Ctrl-C)."""


class AuthenticationError(RegSandboxError, PermissionError):
    """No valid credentials: a wrong password, an unknown or revoked token, an expired session."""


class AccessDeniedError(RegSandboxError, PermissionError):
    """The caller is known but may not do this (another sponsor's trial, the wrong role)."""


class NotFoundError(RegSandboxError, LookupError):
    """The thing asked for does not exist, or the caller may not know that it does."""


class RateLimitedError(RegSandboxError, RuntimeError):
    """A caller sent more requests than its limit allows; it may try again shortly."""


class ConflictError(RegSandboxError, ValueError):
    """The request is well formed but the state forbids it (a trial already started, a window closed)."""


class UnavailableError(RegSandboxError, ConnectionError):
    """A service the platform relies on (the Prefect server) does not answer or is not configured."""


class TooLargeError(RegSandboxError, ValueError):
    """An upload or request body exceeds the platform's limit."""


class TrustError(RegSandboxError, ValueError):
    """A report from another sandbox is refused: its issuer is not trusted, or its bytes were altered."""
