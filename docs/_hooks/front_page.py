"""The site's home page is README.md, so the front page is written once (mkdocs hook).

The README links to the site's pages as ``docs/<page>.md`` (what works on GitHub); on the
site those pages sit beside the home page, so the hook drops the ``docs/`` prefix. Every
link of the README is then checked by ``mkdocs build --strict`` like any other page's.
"""

from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return README.read_text(encoding="utf-8").replace("](docs/", "](")
