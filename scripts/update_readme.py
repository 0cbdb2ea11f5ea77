"""Copy the headline tables of docs/accuracy.md into README.md (between marker comments).

Run by ``make accuracy`` after ``joulecast validate --markdown docs/accuracy.md`` so that the
README quotes generated numbers only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN generated accuracy -->", "<!-- END generated accuracy -->"
# Section headings of docs/accuracy.md whose first table the README quotes.
QUOTED = (
    "## Targets",
    "## End-to-end accuracy",
    "### The power model alone",
    "### fp32 rows",
    "## DVFS",
    "## H100 serving",
)


def first_table(markdown: str, heading: str) -> str:
    """The heading line and the first Markdown table under it."""
    start = markdown.find(heading)
    if start < 0:
        raise SystemExit(f"error: docs/accuracy.md has no section '{heading}'")
    lines = markdown[start:].splitlines()
    title = lines[0].lstrip("#").strip()
    table = []
    for line in lines[1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return f"**{title}**\n\n" + "\n".join(table)


def main() -> int:
    accuracy = (ROOT / "docs" / "accuracy.md").read_text()
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"error: README.md lacks the markers {BEGIN} / {END}", file=sys.stderr)
        return 1
    body = "\n\n".join(first_table(accuracy, h) for h in QUOTED)
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    readme_path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{body}\n{END}", readme))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
