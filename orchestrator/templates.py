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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ConfigIssue, TemplateRenderError
from orchestrator.models.hosts import HostSpec

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


def _environment() -> ImmutableSandboxedEnvironment:
    # keep_trailing_newline: a config file keeps the newline its template ends with.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


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
            text = self._template(path).render(context)
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
