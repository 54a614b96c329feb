"""Problems found in spec files, and the translation of pydantic's errors into them.

A problem names the file, the 1-based line and column, the field path (`steps.fit.inputs`,
`checks[0]`) and says in plain words what is wrong. The human and the JSON renderings of
`seaway validate` both come from the same `Problem` objects.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from seaway.errors import SpecError
from seaway.spec.types import describe
from seaway.spec.yamlio import Document, Path

if TYPE_CHECKING:
    from pydantic import ValidationError

Severity = Literal["error", "warning"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_text(key: Any) -> str:
    """A mapping key as written in YAML (`true`, not `True`)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def format_path(path: Path, data: Any = None) -> str:
    """`datasets.customers.checks[0].column`; keys that are not plain words are quoted.

    With `data`, an integer is told apart as a list index (`[0]`) or a mapping key (`.0`).
    """
    out = ""
    node = data
    for elem in path:
        index = isinstance(elem, int) and not isinstance(elem, bool)
        if index and (data is None or isinstance(node, list)):
            out += f"[{elem}]"
        else:
            text = key_text(elem)
            text = text if _PLAIN_KEY.match(text) else f'"{text}"'
            out += f".{text}" if out else text
        try:
            node = node[elem] if node is not None else None
        except (KeyError, IndexError, TypeError):
            node = None
    return out


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return ": ".join(p for p in (where, self.path, self.message) if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class InvalidSpec(SpecError):
    """A SpecError that also carries the structured problems (for the API and `--json`)."""

    def __init__(self, message: str, details: list[Problem], *, hint: str | None = None):
        super().__init__(message, problems=[str(p) for p in details], hint=hint)
        self.details = details


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def make_problem(
    doc: Document | None,
    file: str,
    path: Path,
    message: str,
    *,
    key: bool = False,
    severity: Severity = "error",
) -> Problem:
    """A problem at `path`, positioned there in the document (at the key with `key=True`)."""
    pos = doc.positions.of(path, key=key) if doc is not None else None
    line, column = pos if pos else (None, None)
    data = doc.data if doc is not None else None
    return Problem(file, line, column, format_path(path, data), message, severity)


# --- pydantic errors -----------------------------------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "none_required": "null",
}
_KIND_ERRORS = ("check_kind", "gate_kind")


@dataclass
class _Issue:
    path: Path
    type: str
    message: str
    key: bool = False
    union: bool = False
    expected: str | None = None
    input: Any = None
    choices: list[str] = field(default_factory=list)


def from_validation_error(
    exc: ValidationError, doc: Document, file: str, schema: dict[str, Any]
) -> list[Problem]:
    issues = [_issue(err, doc.data, schema) for err in exc.errors(include_url=False)]
    issues = _merge_unions(issues)
    problems: list[Problem] = []
    seen: set[tuple[Path, str]] = set()
    for issue in issues:
        if (issue.path, issue.message) in seen:
            continue
        seen.add((issue.path, issue.message))
        problems.append(make_problem(doc, file, issue.path, issue.message, key=issue.key))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _issue(err: Any, data: Any, schema: dict[str, Any]) -> _Issue:
    loc: tuple[str | int, ...] = tuple(err["loc"])
    etype: str = err["type"]
    value = err.get("input")
    if etype == "missing":
        path, _ = _resolve(loc[:-1], data, value)
        return _Issue(path, etype, f"missing required key '{loc[-1]}'", key=True)
    if "[key]" in loc:
        path, _ = _resolve(loc[: loc.index("[key]")], data)
        return _Issue(path, etype, _message(err), key=True)
    path, last_skipped = _resolve(loc, data, value)
    if etype == "extra_forbidden":
        return _Issue(path, etype, _unknown_key(path, data, schema), key=True)
    if etype in _KIND_ERRORS:
        return _kind_issue(path, err)
    expected = _expected(err)
    issue = _Issue(path, etype, _message(err), expected=expected, input=value)
    if etype == "literal_error":
        issue.choices = _literal_choices(err.get("ctx") or {})
    # A skipped last element is a union member's label (`str`, `list[str]`): the error is
    # one of several alternatives for the same value, merged below.
    issue.union = last_skipped and expected is not None
    issue.key = isinstance(value, dict | list)
    return issue


