"""`.env.example` lists every environment variable the code reads, so it cannot drift.

The README says `.env.example` lists the configuration; this test keeps that true. It reads the
code's syntax tree: every `env.<cast>("NAME")` / `environ.Env().<cast>("NAME")` call in the
settings, and every `os.environ.get("NAME")` / `os.environ["NAME"]` read in the application
packages, must name a variable that `.env.example` shows (set, or commented out as `# NAME=`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPLICATION = ["desk", "core", "members", "tickets", "workflows", "portal", "agentdesk",
               "supervision"]  # fmt: skip
ENV_CASTS = {"str", "int", "bool", "float", "list", "dict", "json", "url", "db", "db_url",
             "cache_url", "email_url", "path", "tuple"}  # fmt: skip
EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.M)


def _is_env(node: ast.expr) -> bool:
    """`env` (an environ.Env) or `environ.Env()` written in place."""
    if isinstance(node, ast.Name):
        return node.id == "env"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "Env"
    )


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def variables_read(source: str) -> set[str]:
    """Names of the environment variables a module reads."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver, method = node.func.value, node.func.attr
            if (_is_env(receiver) and method in ENV_CASTS) or (
                _is_os_environ(receiver) and method == "get"
            ):
                name = _first_string(node)
                if name:
                    names.add(name)
        elif (
            isinstance(node, ast.Subscript)
            and _is_os_environ(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def code_reads() -> dict[str, str]:
    """Every variable the application reads, with the first file that reads it."""
    found: dict[str, str] = {}
    for package in APPLICATION:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for name in variables_read(path.read_text()):
                found.setdefault(name, str(path.relative_to(REPO)))
    return found


def example_lists() -> set[str]:
    return set(EXAMPLE_LINE.findall((REPO / ".env.example").read_text()))


def test_the_reader_finds_each_way_the_code_reads_the_environment() -> None:
    source = (
        'import os\nimport environ\nenv = environ.Env()\nA = env.int("ONE", default=1)\n'
        'B = env.list(\n    "TWO", default=[]\n)\nC = environ.Env().str("THREE", default="")\n'
        'D = os.environ.get("FOUR")\nE = os.environ["FIVE"]\nos.environ.setdefault("SIX", "6")\n'
    )
    assert variables_read(source) == {"ONE", "TWO", "THREE", "FOUR", "FIVE"}


def test_env_example_lists_every_variable_the_code_reads() -> None:
    reads = code_reads()
    assert len(reads) > 40  # the reader works on the real settings (about fifty knobs)
    missing = {name: where for name, where in reads.items() if name not in example_lists()}
    assert not missing, f".env.example lacks: {missing}"


def test_env_example_lists_nothing_the_code_does_not_read() -> None:
    stale = example_lists() - set(code_reads())
    assert not stale, f".env.example lists variables no code reads: {sorted(stale)}"


def test_the_readme_promises_what_this_test_keeps() -> None:
    readme = (REPO / "README.md").read_text()
    assert "`.env.example` lists" in readme
