"""The README and docs/*.md as the tests read them: sections, fenced blocks, links, headings.

A fenced block's info string says what it holds: `sh` commands, anything else (`text`, `json`,
`yaml`, `promql`) output or configuration. A command block either starts with a comment line
`# example: ...` (an example to adapt, never run by the tests) or holds commands the tests run
exactly as printed; command() finds one of those for the test that runs it. The same holds for
the program's command lines printed in the prose.
"""
import re

from harness import REPO

EXAMPLE_MARK = "# example:"
FENCE = re.compile(r"^( *)```([^\n`]*)\n(.*?)^\1```[ \t]*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def doc_files():
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def text(path):
    return path.read_text(encoding="utf-8")


def blocks(path):
    """[(info, body)] of the fenced blocks of `path`, the indentation of list items removed."""
    found = []
    for match in FENCE.finditer(text(path)):
        indent = len(match.group(1))
        body = "".join(line[indent:] if line.startswith(" " * indent) else line
                       for line in match.group(3).splitlines(True))
        found.append((match.group(2).strip(), body))
    return found


def prose(path):
    """The text of `path` without its fenced blocks (whose lines may look like headings)."""
    return FENCE.sub("", text(path))


def anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {anchor(line.lstrip("#")) for line in prose(path).splitlines()
            if re.match(r"#{1,6} ", line)}


def links(path):
    return LINK.findall(prose(path))


INLINE_COMMAND = re.compile(r"`((?:\./pyNetConnMon\.py|python3 (?:-I )?-m py_compile) [^`\n]+)`")


def exact_commands():
    """{command line: the file that prints it} for every line of the command blocks that are not
    marked as examples (comment lines left out), and for the commands printed in the prose that
    start the program or compile it (a `...` in one says it is left out on purpose)."""
    found = {}
    for path in doc_files():
        for line in INLINE_COMMAND.findall(prose(path)):
            if "..." not in line:
                found.setdefault(line, path.relative_to(REPO).as_posix())
        for info, body in blocks(path):
            if info != "sh" or body.startswith(EXAMPLE_MARK):
                continue
            for line in body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    found.setdefault(line.strip(), path.relative_to(REPO).as_posix())
    return found


def command(containing):
    """The exactly printed command line `containing`, or the one line that contains it."""
    printed = exact_commands()
    if containing in printed:
        return containing
    lines = [line for line in printed if containing in line]
    assert len(lines) == 1, "%d printed commands contain %r: %s" % (len(lines), containing, lines)
    return lines[0]


def readme_section(title):
    """The text of README.md under '## title', up to the next '## '."""
    body = text(REPO / "README.md").split("\n## %s\n" % title, 1)[1]
    return body.split("\n## ", 1)[0]
