"""The wire format's reader: replies cut into sections by the secret's markers, however the bytes
arrive (a marker split between two reads, a read holding the start of the next reply)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.hostproto import framing
from orchestrator.transport.base import CommandResult, ScriptCall

SECRET = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"

# Section bodies: any bytes, the old markers and a guessed secret's markers among them.
BODIES = st.lists(
    st.sampled_from([b"---cleanup---\n", b"\n0123 exit 0\n", b"\n", b"\xff\x00", b"5ec7e7 "])
    | st.binary(max_size=40),
    max_size=6,
).map(b"".join)
SECTIONS = st.lists(
    st.tuples(st.sampled_from(["probe", "appspec", "cleanup", "lock", "hook"]), BODIES),
    max_size=4,
)


def _reply(output: bytes, sections: list[tuple[str, bytes]], stderr: bytes, status: int) -> bytes:
    data = output + b"".join(framing.marker(SECRET, name) + body for name, body in sections)
    if stderr:
        data += framing.marker(SECRET, "stderr") + stderr
    return data + framing.marker(SECRET, f"exit {status}")


def _read_all(stream: bytes, sizes: list[int], count: int) -> list[CommandResult]:
    chunks = []
    position = 0
    for size in sizes:
        chunks.append(stream[position : position + size])
        position += size
    chunks.append(stream[position:])

    async def read(_: int) -> bytes:
        return chunks.pop(0) if chunks else b""

    async def replies() -> list[CommandResult]:
        reader = framing.RunnerReplies(read, SECRET)
        return [await reader.next() for _ in range(count)]

    return asyncio.run(replies())


@settings(max_examples=200, deadline=None)
@given(
    replies=st.lists(
        st.tuples(BODIES, SECTIONS, BODIES, st.integers(0, 255)), min_size=1, max_size=3
    ),
    sizes=st.lists(st.integers(1, 60), max_size=30),
)
def test_replies_read_back_whatever_the_reads(
    replies: list[tuple[bytes, list[tuple[str, bytes]], bytes, int]], sizes: list[int]
) -> None:
    stream = b"".join(_reply(*reply) for reply in replies)
    results = _read_all(stream, sizes, len(replies))
    for (output, sections, stderr, status), result in zip(replies, results, strict=True):
        assert result.exit_status == status
        assert result.stdout == framing.text(output)
        assert result.stderr == framing.text(stderr)
        assert list(result.frames) == sections


def test_a_stream_that_ends_within_a_reply_is_an_eof() -> None:
    stream = _reply(b"half", [("probe", b"x")], b"", 0)[:-3]
    try:
        _read_all(stream, [], 1)
    except EOFError:
        return
    raise AssertionError("no EOFError")


def test_requests_are_one_line_whatever_the_arguments() -> None:
    call = ScriptCall("lock", ("acquire", "/r it's", "g", "d", "120", "holder=a\nb=`c` $d"))
    request = framing.runner_request((call,), 5)
    assert request.count(b"\n") == 1 and request.startswith(b"5 lock acquire ")
