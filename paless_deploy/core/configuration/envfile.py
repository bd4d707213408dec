"""Env files (paless.env), read strictly and never executed.

python-dotenv's parser reads the lines; this module says what a person used to the old
script (which `source`d its env files) must know:
- a line that is not `KEY=value` (no `=`, an unterminated quote, a key that is not a name)
  is an error naming file:line (it was silently dropped); a secret's value is never quoted;
- a UTF-8 byte-order mark and CRLF line ends are read as a shell would; a binary file or a
  directory is named for what it is;
- `${OTHER}` and `${OTHER:-default}` are expanded, as the shell did (from the values that
  win at that point: the environment, else the files read so far, else earlier lines);
- `$(command)` and backticks are never run, and a bare `$NAME` is not expanded: both are
  kept literally with a warning naming file:line and the variable (never the value);
- single-quoted values are literal, as in the shell.

Pure: a file's bytes arrive as an `EnvFileText` (adapters.files reads them).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.errors import shown as shown_value

_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
_COMMAND = re.compile(r"\$\(|`")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SHOWN = 60


@dataclass(frozen=True)
class Entry:
    """One `KEY=value` line."""

    key: str
    value: str
    line: int
    literal: bool  # single-quoted: no expansion, as in the shell


@dataclass(frozen=True)
class EnvFileText:
    """One env file as read from disk: its bytes, or why it could not be read."""

    DIRECTORY: ClassVar[str] = "directory"

    path: Path
    shown: str  # the path as messages show it (relative to the project when inside it)
    data: bytes = b""
    problem: str | None = None  # DIRECTORY, or the system's reason it could not be read


@dataclass
class EnvFile:
    """The entries of one file, in order, and the warnings its shell habits deserve."""

    shown: str  # the path as messages show it
    entries: list[Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes, shown: str) -> str:
    """The file's text: UTF-8 (a BOM dropped), CRLF read as LF; ConfigError for binary."""
    if b"\x00" in data:
        raise ConfigError(f"Env file {shown} is not a text file (it contains NUL bytes).",
                          "Pass the env file (KEY=value lines), not a binary.",
                          code="bad-env-file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Env file {shown} is not UTF-8 text (byte {exc.start} cannot be "
                          "read).", "Save it as UTF-8 (KEY=value lines).",
                          code="bad-env-file") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str, shown: str, secret: Callable[[str], bool] = lambda key: False) -> EnvFile:
    """Every KEY=value line; ConfigError naming file:line for the first one that is not (a
    line without `=`, an unterminated quote, a key a shell would not take). A secret's
    value (`secret(key)`) is never quoted in the message."""
    from dotenv.parser import parse_stream

    env = EnvFile(shown)
    for binding in parse_stream(io.StringIO(text)):
        # A binding's text starts with the blank and comment lines before it.
        string = binding.original.string
        lead = len(string) - len(string.lstrip())
        line = binding.original.line + string[:lead].count("\n")
        source = string.strip()
        if binding.error or (binding.key is not None and binding.value is None):
            why = ("an unterminated quote" if source.count('"') % 2 or source.count("'") % 2
                   else "not KEY=value")
            raise _bad_line(shown, line, why, source, secret)
        if binding.key is None:
            continue  # a comment or a blank line
        if not _KEY.match(binding.key):
            raise ConfigError(
                f"{shown}:{line}: {_quoted(binding.key)} is not a variable name.",
                "Names are letters, digits and _, not starting with a digit (as in a shell), "
                "e.g. POSTGRES_PASSWORD=...", code="bad-env-file")
        after = source.split("=", 1)[1].strip() if "=" in source else ""
        env.entries.append(Entry(binding.key, binding.value or "", line,
                                 literal=after.startswith("'")))
    return env


def _bad_line(shown: str, line: int, why: str, source: str,
              secret: Callable[[str], bool]) -> ConfigError:
    key = source.split("=", 1)[0].removeprefix("export ").strip() if "=" in source else ""
    quoted = (f"{key}=... (the value is not shown)" if key and secret(key)
              else _quoted(source))
    return ConfigError(
        f"{shown}:{line}: {why}: {quoted}.",
        "Write one KEY=value per line (quote values with spaces: KEY=\"a b\"); comments "
        "start with #." + (" A line without '=' is refused: a shell would run it as a command."
                           if "=" not in source else ""), code="bad-env-file")


def _quoted(text: str) -> str:
    return shown_value(text, MAX_SHOWN)


def expand(env: EnvFile, known: Callable[[str], str | None], wanted: Callable[[str], bool],
           secret: Callable[[str], bool] = lambda key: False) -> dict[str, tuple[str, int]]:
    """The file's values for the keys `wanted` accepts, `${OTHER}` expanded from `known`
    (what wins before this file) and the file's earlier lines, with warnings appended to
    `env.warnings` for what the shell would have done differently. key -> (value, line)."""
    mine: dict[str, str] = {}
    result: dict[str, tuple[str, int]] = {}

    def lookup(name: str) -> str | None:
        found = known(name)
        return found if found is not None else mine.get(name)

    for entry in env.entries:
        value = entry.value
        where = f"{env.shown}:{entry.line}"
        if not entry.literal:
            if _COMMAND.search(value):
                env.warnings.append(
                    f"{where}: {entry.key} holds a command substitution ($(...) or backticks): "
                    "env files are read, never run, so it is kept as written. Put the "
                    "command's output in the file, or export the variable before running "
                    "paless-deploy.")
            value = _BRACED.sub(lambda m: _expanded(m, lookup), value)
            bare = [m.group(1) for m in _BARE.finditer(_BRACED.sub("", entry.value))]
            if bare:
                # the name after $ is part of the value: never shown for a secret
                named = "a bare $NAME" if secret(entry.key) else f"${bare[0]}"
                braced = "${NAME}" if secret(entry.key) else f"${{{bare[0]}}}"
                env.warnings.append(
                    f"{where}: {entry.key} uses {named} without braces: it is kept as written "
                    f"(the old script's shell expanded it). Write {braced} to expand it, or "
                    "quote the value with single quotes to keep it literal.")
        mine[entry.key] = value
        if wanted(entry.key):
            result[entry.key] = (value, entry.line)
    return result


def _expanded(match: re.Match[str], lookup: Callable[[str], str | None]) -> str:
    value = lookup(match.group(1))
    default = match.group(2)
    if value:
        return value
    return default if default is not None else (value or "")


def read(file: EnvFileText, secret: Callable[[str], bool] = lambda key: False) -> EnvFile:
    """Parse one env file as read; ConfigError naming a directory, an unreadable file."""
    shown = file.shown
    if file.problem == EnvFileText.DIRECTORY:
        raise ConfigError(f"Env file {shown} is a directory.",
                          "Pass the path of an env file (KEY=value lines).",
                          code="bad-env-file")
    if file.problem is not None:
        raise ConfigError(f"Cannot read env file {shown}: {file.problem}.",
                          "Check the file's permissions.", code="bad-env-file")
    return parse(decode(file.data, shown), shown, secret)
