"""Reading a Dockerfile as a builder does, for what the tool decides from it: the images
its FROM lines start from (build arguments substituted, where each stands in the text),
its stages, and what its COPY and ADD instructions take from the build context.

Pure: the Dockerfile's text arrives as a value. Logical lines are joined at the escape
character (`\\`, or the one a `# escape=` directive names) as BuildKit joins them, and
every word keeps its offsets in the text, so a FROM can be rewritten in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Word:
    """One word of an instruction and where it stands in the Dockerfile's text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Instruction:
    """One logical line: its keyword (upper-case), its words, and its first line number."""

    keyword: str
    words: tuple[Word, ...]  # the arguments, without the keyword
    line: int


@dataclass(frozen=True)
class FromLine:
    """A FROM instruction: the image as the builder resolves it, and where it is written."""

    image: str  # build arguments substituted (`${BASE}` -> its value)
    word: Word  # the image as written, with its offsets
    stage: str | None  # the name after AS, lower-cased
    line: int
    stage_ref: bool = False  # True when `image` names an earlier stage, not an image

    @property
    def is_image(self) -> bool:
        """True when the FROM starts from an image (not `scratch`, not an earlier stage)."""
        return not self.stage_ref and self.image.lower() != "scratch" and bool(self.image)


@dataclass(frozen=True)
class CopyLine:
    """A COPY or ADD instruction: what it takes (from the context, unless `from_stage`),
    where it puts it, in which stage, and the working directory it resolves `dest` in."""

    keyword: str  # COPY or ADD
    sources: tuple[str, ...]  # as written, relative to the context (or to `from_stage`)
    dest: str
    stage: int  # index of the stage it belongs to (0: the first FROM's)
    from_stage: str | None  # --from=<stage, image or context>: not the build context
    line: int
    options: tuple[str, ...] = ()  # its other --flags (--chown, --chmod, --link, ...)
    workdir: str | None = None  # WORKDIR at that point; None: the base image's, unknown


@dataclass(frozen=True)
class Stage:
    """One stage: what it starts FROM, its COPY/ADD lines, its working directory and the
    process its image runs (ENTRYPOINT and CMD; None where it keeps its base's)."""

    index: int
    source: FromLine
    parent: int | None  # the earlier stage it starts FROM; None: an image (or scratch)
    copies: tuple[CopyLine, ...]
    workdir: str | None
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None


def _directives(text: str) -> list[tuple[int, str, str]]:
    """(line, name lower-cased, value) of the parser directives: they come first, and the
    first line that is not one (a comment, a blank line, an instruction) ends them, as
    BuildKit reads them."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(line.strip()) if line.strip() else None
        if not match:
            break
        found.append((number, match.group(1).lower(), match.group(2)))
    return found


def syntax_directive(dockerfile_text: str) -> tuple[int, str] | None:
    """(line, image) of a `# syntax=<image>` parser directive, None when there is none."""
    return next(((number, value) for number, name, value in _directives(dockerfile_text)
                 if name == "syntax" and value), None)


def _escape_char(text: str) -> str:
    return next((value for _, name, value in _directives(text)
                 if name == "escape" and value in ("`", "\\")), "\\")


def instructions(text: str) -> list[Instruction]:
    """Every instruction of the Dockerfile, comments and blank lines dropped."""
    escape = _escape_char(text)
    result: list[Instruction] = []
    words: list[Word] = []
    i, n, line = 0, len(text), 1
    first_line = 1
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start:
            # a comment line, between instructions or inside a continued one, is dropped
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "#":
                while j < n and text[j] != "\n":
                    j += 1
                i, line = j + 1, line + 1
                continue
            if not words:
                first_line = line
        at_line_start = False
        if c == "\n":
            line += 1
            at_line_start = True
            if words:
                result.append(Instruction(words[0].text.upper(), tuple(words[1:]), first_line))
                words = []
            i += 1
            continue
        if c == escape and _continues(text, i + 1):
            j = i + 1
            while j < n and text[j] in " \t\r":
                j += 1
            i = j + 1  # past the newline
            line += 1
            at_line_start = True
            continue
        if c in " \t\r":
            i += 1
            continue
        start = i
        while i < n and text[i] not in " \t\r\n" and not (
                text[i] == escape and _continues(text, i + 1)):
            i += 1
        words.append(Word(text[start:i], start, i))
    if words:
        result.append(Instruction(words[0].text.upper(), tuple(words[1:]), first_line))
    return result


def _continues(text: str, i: int) -> bool:
    """True when only spaces stand between `i` and the end of the line (an escaped newline)."""
    while i < len(text) and text[i] in " \t\r":
        i += 1
    return i < len(text) and text[i] == "\n"


def expand(word: str, args: Mapping[str, str]) -> str:
    """`$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}` with these values."""
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = args.get(name, "")
        if match.group(2) == "-":
            return value or match.group(3)
        if match.group(2) == "+":
            return match.group(3) if value else ""
        return value

    return _VARIABLE.sub(substitute, word)


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" \
        else value


def arg_defaults(text: str) -> dict[str, str]:
    """The ARGs declared before the first FROM that carry a default, and their defaults."""
    found: dict[str, str] = {}
    for ins in instructions(text):
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            for word in ins.words:
                name, sep, default = word.text.partition("=")
                if sep:
                    found[name] = _unquote(default)
    return found


def from_lines(text: str, build_args: Mapping[str, str]) -> list[FromLine]:
    """Every FROM of the Dockerfile, with the ARGs declared before the first FROM (their
    defaults, or the build arguments given) substituted, as the builder resolves them."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[FromLine] = []
    for ins in instructions(text):
        if ins.keyword == "ARG" and not found:
            for word in ins.words:
                name, sep, default = word.text.partition("=")
                args[name] = build_args.get(name, _unquote(default) if sep else "")
        elif ins.keyword == "FROM":
            rest = [w for w in ins.words if not w.text.startswith("--")]
            if not rest:
                continue
            image = expand(rest[0].text, args)
            stage = rest[2].text.lower() if len(rest) >= 3 and rest[1].text.upper() == "AS" \
                else None
            found.append(FromLine(image, rest[0], stage, ins.line,
                                  stage_ref=image.lower() in stages))
            if stage:
                stages.add(stage)
    return found