_NO_INPUT = object()


def _resolve(loc: tuple[str | int, ...], data: Any, value: Any = _NO_INPUT) -> tuple[Path, bool]:
    """Map pydantic's error location onto a path through the data.

    Locations also hold tagged-union tags and union member labels that are not keys of the
    data, and some tags (`column` for a column check, `metric` for a metric gate) are real
    keys too. Every reading is tried. The best one leads to the value pydantic complained
    about, skips the fewest elements, and skips earlier ones, because tags come before the
    fields they select. Returns the path and whether the last element was skipped.
    """
    best: tuple[tuple[bool, int, tuple[int, ...]], Path] | None = None

    def walk(i: int, node: Any, path: Path, skips: tuple[int, ...]) -> None:
        nonlocal best
        if i == len(loc):
            score = (not _same(node, value), len(skips), skips)
            if best is None or score < best[0]:
                best = (score, path)
            return
        elem = loc[i]
        in_dict = isinstance(node, dict) and _has_key(node, elem)
        in_list = isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node)
        if in_dict or in_list:
            walk(i + 1, node[elem], (*path, elem), skips)
        if isinstance(elem, str):
            walk(i + 1, node, path, (*skips, i))

    walk(0, data, (), ())
    if best is None:
        return tuple(loc), False
    skipped = best[0][2]
    return best[1], bool(loc) and (len(loc) - 1) in skipped


def _same(node: Any, value: Any) -> bool:
    if value is _NO_INPUT:
        return True
    try:
        return node is value or bool(node == value and type(node) is type(value))
    except Exception:
        return False


def _has_key(node: dict[Any, Any], key: Any) -> bool:
    try:
        return key in node
    except TypeError:
        return False


def _message(err: Any) -> str:
    etype: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    expected = _expected(err)
    if etype == "literal_error":
        choices = _literal_choices(ctx)
        text = f"must be one of: {', '.join(choices)}; got {describe(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            if close:
                text += f"; did you mean '{close[0]}'?"
        return text
    if expected is not None:
        return f"expected {expected}, got {describe(value)}"
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if etype in bounds:
        words, name = bounds[etype]
        return f"must be {words} {_number(ctx.get(name))}, got {describe(value)}"
    if etype in ("too_short", "string_too_short"):
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} items"
    if etype in ("too_long", "string_too_long"):
        return f"has more than {ctx.get('max_length')} items"
    msg: str = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    # pydantic capitalises its sentences; ours continue after "path: ". Acronyms stay.
    if len(msg) > 1 and msg[1].isupper():
        return msg
    return msg[:1].lower() + msg[1:]


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _expected(err: Any) -> str | None:
    etype: str = err["type"]
    if etype == "literal_error":
        return "one of " + ", ".join(_literal_choices(err.get("ctx") or {}))
    return _EXPECTED.get(etype)


def _literal_choices(ctx: dict[str, Any]) -> list[str]:
    text = str(ctx.get("expected", ""))
    quoted = re.findall(r"'([^']*)'", text)
    return quoted or [t for t in re.split(r",\s*|\s+or\s+", text) if t]


def _kind_issue(path: Path, err: Any) -> _Issue:
    """A check or gate without the key naming its kind: most often that key is misspelled."""
    value = err.get("input")
    message: str = err["msg"]
    kinds = [k.strip() for k in message.split(":", 1)[-1].split(",")]
    if not isinstance(value, dict):
        return _Issue(path, err["type"], f"{message}; got {describe(value)}", key=True)
    for key in value:
        close = difflib.get_close_matches(str(key), kinds, n=1, cutoff=0.6)
        if close:
            text = f"unknown key '{key_text(key)}'; did you mean '{close[0]}'?"
            return _Issue((*path, key), err["type"], text, key=True)
    return _Issue(path, err["type"], message)


