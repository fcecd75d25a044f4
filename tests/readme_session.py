"""Run the README's console sessions against a live server and compare every answer with the README.

Reusable against any deployment: ``assert_readme_session(base_url, workdir)`` (or ``run_readme_session``
for the list of steps and their problems). The README's ```console blocks are read in order; in them:

- ``$ curl ...`` (with ``\\`` continuation lines, pipes and all) is run as printed, through bash, with
  real curl, after putting the server's base URL in place of ``localhost:8000``;
- ``$ cat FILE`` writes FILE into ``workdir`` with the block's lines, so later commands can send it.

Each answer is then compared with the lines the README shows below the command:

- with ``curl -i``: the status line, and every header shown (present, with the same value);
- the body: JSON with the same keys and types, recursively, and the same values; CSV with the same
  header, rows and cells; anything else, the same text.

Values that differ on every run are matched by their form: RFC 1123 dates match any date, and the
README's ids (24 hex digits) and etags (40 hex digits) are bound to the live ones the first time an
answer shows them. After that, a bound id or etag must come back as the same live value, and it is put in
place of the README's one in every later command (``If-Match``, the item's URL, ...).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
README_HOST = "localhost:8000"

TOKEN = re.compile(r"\b(?:[0-9a-f]{40}|[0-9a-f]{24})\b")  # an etag or an ObjectId, as the README prints them
DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
DATE_PATTERN = DATE.pattern
CAT = re.compile(r"^cat\s+(\S+)$")


@dataclass
class Step:
    """One ``$ ...`` command of the README, what it showed, and what the live run found."""

    line: int  # the README line of the command
    command: str
    expected: list[str]
    output: str = ""
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shown = "\n".join(f"    {problem}" for problem in self.problems)
        return f"README line {self.line}: $ {self.command}\n{shown}\n  live answer:\n{_indent(self.output)}"


def _indent(text: str) -> str:
    return "\n".join("    | " + line for line in text.splitlines()[:40])


def parse_console_blocks(text: str) -> list[Step]:
    """Every ``$ `` command of the README's ```console blocks, with the lines shown under it."""
    steps: list[Step] = []
    in_block = False
    current: Step | None = None
    continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not in_block:
            in_block = line.strip() == "```console"
            continue
        if line.strip() == "```":
            in_block, current = False, None
            continue
        if continued and current is not None:
            current.command += "\n" + line
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            current = Step(line=number, command=line[2:], expected=[])
            steps.append(current)
            continued = line.endswith("\\")
        elif current is not None:
            current.expected.append(line)
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


