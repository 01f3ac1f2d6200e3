"""CodeDeploy's error codes of a lifecycle event (the API's ``LifecycleErrorCode``, the agent's
script errors: codedeploy-semantics §4.3), as a deployment records them in its diagnostics and
the hook programs report them."""

from __future__ import annotations

from enum import StrEnum


class LifecycleErrorCode(StrEnum):
    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"  # the agent's code 1
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"  # 2: chmod +x failed
    SCRIPT_TIMED_OUT = "ScriptTimedOut"  # 3
    SCRIPT_FAILED = "ScriptFailed"  # 4: a non-zero exit
    UNKNOWN_ERROR = "UnknownError"  # 5: anything else (download, install, an appspec, a host)
