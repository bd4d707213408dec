"""Strict readers of what CI platforms read, written from the platforms' own rules.

Used by the unit tests (formatting) and the sandbox tests (what a real run wrote):

- GitHub workflow commands: actions/runner `ActionCommand.TryParseV2` (`::name k=v,k=v::data`,
  `%25 %0D %0A` in data, also `%3A %2C` in properties).
- GITHUB_OUTPUT: actions/runner `EnvFileKeyValuePairs` (`name=value`, or `name<<DELIMITER`
  ... a line equal to DELIMITER; the first `=` or `<<` decides; anything else is an error).
- GitLab dotenv reports: `Ci::ParseDotenvArtifactService` (`^(.*?)=(.*)$` per line, both
  stripped, keys `[A-Za-z0-9_]+`, no blank lines, under 5 KiB, at most 20 variables on
  the smallest plan).
- GitLab log sections: `\\e[0Ksection_start:<unix time>:<name>[options]\\r\\e[0K<header>` and
  `\\e[0Ksection_end:<unix time>:<name>\\r\\e[0K`.
"""

from __future__ import annotations

import re

COMMANDS = {"group", "endgroup", "error", "warning", "notice", "debug", "stop-commands",
            "add-mask", "echo"}
DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


class FormatError(AssertionError):
    """What the platform would refuse."""


def _unescape(text: str, mapping: tuple[tuple[str, str], ...]) -> str:
    for token, value in mapping:
        text = text.replace(token, value)
    return text


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """(command, properties, data) of one workflow command line, as the runner reads it."""
    if "\n" in line or "\r" in line:
        raise FormatError(f"a workflow command spans lines: {line!r}")
    message = line.lstrip()
    if not message.startswith("::"):
        raise FormatError(f"not a workflow command: {line!r}")
    end = message.find("::", 2)
    if end < 0:
        raise FormatError(f"no closing '::': {line!r}")
    info = message[2:end]
    name, _, props_text = info.partition(" ")
    if name not in COMMANDS:
        raise FormatError(f"unknown command {name!r}: {line!r}")
    props: dict[str, str] = {}
    for part in props_text.strip().split(","):  # the runner trims the property list
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise FormatError(f"malformed property {part!r} in {line!r}")
        if ":" in value:  # would have ended the command info early
            raise FormatError(f"unescaped ':' in property {part!r}")
        props[key] = _unescape(value, PROPERTY_ESCAPES)
    return name, props, _unescape(message[end + 2:], DATA_ESCAPES)


def parse_github_output(text: str) -> dict[str, str]:
    """name -> value of a GITHUB_OUTPUT (or GITHUB_ENV) file, by the runner's algorithm."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        raise FormatError("the file does not end with a newline")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, here = line.find("="), line.find("<<")
        if eq >= 0 and (here < 0 or eq < here):
            name, value = line.split("=", 1)
            if not name:
                raise FormatError(f"empty name: {line!r}")
            values[name] = value
        elif here >= 0:
            name, delimiter = line.split("<<", 1)
            if not name or not delimiter:
                raise FormatError(f"empty name or delimiter: {line!r}")
            body: list[str] = []
            while True:
                if i >= len(lines):
                    raise FormatError(f"matching delimiter not found: {delimiter!r}")
                current = lines[i]
                i += 1
                if current == delimiter:
                    break
                body.append(current)
            values[name] = "\n".join(body)
        else:
            raise FormatError(f"invalid format: {line!r}")
    return values


DOTENV_LINE = re.compile(r"^(.*?)=(.*)$")
DOTENV_KEY = re.compile(r"^[a-zA-Z0-9_]+$")
DOTENV_MAX_BYTES = 5 * 1024
DOTENV_MAX_VARIABLES = 20


def parse_gitlab_dotenv(text: str) -> dict[str, str]:
    """KEY -> value as GitLab reads a dotenv report (and refuses one)."""
    if len(text.encode()) >= DOTENV_MAX_BYTES:
        raise FormatError("dotenv report too big")
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = DOTENV_LINE.match(line)
        if match is None:
            raise FormatError(f"Invalid Format: {line!r}")
        key, value = match.group(1).strip(), match.group(2).strip()
        if not DOTENV_KEY.match(key):
            raise FormatError(f"invalid key {key!r}")
        if not value:
            raise FormatError(f"empty value for {key}")
        values[key] = value
    if len(values) > DOTENV_MAX_VARIABLES:
        raise FormatError("too many dotenv variables")
    return values


SECTION = re.compile(r"^\x1b\[0Ksection_(start|end):(\d+):([A-Za-z0-9_.-]+)(\[[^\]]*\])?"
                     r"\r\x1b\[0K(.*)$")


def gitlab_sections(log: str) -> list[tuple[str, str, str]]:
    """(name, header, 'closed') of every section in a job log; strict about nesting and
    about marker lines that do not match GitLab's format."""
    open_: list[tuple[str, str]] = []
    done: list[tuple[str, str, str]] = []
    for line in log.split("\n"):
        if "section_start" not in line and "section_end" not in line:
            continue
        match = SECTION.match(line)
        if match is None:
            raise FormatError(f"malformed section marker: {line!r}")
        kind, _, name, _, header = match.groups()
        if kind == "start":
            open_.append((name, header))
        else:
            if not open_ or open_[-1][0] != name or header:
                raise FormatError(f"section_end without its start: {line!r}")
            done.append((*open_.pop(), "closed"))
    if open_:
        raise FormatError(f"sections never closed: {open_}")
    return done
