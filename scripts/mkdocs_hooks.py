"""MkDocs hook: the site's home page is the README itself (one front door), with its links to docs/ made
relative to the site and its links to files outside the site shown as paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

README = Path(__file__).resolve().parent.parent / "README.md"


def home_page() -> str:
    text = README.read_text()
    text = text.replace("](docs/", "](")
    # CONTRIBUTING.md, CHANGELOG.md and the like live beside the README, not in the site.
    return re.sub(r"\[([^\]]+)\]\(([A-Z][A-Z_]*\.md)\)", r"`\2`", text)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "index.md", content=home_page()))
    return files
