"""Per-host configuration files: the appspec's ``templates`` rendered with Jinja2 on the
controller, one set per host (pure: text in, text out).

Why a sandbox: a template comes from a revision, which anyone who can push to the repository
writes; the sandbox keeps it from reaching Python internals (``__class__``, ``__globals__``) on the
operator's machine. Why ``StrictUndefined``: a misspelt variable must stop the deployment before
any host is touched, not install an empty ``port =`` on every host.

What a template sees::

    vars        the host's ``vars`` (also at the top level: ``{{ http_port }}``)
    host        name, address, port, user, zone, tags, vars
    group       application, name, id
    deployment  id, revision (the bundle's sha256), description

A host var named like one of the four objects is reachable only through ``vars``.
"""

from __future__ import annotations

import io
import math
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConfigIssue, TemplateRenderError
from orchestrator.install_plan import rendered_member
from orchestrator.models.hosts import HostSpec
from orchestrator.models.results import Deployment
from orchestrator.revision import Revision

RESERVED_NAMES = frozenset({"vars", "host", "group", "deployment"})
# A rendered file is configuration: a few KB. The cap keeps a runaway loop in a template from
# filling the controller's memory once per host.
MAX_RENDERED_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class GroupContext:
    application: str
    name: str
    id: str


@dataclass(frozen=True)
class DeploymentContext:
    id: str
    revision: str
    description: str = ""


def context_for(
    host: HostSpec, group: GroupContext, deployment: DeploymentContext
) -> dict[str, Any]:
    """The names a template of ``host`` sees (the module docstring lists them)."""
    shared = {key: value for key, value in host.vars.items() if key not in RESERVED_NAMES}
    return {
        **shared,
        "vars": dict(host.vars),
        "host": {
            "name": host.name,
            "address": host.address or host.name,
            "port": host.port or 22,
            "user": host.user,
            "zone": host.zone,
            "tags": dict(host.tags),
            "vars": dict(host.vars),
        },
        "group": {"application": group.application, "name": group.name, "id": group.id},
        "deployment": {
            "id": deployment.id,
            "revision": deployment.revision,
            "description": deployment.description,
        },
    }


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with ``*`` and ``**`` checked before they run: a rendering's
    size is checked as it streams out, but ``{{ "x" * 10**10 }}`` would take the memory in one
    step, before any output."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if (
                    isinstance(sized, str | list | tuple | bytes)
                    and isinstance(count, int)
                    and len(sized) * count > MAX_RENDERED_BYTES
                ):
                    raise SecurityError(
                        f"a repetition of {len(sized)} x {count} is more than "
                        f"{MAX_RENDERED_BYTES} (the cap on a rendering)"
                    )
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * math.log2(abs(left)) > MAX_POWER_BITS
        ):
            raise SecurityError(f"{left} ** {right} is more than {MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)


MAX_POWER_BITS = 4096  # a number in a config file; a bigger power is a runaway, not a value


def _environment() -> ImmutableSandboxedEnvironment:
    # keep_trailing_newline: a config file keeps the newline its template ends with.
    return _BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


class TemplateRenderer:
    """Compiles each template once and renders it for as many hosts as asked."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        """``sources``: template path in the bundle -> its text."""
        self._environment = _environment()
        self._texts = dict(sources)
        self._compiled: dict[str, Template] = {}

    def check_syntax(self) -> list[ConfigIssue]:
        """Every template's syntax errors, with their lines; no host needed."""
        issues = []
        for path in sorted(self._texts):
            try:
                self._template(path)
            except TemplateSyntaxError as exc:
                issues.append(ConfigIssue(path, exc.lineno, "", f"template syntax: {exc.message}"))
        return issues

    def _template(self, path: str) -> Template:
        if path not in self._compiled:
            self._compiled[path] = self._environment.from_string(self._texts[path])
        return self._compiled[path]

    def render(self, path: str, host: str, context: Mapping[str, Any]) -> bytes:
        """``path`` rendered for ``host``; raise ``TemplateRenderError`` naming the template,
        its line and the host."""
        try:
            text = _bounded_render(self._template(path), context)
        except _TooBig as exc:
            raise _error(
                path, None, host, f"renders to more than {MAX_RENDERED_BYTES} bytes"
            ) from exc
        except TemplateSyntaxError as exc:
            raise _error(path, exc.lineno, host, f"template syntax: {exc.message}") from exc
        except UndefinedError as exc:
            raise _error(path, _line_of(exc), host, str(exc.message)) from exc
        except SecurityError as exc:
            raise _error(path, _line_of(exc), host, f"not allowed: {exc}") from exc
        except TemplateError as exc:
            raise _error(path, _line_of(exc), host, str(exc.message or exc)) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise _error(path, _line_of(exc), host, f"{type(exc).__name__}: {exc}") from exc
        data = text.encode()
        if len(data) > MAX_RENDERED_BYTES:
            raise _error(
                path, None, host, f"renders to {len(data)} bytes, more than {MAX_RENDERED_BYTES}"
            )
        return data


class _TooBig(Exception):
    pass


def _bounded_render(template: Template, context: Mapping[str, Any]) -> str:
    """The rendering, streamed and stopped at the cap: a runaway loop costs the cap, not the
    controller's memory."""
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)  # characters: at most as many as the bytes they encode to
        if size > MAX_RENDERED_BYTES:
            raise _TooBig
        chunks.append(chunk)
    return "".join(chunks)


