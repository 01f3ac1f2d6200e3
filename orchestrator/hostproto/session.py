"""The host programs as the transport runs them: the ``SessionScript`` a session is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from orchestrator.hostproto import framing
from orchestrator.hostproto.scripts import channel_env, channel_program, runner_program
from orchestrator.transport.base import CommandResult, ReplyStream, ScriptCall


class HostPrograms:
    """The shipped programs (``programs/*.sh``) in the runner or on channels of their own, their
    replies framed by ``framing``."""

    def runner(self) -> str:
        return runner_program()

    def standalone(self, name: str) -> tuple[str, Mapping[str, str]]:
        return channel_program(name), channel_env(name)

    def new_secret(self) -> str:
        return framing.new_secret()

    def runner_input(self, secret: str) -> bytes:
        return framing.secret_line(secret)

    def channel_input(self, secret: str, calls: Sequence[ScriptCall]) -> bytes:
        return framing.channel_input(secret, calls)

    def request(self, calls: Sequence[ScriptCall], stdin_size: int) -> bytes:
        return framing.runner_request(calls, stdin_size)

    def replies(self, read: Callable[[int], Awaitable[bytes]], secret: str) -> ReplyStream:
        return framing.RunnerReplies(read, secret)

    def channel_result(
        self, exit_status: int | None, stdout: bytes, stderr: bytes, secret: str
    ) -> CommandResult:
        return framing.channel_result(exit_status, stdout, stderr, secret)


HOST_PROGRAMS = HostPrograms()
