"""Error types shared by every layer, each carrying the CLI exit code of DESIGN.md section 5.

Expected failures raise one of these; the CLI turns them into a one-line message and the
exit code, and the HTTP layers into a 4xx/5xx with a JSON error body.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1          # the job or verification failed
EXIT_USAGE = 2           # usage error or bad input
EXIT_UNREACHABLE = 3     # cannot reach a daemon
EXIT_UNAUTHORISED = 4
EXIT_BAD_CONFIG = 78     # EX_CONFIG: systemd's RestartPreventExitStatus=78 stops restart loops
EXIT_INTERRUPTED = 130


class KgenError(Exception):
    """Base of every expected error. `code` is a stable machine-readable slug."""

    exit_code = EXIT_FAILED
    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadInput(KgenError):
    exit_code = EXIT_USAGE
    code = "bad_input"


class TaskError(BadInput):
    """A task file that cannot be used (syntax error, missing names, Model fails on its inputs...)."""

    code = "bad_task"


class NotFound(BadInput):
    code = "not_found"


class Unreachable(KgenError):
    exit_code = EXIT_UNREACHABLE
    code = "unreachable"


class Unauthorised(KgenError):
    exit_code = EXIT_UNAUTHORISED
    code = "unauthorised"


class ConfigError(KgenError):
    exit_code = EXIT_BAD_CONFIG
    code = "bad_config"


class JobFailed(KgenError):
    exit_code = EXIT_FAILED
    code = "job_failed"
