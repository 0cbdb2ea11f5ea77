"""Refresh the README's example outputs by running the commands they show.

A block in README.md between ``<!-- BEGIN output: ARGS -->`` and ``<!-- END output -->`` is
replaced by a ``text`` code block holding ``$ joulecast ARGS`` and what that command prints
today (80 columns, no colour). Run by ``make readme``; the README never quotes a stale output.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- BEGIN output: (?P<args>.*?) -->\n.*?<!-- END output -->", re.DOTALL)


def run(args: str) -> str:
    """What ``joulecast ARGS`` prints (stdout and stderr), at 80 columns."""
    exe = Path(sys.executable).parent / "joulecast"
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        [str(exe), *shlex.split(args)], capture_output=True, text=True, env=env, timeout=600,
        cwd=ROOT,
    )  # fmt: skip
    text = (proc.stdout + proc.stderr).rstrip()
    return "\n".join(line.rstrip() for line in text.splitlines())


def main() -> int:
    path = ROOT / "README.md"
    readme = path.read_text()

    def replace(m: re.Match[str]) -> str:
        args = m.group("args")
        return (
            f"<!-- BEGIN output: {args} -->\n```text\n$ joulecast {args}\n{run(args)}\n```\n"
            "<!-- END output -->"
        )

    new, count = BLOCK.subn(replace, readme)
    path.write_text(new)
    print(f"README.md: {count} example outputs refreshed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
