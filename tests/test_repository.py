"""The tracked files themselves: no merge left half-done."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.MULTILINE)  # "=======" alone is also a heading underline
TEXT_SUFFIXES = {".py", ".md", ".txt", ".yml", ".yaml", ".toml", ".cfg", ".conf", ".html", ".js", ".css", ""}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode == 0:
        paths = [ROOT / line for line in listed.stdout.splitlines()]
    else:  # a source tree without its git directory: every file under the root
        paths = [path for path in ROOT.rglob("*") if ".venv" not in path.parts and ".git" not in path.parts]
    return [path for path in paths if path.is_file() and path.suffix in TEXT_SUFFIXES]


def conflicted(path: Path) -> list[int]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []
    return [text.count("\n", 0, match.start()) + 1 for match in CONFLICT_MARKER.finditer(text)]


def test_no_file_keeps_merge_conflict_markers():
    found = {str(path.relative_to(ROOT)): lines for path in tracked_text_files() if (lines := conflicted(path))}
    assert not found, f"merge conflict markers left in (file: lines): {found}"


def test_the_check_finds_a_marker(tmp_path):
    sample = tmp_path / "doc.md"
    sample.write_text("intro\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n")
    assert conflicted(sample) == [2, 6]