def base_images(text: str, build_args: Mapping[str, str]) -> list[str]:
    """Images named by FROM lines (ARGs substituted), once each, without scratch and stage
    names."""
    return list(dict.fromkeys(f.image for f in from_lines(text, build_args) if f.is_image))


def dockerfile_stages(text: str) -> list[str]:
    """Stage names (`FROM ... AS <name>`), lower-cased, in order."""
    return [f.stage for f in from_lines(text, {}) if f.stage]


def stages(text: str, build_args: Mapping[str, str]) -> list[Stage]:
    """Every stage of the Dockerfile, in order, with what it inherits from the stage it
    starts FROM (working directory, ENTRYPOINT, CMD) resolved. Heredoc sources (`<<EOF`)
    are no files of the context and are left out; the JSON form (`["a", "b"]`) is read."""
    froms = iter(from_lines(text, build_args))
    done: list[Stage] = []
    current: Stage | None = None
    for ins in instructions(text):
        if ins.keyword == "FROM":
            if current is not None:
                done.append(current)
            current = _new_stage(next(froms), done)
        elif current is not None:
            current = _apply(ins, current)
    if current is not None:
        done.append(current)
    return done


def _new_stage(source: FromLine, done: list[Stage]) -> Stage:
    parent = next((s for s in reversed(done) if source.stage_ref and
                   s.source.stage == source.image.lower()), None)
    if parent is not None:
        return Stage(len(done), source, parent.index, (), parent.workdir, parent.entrypoint,
                     parent.cmd)
    return Stage(len(done), source, None, (), "/" if source.image == "scratch" else None,
                 None, None)


def _apply(ins: Instruction, stage: Stage) -> Stage:
    """The stage after one instruction, as far as the tool tracks it."""
    if ins.keyword == "WORKDIR" and ins.words:
        path = ins.words[0].text
        base = stage.workdir
        return replace(stage, workdir=path if path.startswith("/") else (
            None if base is None else base.rstrip("/") + "/" + path))
    if ins.keyword == "ENTRYPOINT":
        return replace(stage, entrypoint=_command(ins), cmd=())  # an ENTRYPOINT resets CMD
    if ins.keyword == "CMD":
        return replace(stage, cmd=_command(ins))
    if ins.keyword not in ("COPY", "ADD"):
        return stage
    options = [w.text for w in ins.words if w.text.startswith("--")]
    paths = _paths(ins)
    if len(paths) < 2 or any(p.startswith("<<") for p in paths):
        return stage
    source_stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")),
                        None)
    copy = CopyLine(ins.keyword, tuple(paths[:-1]), paths[-1], stage.index, source_stage,
                    ins.line, tuple(o for o in options if not o.startswith("--from=")),
                    stage.workdir)
    return replace(stage, copies=(*stage.copies, copy))


def _command(ins: Instruction) -> tuple[str, ...]:
    """ENTRYPOINT/CMD as the argv Docker runs: the JSON form as written, the shell form
    under `/bin/sh -c`."""
    joined = " ".join(w.text for w in ins.words)
    if joined.startswith("["):
        try:
            value = json.loads(joined)
        except ValueError:
            value = None
        if isinstance(value, list):
            return tuple(str(v) for v in value)
    return ("/bin/sh", "-c", joined) if joined else ()


def copy_lines(text: str) -> list[CopyLine]:
    """Every COPY and ADD of every stage, in order."""
    return [c for stage in stages(text, {}) for c in stage.copies]


def _paths(ins: Instruction) -> list[str]:
    words = [w.text for w in ins.words if not w.text.startswith("--")]
    joined = " ".join(words)
    if joined.startswith("["):
        try:
            value = json.loads(joined)
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []
    return words


def image_chain(text: str, build_args: Mapping[str, str], target: str | None) -> list[Stage]:
    """The stages whose files make up the image built (`target`'s stage, else the last one)
    and the earlier stages it starts FROM, the first of them first: its root starts FROM an
    image (or scratch)."""
    found = stages(text, build_args)
    if not found:
        return []
    final = found[-1]
    if target:
        final = next((s for s in found if s.source.stage == target.lower()), final)
    chain = [final]
    while chain[-1].parent is not None:
        chain.append(found[chain[-1].parent])
    return chain[::-1]
