"""Every `drsn-edge ...` command line the README and docs/*.md show parses with the CLI's own parser.

Like Polygraphy running the examples of its README: a renamed flag or sub-command breaks this
test instead of the reader's first try. Lines are taken from fenced code blocks and from inline
code spans; a trailing backslash continues a line; shell comments, redirections and pipes end it.
Only parsing happens here (nothing runs), so placeholders such as MODEL.onnx are fine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from drsn_edge.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_SHELL_ENDS = {"|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1"}


def command_lines(text: str) -> list[str]:
    """``drsn-edge ...`` lines of shell code blocks (continuations joined) and of inline code spans.

    A fenced block holding box-drawing characters is a diagram, not a shell session. Inline spans
    come back wrapped in ``[...]``: prose names a command there (`drsn-edge run`) without all the
    arguments it needs, so it is checked as a synopsis.
    """
    found: list[str] = []
    block: list[str] | None = None
    for raw in text.splitlines():
        if raw.strip().startswith("```"):
            if block is None:
                block = []
            else:
                if all(ch.isascii() for line in block for ch in line):
                    found += _block_commands(block)
                block = None
        elif block is not None:
            block.append(raw.strip())
        else:
            found += [f"[{m}]" for m in re.findall(r"`(drsn-edge [^`]+)`", raw)]
    return found


def _block_commands(lines: list[str]) -> list[str]:
    found, pending = [], ""
    for raw in lines:
        line = pending + raw.removeprefix("$ ")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("drsn-edge "):
            found.append(line)
    return found


def argv_of(line: str) -> list[str]:
    """The arguments after ``drsn-edge``, up to the first shell operator or comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    for word in lexer:
        if word in _SHELL_ENDS or set(word) <= set("|&;<>"):
            break
        words.append(word)
    return words[1:]


def _cases() -> list[tuple[str, str]]:
    return [(f"{doc.name}: {line}", line) for doc in DOCS for line in command_lines(doc.read_text())]


def _words(line: str) -> list[str]:
    """Arguments of a line, optional ``[...]`` parts and ``...`` placeholders opened up."""
    opened = line.replace("[", " ").replace("]", " ").replace("...", " ")
    return argv_of(opened.strip())


CASES = _cases()


def test_the_docs_show_commands_at_all() -> None:
    assert len(CASES) >= 30 and any(line.startswith("drsn-edge run ") for _, line in CASES)
    assert _words("[drsn-edge bench daemon [--pin-cpu 1] ...]") == ["bench", "daemon", "--pin-cpu", "1"]


def _subparser(words: list[str]) -> tuple[argparse.ArgumentParser, int]:
    """The (sub-)parser the leading command words select, and how many words named it."""
    parser, used = build_parser(), 0
    for word in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser, used = sub.choices[word], used + 1
    return parser, used


def is_synopsis(line: str) -> bool:
    """A usage line with placeholders ([optional] parts, ...), not a command to type as is."""
    return "[" in line or "..." in line


@pytest.mark.parametrize("line", [line for _, line in CASES], ids=[case for case, _ in CASES])
def test_documented_command_parses(line: str) -> None:
    argv = _words(line)
    parser, used = _subparser(argv)
    assert used >= 1, f"{line!r}: {argv[:1]} is not a drsn-edge command"
    unknown = [w.split("=")[0] for w in argv[used:] if re.match(r"^--?[A-Za-z]", w)
               and w.split("=")[0] not in parser._option_string_actions]
    assert unknown == [], f"{line!r}: no such option(s) {unknown}"
    if is_synopsis(line):
        return  # placeholders: the command and every option it names exist, which is all it claims
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:  # --help/--version exit 0; a parse error exits 2
            assert exc.code == 0, f"{line!r} does not parse: {stderr.getvalue().strip().splitlines()[-1:]}"


def test_the_extractor_on_a_hand_written_page() -> None:
    page = (
        "Run `drsn-edge validate-config x.yaml` first, then `drsn-edge run`.\n"
        "```bash\n$ drsn-edge export onnx run.ckpt \\\n    -o m.onnx  # the export\n"
        "drsn-edge validate-config --reference > docs/configuration.md\nmake test\n```\n"
    )
    lines = command_lines(page)
    assert lines == [
        "[drsn-edge validate-config x.yaml]",
        "[drsn-edge run]",
        "drsn-edge export onnx run.ckpt  -o m.onnx  # the export",
        "drsn-edge validate-config --reference > docs/configuration.md",
    ]
    assert argv_of(lines[2]) == ["export", "onnx", "run.ckpt", "-o", "m.onnx"]
    assert argv_of(lines[3]) == ["validate-config", "--reference"]
    assert command_lines("```\ndrsn-edge export ──► device\n```\n") == []  # a diagram
