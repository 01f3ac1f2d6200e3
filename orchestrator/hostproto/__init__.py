"""The host protocol: the POSIX sh programs run on hosts (``programs/*.sh``), which decide
conflicts, removals and locks there, and the one place on the controller that knows them.

- ``scripts``: the programs' text, as the runner holds them or as a channel of their own runs one.
- ``framing``: how a request reaches the runner and how a reply is cut into sections.
- ``requests``: a frozen dataclass per request, rendering its arguments (``argv``, ``call``).
- ``replies``: a dataclass per reply with its StrEnum states and keys, parsed and rendered;
  ``holder``: who holds a group's lock (``LockHolder``), as requests send it and replies say it.
- ``install_stream``: the Install step's instructions as ``install.sh`` reads them on stdin.
- ``session``: all of it as the ``SessionScript`` a transport runs (``HOST_PROGRAMS``).
"""

from __future__ import annotations

from orchestrator.hostproto.session import HOST_PROGRAMS

__all__ = ["HOST_PROGRAMS"]