def _error(path: str, line: int | None, host: str, message: str) -> TemplateRenderError:
    return TemplateRenderError([ConfigIssue(path, line, "", f"host {host}: {message}")])


def _line_of(exc: BaseException) -> int | None:
    """The template line a render error was raised on: Jinja2 compiles a template to Python
    whose frames carry the template's own line numbers under the file name ``<template>``."""
    traceback = exc.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


MAX_TEMPLATE_BYTES = 1024 * 1024  # a template is a config file's source, read whole


def template_sources(revision: Revision) -> dict[str, str]:
    """The text of each of the revision's templates, read from its normalised bundle."""
    wanted = {mapping.source for mapping in revision.appspec.model.templates}
    if not wanted:
        return {}
    texts: dict[str, str] = {}
    with tarfile.open(revision.tar_path) as bundle:
        for path in sorted(wanted):
            entry = revision.entry(path)
            member = bundle.getmember(path) if entry is not None and entry.kind == "file" else None
            data = bundle.extractfile(member) if member is not None else None
            if data is None:  # the install plan names the missing one with its line
                continue
            if member is not None and member.size > MAX_TEMPLATE_BYTES:
                raise _error(path, None, "-", f"over {MAX_TEMPLATE_BYTES} bytes")
            try:
                texts[path] = data.read().decode()
            except UnicodeDecodeError as exc:
                raise _error(path, None, "-", f"not UTF-8 text: {exc}") from exc
    return texts


def rendered_archives(
    revision: Revision,
    hosts: Sequence[HostSpec],
    group: GroupContext,
    deployment: DeploymentContext,
) -> dict[str, bytes]:
    """Each host's renderings of the revision's templates as the tar the host unpacks (a
    directory per template, by its index in the appspec, holding its rendering named as its
    destination); empty without templates. Every host is rendered before any is contacted: the
    first error raises ``TemplateRenderError``."""
    mappings = revision.appspec.model.templates
    if not mappings:
        return {}
    renderer = TemplateRenderer(template_sources(revision))
    issues = renderer.check_syntax()
    if issues:
        raise TemplateRenderError(issues)
    now = int(time.time())  # a new mtime: Install's quick check never keeps an older rendering
    archives = {}
    for host in hosts:
        context = context_for(host, group, deployment)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for index, mapping in enumerate(mappings):
                data = renderer.render(mapping.source, host.name, context)
                folder = tarfile.TarInfo(str(index))
                folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, now
                archive.addfile(folder)
                info = tarfile.TarInfo(rendered_member(index, mapping.destination))
                info.size, info.mode, info.mtime = len(data), 0o644, now
                archive.addfile(info, io.BytesIO(data))
        archives[host.name] = out.getvalue()
    return archives


def rendered_for(
    revision: Revision, hosts: Sequence[HostSpec], deployment: Deployment
) -> dict[str, bytes]:
    """``rendered_archives`` for ``deployment`` of ``revision`` to ``hosts``."""
    if not revision.appspec.model.templates:
        return {}
    return rendered_archives(
        revision,
        hosts,
        GroupContext(deployment.application, deployment.group, deployment.group_id),
        DeploymentContext(deployment.deployment_id, revision.sha256, deployment.description or ""),
    )
