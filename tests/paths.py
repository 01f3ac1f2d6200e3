"""Paths the tests share."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELLO_WEB = REPO / "playbooks" / "hello-web"
