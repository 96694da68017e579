"""README and CI agree: .ci/run runs the README's test command verbatim (after installing the
browser the `tracknet label` end-to-end tests drive)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    text = (ROOT / ".ci/run").read_text()
    browser = re.search(r"^if .*?^fi$", text, flags=re.S | re.M)
    assert browser is not None and "apt-get install -y -q chromium" in browser.group(0)
    rest = text[: browser.start()] + text[browser.end() :]
    ci_lines = [line for line in rest.splitlines() if line and not line.startswith(("#", "set ", "cd ", "export "))]
    assert len(ci_lines) == 1
    assert ci_lines[0] in (ROOT / "README.md").read_text()
