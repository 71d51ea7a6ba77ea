"""Checking a kind's templates at load time, so a typo fails at start-up and not at 9 am on a Monday.

Each problem names the file, the line of the TOML file and the key path, such as
``message_kinds/recall.toml:14: templates.sms.en: unknown field 'patient.last_name' (allowed: ...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from vitalsync.rules.render import FALLBACK_LANGUAGE, FIELDS, ITEM, TRIGGER_NAMES, usable_language

_ENV = SandboxedEnvironment()


def check_templates(kind, raw: str, display: str) -> list[str]:
    """Every problem with ``kind``'s templates; ``raw`` is the TOML text of the file called ``display``."""
    problems = []
    for channel in kind.channels:
        if FALLBACK_LANGUAGE not in getattr(kind.templates, channel.value):
            header = _header(raw, channel.value)
            at = None if header is None else _line(raw, header)
            problems.append(f"{_where(display, at)}templates.{channel.value}.{FALLBACK_LANGUAGE}: missing: "
                            f"channel '{channel.value}' is listed, so it needs an English template (the fallback)")
    for path, source in _sources(kind.templates):
        anchor = _anchor(raw, path, source)
        language = path.split(".")[2]
        if usable_language(language) != language.replace("-", "_"):
            where = _where(display, None if anchor is None else _line(raw, anchor))
            problems.append(f"{where}{'.'.join(path.split('.')[:3])}: unknown language code {language!r} "
                            "(use a code such as 'en', 'es' or 'es-MX')")
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            at = None if anchor is None else _line(raw, anchor) + max(0, (exc.lineno or 1) - 1 - _blank_lead(source))
            problems.append(f"{_where(display, at)}{path}: template syntax error: {exc.message}")
            continue
        names = TRIGGER_NAMES[kind.trigger.value]
        for dotted, problem in _unknown_fields(tree, names):
            found = raw.find(dotted, anchor or 0)
            at = found if found >= 0 else anchor
            problems.append(f"{_where(display, None if at is None else _line(raw, at))}{path}: {problem}")
    return problems


def _sources(templates) -> Iterator[tuple[str, str]]:
    for channel in ("sms", "voice"):
        for language, source in getattr(templates, channel).items():
            yield f"templates.{channel}.{language}", source
    for language, email in templates.email.items():
        for part in ("subject", "text", "html"):
            if getattr(email, part) is not None:
                yield f"templates.email.{language}.{part}", getattr(email, part)


def _unknown_fields(tree: nodes.Template, names: set[str]) -> Iterator[tuple[str, str]]:
    allowed = sorted(f"{n}.{a}" if a else n for n in names for a in (FIELDS[n] or {""}))
    # Names the template binds itself ({% set %}, macro arguments, other loops) are its own business.
    own = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")} | set(_ENV.globals) | {"loop"}

    def walk(node: nodes.Node, items: frozenset[str]) -> Iterator[tuple[str, str]]:
        if isinstance(node, nodes.For):
            yield from walk(node.iter, items)
            over_family = isinstance(node.iter, nodes.Name) and node.iter.name == "appointments"
            targets = {n.name for n in node.target.find_all(nodes.Name)} | (
                {node.target.name} if isinstance(node.target, nodes.Name) else set())
            inner = items | targets if over_family else items - targets
            for child in (*node.body, *node.else_, *([node.test] if node.test else [])):
                yield from walk(child, inner)
            return
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            yield from _check_attr(node.node.name, node.attr, items, own, names, allowed)
            return
        if isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name) and isinstance(node.arg, nodes.Const):
            yield from _check_attr(node.node.name, str(node.arg.value), items, own, names, allowed)
            return
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in own | items | names:
            yield node.name, f"unknown field {node.name!r} (allowed: {', '.join(allowed)})"
        for child in node.iter_child_nodes():
            yield from walk(child, items)

    yield from walk(tree, frozenset())


def _check_attr(name, attr, items, own, names, allowed) -> Iterator[tuple[str, str]]:
    dotted = f"{name}.{attr}"
    if name in items:
        if attr not in FIELDS[ITEM]:
            fields = ", ".join(f"{name}.{a}" for a in sorted(FIELDS[ITEM]))
            yield dotted, f"unknown field {dotted!r} (allowed: {fields})"
    elif name in own:
        return
    elif name not in names or attr not in FIELDS[name]:
        yield dotted, f"unknown field {dotted!r} (allowed: {', '.join(allowed)})"


def _header(raw: str, channel: str, language: str | None = None) -> int | None:
    """Where the table ``[templates.<channel>]`` (or ``[templates.email.<language>]``) starts."""
    parts = ["templates", channel] + ([language] if language else [])
    pattern = r"\s*\.\s*".join(rf'"?{re.escape(p)}"?' for p in parts)
    match = re.search(rf"^[ \t]*\[\s*{pattern}\s*\]", raw, re.MULTILINE)
    return match.start() if match else None


def _anchor(raw: str, path: str, source: str) -> int | None:
    """Where a template's text starts in the raw file, else its key, else its table, else None."""
    _, channel, language, *part = path.split(".")
    start = _header(raw, channel, language if part else None)
    key_name = re.escape(part[0] if part else language)
    key = re.compile(rf'^[ \t]*"?{key_name}"?\s*=', re.MULTILINE).search(raw, start or 0)
    start = key.start() if key else start
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    found = raw.find(first, start or 0) if first else -1
    return found if found >= 0 else start


def _blank_lead(source: str) -> int:
    """Blank lines before the template's first line of text (the anchor is that line)."""
    return next((i for i, line in enumerate(source.splitlines()) if line.strip()), 0)


def _line(raw: str, offset: int) -> int:
    return raw.count("\n", 0, offset) + 1


def _where(display: str, line: int | None) -> str:
    return f"{display}:{line}: " if line else f"{display}: "
