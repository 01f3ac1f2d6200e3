"""The code's shape against DESIGN §1's guidance: modules over 400 lines, functions over 60.

Run from the repository root: ``python .ci/code_shape.py [--modules N] [--functions N]
[PATH ...]`` (default: ``orchestrator``). A function's length is its lines from the ``def`` (its
decorators excluded) to its last line, docstring and nested functions included; a nested function
is listed on its own too. Exit status 0 whatever it finds: it measures, the lead decides.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path


def python_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        else:
            yield path


def functions(tree: ast.AST) -> Iterator[tuple[str, int, int]]:
    """Every function as (qualified name, first line, length in lines)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                yield name, child.lineno, end - child.lineno + 1
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    return walk(tree, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("orchestrator")])
    parser.add_argument("--modules", type=int, default=400, help="module lines over which to list")
    parser.add_argument("--functions", type=int, default=60, help="function lines to list over")
    args = parser.parse_args()
    big_modules: list[tuple[int, str]] = []
    long_functions: list[tuple[int, str]] = []
    for file in python_files(args.paths):
        text = file.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > args.modules:
            big_modules.append((lines, str(file)))
        for name, line, length in functions(ast.parse(text, str(file))):
            if length > args.functions:
                long_functions.append((length, f"{file}:{line} {name}"))
    print(f"modules over {args.modules} lines: {len(big_modules)}")
    for lines, where in sorted(big_modules, reverse=True):
        print(f"  {lines:5d}  {where}")
    print(f"functions over {args.functions} lines: {len(long_functions)}")
    for length, where in sorted(long_functions, reverse=True):
        print(f"  {length:5d}  {where}")


if __name__ == "__main__":
    main()
