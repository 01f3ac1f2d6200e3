"""What one lifecycle step came to: whether it succeeded, why not, its output and warnings."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.models.error_codes import LifecycleErrorCode
from orchestrator.models.results import Diagnostics, capped_output, log_tail
from orchestrator.transport.base import CommandResult


@dataclass
class StepOutcome:
    ok: bool
    diagnostics: Diagnostics | None = None
    output: str = ""
    warnings: tuple[str, ...] = ()
    ignored_failure: bool = False


def command_outcome(result: CommandResult) -> StepOutcome:
    """DownloadBundle and Install: their output is the log; stderr's end explains a failure."""
    output = result.stdout + result.stderr
    kept = capped_output(output, False, "the rest was not kept")
    if result.ok:
        return StepOutcome(True, output=kept)
    message = result.stderr.strip()[-1000:] or f"exit status {result.exit_status}"
    return StepOutcome(
        False,
        Diagnostics(LifecycleErrorCode.UNKNOWN_ERROR, message=message, log_tail=log_tail(output)),
        kept,
    )
