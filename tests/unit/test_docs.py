"""The documentation: the README is the front page, and docs/ builds into a site with --strict.

`make docs` (run by .ci/run) builds the same site; building it here too means `make test`
alone catches a broken link, a missing anchor or a page left out of the nav.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dependency_names() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    names = []
    for spec in specs:
        found = re.match(r"[A-Za-z0-9_.-]+", spec)
        assert found, spec
        names.append(found.group(0).lower())
    return sorted(set(names))


def readme_dependency_column() -> str:
    """The first column of the README's "Dependencies, and why" table, lower-cased."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Dependencies, and why\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    rows = re.findall(r"^\| ([^|]+) \| [^|]+ \|$", section, flags=re.MULTILINE)
    assert len(rows) > 10, "no dependency table in the README"
    return "\n".join(rows).lower()


def test_the_readme_says_why_for_every_dependency() -> None:
    column = readme_dependency_column()
    missing = [
        name
        for name in dependency_names()
        if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", column)
    ]
    assert missing == []


def test_the_site_builds_strict_with_the_readme_as_its_home(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    home = (site / "index.html").read_text()
    # The README itself, its links to docs/ pages made relative to the site's home.
    assert "A five-minute tour" in home and "Dependencies, and why" in home
    assert 'href="users/strategies.html"' in home
    assert (site / "contributors" / "architecture.html").is_file()