def _merge_unions(issues: list[_Issue]) -> list[_Issue]:
    """One problem per value that matched no member of a union.

    When some member got further (the value is a list and one of its items is wrong), the
    user meant that member: its errors are kept and the others' type errors dropped.
    """
    kept: list[_Issue] = []
    groups: dict[Path, list[_Issue]] = {}
    for issue in issues:
        if issue.union:
            deeper = any(
                len(o.path) > len(issue.path) and o.path[: len(issue.path)] == issue.path
                for o in issues
            )
            if not deeper:
                groups.setdefault(issue.path, []).append(issue)
            continue
        kept.append(issue)
    for path, group in groups.items():
        if len(group) == 1:
            kept.append(group[0])
            continue
        expected: list[str] = []
        for g in group:
            if g.expected and g.expected not in expected:
                expected.append(g.expected)
        value = group[0].input
        message = f"expected {' or '.join(expected)}, got {describe(value)}"
        choices = [c for g in group if g.type == "literal_error" for c in g.choices]
        close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        if close:
            message += f"; did you mean '{close[0]}'?"
        kept.append(_Issue(path, "union", message, key=group[0].key))
    return kept


# --- unknown keys --------------------------------------------------------------------------


def _unknown_key(path: Path, data: Any, schema: dict[str, Any]) -> str:
    key = path[-1]
    parent = _lookup(data, path[:-1])
    present = set(parent) if isinstance(parent, dict) else set()
    allowed = [k for k in allowed_keys(schema, data, path[:-1]) if k not in present]
    message = f"unknown key '{key}'"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    if allowed:
        return f"{message}; expected one of: {', '.join(allowed)}"
    return message


def _lookup(data: Any, path: Path) -> Any:
    for elem in path:
        try:
            data = data[elem]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def allowed_keys(schema: dict[str, Any], data: Any, path: Path) -> list[str]:
    """The keys the JSON Schema allows for the mapping at `path` of `data`.

    Where the schema offers alternatives (a check is one of five shapes), the ones sharing
    the most keys with what the user wrote are taken.
    """
    defs: dict[str, Any] = schema.get("$defs", {})

    def expand(nodes: list[dict[str, Any]], value: Any) -> list[dict[str, Any]]:
        flat: list[dict[str, Any]] = []
        stack = list(nodes)
        while stack:
            node = stack.pop(0)
            if "$ref" in node:
                stack.append(defs.get(node["$ref"].rsplit("/", 1)[-1], {}))
            elif "anyOf" in node or "oneOf" in node:
                stack.extend(node.get("anyOf", []) + node.get("oneOf", []))
            else:
                flat.append(node)
        objects = [n for n in flat if "properties" in n]
        if isinstance(value, dict) and len(objects) > 1:
            scores = [len(set(value) & set(n["properties"])) for n in objects]
            objects = [n for n, s in zip(objects, scores, strict=True) if s == max(scores)]
        return objects + [n for n in flat if "properties" not in n]

    nodes = [schema]
    value = data
    for elem in path:
        nodes = expand(nodes, value)
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(elem, int):
                if isinstance(node.get("items"), dict):
                    following.append(node["items"])
            elif elem in node.get("properties", {}):
                following.append(node["properties"][elem])
            else:
                patterns = node.get("patternProperties", {})
                following.extend(v for k, v in patterns.items() if re.search(k, str(elem)))
                if isinstance(node.get("additionalProperties"), dict):
                    following.append(node["additionalProperties"])
        nodes = following
        value = _lookup(value, (elem,))
    keys: list[str] = []
    for node in expand(nodes, value):
        keys.extend(k for k in node.get("properties", {}) if k not in keys)
    return keys