class Bindings:
    """README ids and etags bound to the live ones."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}  # README value -> live value

    def substitute(self, text: str) -> str:
        return TOKEN.sub(lambda match: self.live.get(match.group(0), match.group(0)), text)

    def match(self, expected: str, actual: str) -> str | None:
        """None when ``actual`` has the form of ``expected``, binding its new ids and etags; else why not."""
        tokens: list[str] = []
        pattern = []
        position = 0
        for found in re.finditer(f"{TOKEN.pattern}|{DATE_PATTERN}", expected):
            pattern.append(re.escape(expected[position : found.start()]))
            if DATE.fullmatch(found.group(0)):
                pattern.append(DATE_PATTERN)
            else:
                tokens.append(found.group(0))
                pattern.append(f"([0-9a-f]{{{len(found.group(0))}}})")
            position = found.end()
        pattern.append(re.escape(expected[position:]))
        matched = re.fullmatch("".join(pattern), actual)
        if matched is None:
            return f"expected {expected!r}, got {actual!r}"
        for readme_value, live_value in zip(tokens, matched.groups(), strict=True):
            bound = self.live.get(readme_value)
            if bound is None:
                if live_value in self.live.values():
                    return f"{readme_value} is new in the README, but the live {live_value} was seen before"
                self.live[readme_value] = live_value
            elif bound != live_value:
                return f"{readme_value} was bound to {bound}, and now the answer has {live_value}"
        return None


def compare_json(expected: Any, actual: Any, bindings: Bindings, where: str = "body") -> list[str]:
    """Same keys, same types, same values (ids, etags and dates by their form), recursively."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {type(actual).__name__}"]
        problems = []
        if set(expected) != set(actual):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            problems.append(f"{where}: keys differ: missing {missing}, not in the README {extra}")
        for key in expected:
            if key in actual:
                problems += compare_json(expected[key], actual[key], bindings, f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {type(actual).__name__}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        return [
            problem
            for index, (one, other) in enumerate(zip(expected, actual, strict=True))
            for problem in compare_json(one, other, bindings, f"{where}[{index}]")
        ]
    if type(expected) is not type(actual):
        return [f"{where}: expected {type(expected).__name__} {expected!r}, got {type(actual).__name__} {actual!r}"]
    if isinstance(expected, str):
        problem = bindings.match(expected, actual)
        return [f"{where}: {problem}"] if problem else []
    if isinstance(expected, float):
        return [] if math.isclose(expected, actual, rel_tol=1e-9) else [f"{where}: expected {expected}, got {actual}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def compare_body(expected: str, actual: str, bindings: Bindings) -> list[str]:
    if not expected.strip():
        return [] if not actual.strip() else [f"expected no body, got {actual[:200]!r}"]
    try:
        shown = json.loads(expected)
    except ValueError:
        shown = None
    if shown is not None:
        try:
            answered = json.loads(actual)
        except ValueError:
            return [f"expected a JSON body, got {actual[:200]!r}"]
        return compare_json(shown, answered, bindings)
    expected_rows = list(csv.reader(io.StringIO(expected)))
    actual_rows = list(csv.reader(io.StringIO(actual)))
    if len(expected_rows) > 1 and len(expected_rows[0]) > 1:  # CSV: a header and rows
        if [expected_rows[0]] != actual_rows[:1]:
            return [f"CSV header: expected {expected_rows[0]}, got {actual_rows[:1]}"]
        if len(expected_rows) != len(actual_rows):
            return [f"CSV: expected {len(expected_rows) - 1} rows, got {len(actual_rows) - 1}"]
        problems = []
        for number, (shown_row, row) in enumerate(zip(expected_rows[1:], actual_rows[1:], strict=True), start=1):
            if len(shown_row) != len(row):
                problems.append(f"CSV row {number}: expected {len(shown_row)} cells, got {len(row)}")
                continue
            for column, one, other in zip(expected_rows[0], shown_row, row, strict=True):
                problem = bindings.match(one, other)
                if problem:
                    problems.append(f"CSV row {number}, {column}: {problem}")
        return problems
    problem = bindings.match(expected.strip(), actual.strip())
    return [problem] if problem else []


def compare(step: Step, output: str, bindings: Bindings, base_url: str) -> list[str]:
    """The README's lines for ``step`` against curl's output."""
    shown = "\n".join(step.expected).replace(f"http://{README_HOST}", base_url)
    output = output.replace("\r\n", "\n")
    if not shown.startswith("HTTP/"):
        return compare_body(shown, output, bindings)
    shown_head, _, shown_body = shown.partition("\n\n")
    head, _, body = output.partition("\n\n")
    status, *headers = shown_head.splitlines()
    live_status, *live_headers = head.splitlines() or [""]
    problems = [] if status == live_status else [f"status: expected {status!r}, got {live_status!r}"]
    answered = {}
    for line in live_headers:
        name, _, value = line.partition(":")
        answered[name.strip().lower()] = value.strip()
    for line in headers:
        name, _, value = line.partition(":")
        if name.strip().lower() not in answered:
            problems.append(f"header {name.strip()}: missing")
            continue
        problem = bindings.match(value.strip(), answered[name.strip().lower()])
        if problem:
            problems.append(f"header {name.strip()}: {problem}")
    return problems + compare_body(shown_body, body, bindings)


def run_readme_session(
    base_url: str,
    workdir: Path,
    readme: Path = README,
    timeout: float = 30,
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[Step]:
    """Run every console command of ``readme`` against ``base_url`` (e.g. http://127.0.0.1:8123) in
    ``workdir``; each step carries its problems (none: it answered as the README shows). ``prefix`` runs
    each command through another command (``ip netns exec NS``: where a proxy publishes the port), with
    ``env`` as its environment (``CURL_HOME``, for a ``.curlrc`` that sends an API key)."""
    assert shutil.which("curl"), "curl is not installed: `make test` installs it (as root), or apt-get install curl"
    base_url = base_url.rstrip("/")
    bindings = Bindings()
    steps = parse_console_blocks(readme.read_text())
    for step in steps:
        wrote = CAT.match(step.command.strip())
        if wrote:
            (workdir / wrote.group(1)).write_text("\n".join(step.expected) + "\n")
            step.output = "(written)"
            continue
        command = bindings.substitute(step.command).replace(README_HOST, base_url)
        try:
            result = subprocess.run(
                [*prefix, "bash", "-c", command],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=None if env is None else dict(env),
            )
        except subprocess.TimeoutExpired:
            step.problems.append(f"no answer within {timeout} s")
            continue
        step.output = result.stdout
        if result.returncode != 0:
            step.problems.append(f"exit status {result.returncode}: {result.stderr.strip()[:300]}")
        step.problems += compare(step, result.stdout, bindings, base_url)
    return steps


def assert_readme_session(
    base_url: str,
    workdir: Path,
    readme: Path = README,
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[Step]:
    """Run the README's session against ``base_url``; fail naming every step that answered otherwise."""
    steps = run_readme_session(base_url, workdir, readme, prefix=prefix, env=env)
    assert steps, f"{readme} has no console session"
    failed = [step for step in steps if step.problems]
    assert not failed, "the README's session answered otherwise:\n\n" + "\n\n".join(s.describe() for s in failed)
    return steps


def rewrite_readme_session(base_url: str, workdir: Path, readme: Path = README) -> int:
    """Run the README's session against ``base_url`` and write each live answer in place of the one shown (for
    a change of model or fields: `make readme-session`); the README's ids and etags become the live ones.
    Returns the steps whose answer changed. A ``curl -i`` answer keeps the headers the README chose to show."""
    base_url = base_url.rstrip("/")
    lines = readme.read_text().splitlines()
    bindings = Bindings()
    changed = 0
    for step in reversed(_run_plain(base_url, workdir, readme, bindings)):
        new = _shown_answer(step, base_url)
        if new != step.expected:
            changed += 1
            start = step.line + step.command.count("\n")  # the first line under the command's last one
            lines[start : start + len(step.expected)] = new
    text = bindings.substitute("\n".join(lines) + "\n")
    readme.write_text(text)
    return changed


def _run_plain(base_url: str, workdir: Path, readme: Path, bindings: Bindings) -> list[Step]:
    """The steps with their live output; ids and etags bound in the order the README and the answer show them."""
    steps = parse_console_blocks(readme.read_text())
    for step in steps:
        wrote = CAT.match(step.command.strip())
        if wrote:
            (workdir / wrote.group(1)).write_text("\n".join(step.expected) + "\n")
            step.output = "\n".join(step.expected)
            continue
        command = bindings.substitute(step.command).replace(README_HOST, base_url)
        result = subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=30)
        step.output = result.stdout.replace("\r\n", "\n").replace(base_url, f"http://{README_HOST}")
        shown, live = TOKEN.findall("\n".join(step.expected)), TOKEN.findall(step.output)
        for readme_value, live_value in zip(shown, live, strict=False):
            bindings.live.setdefault(readme_value, live_value)
    return steps


def _shown_answer(step: Step, base_url: str) -> list[str]:
    if CAT.match(step.command.strip()):
        return step.expected
    if not step.expected or not step.expected[0].startswith("HTTP/"):
        return step.output.rstrip("\n").splitlines()
    head, _, body = step.output.partition("\n\n")
    status, *headers = head.splitlines()
    live = {line.partition(":")[0].strip().lower(): line for line in headers}
    shown_head = [line for line in step.expected[1:] if line.strip()][: len(step.expected)]
    kept = []
    for line in shown_head:
        if not line.strip() or line.startswith("{") or line.startswith("["):
            break
        kept.append(live.get(line.partition(":")[0].strip().lower(), line))
    return [status, *kept, *([""] + body.rstrip("\n").splitlines() if body.strip() else [])]
