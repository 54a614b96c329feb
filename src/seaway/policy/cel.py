"""CEL, through `cel-python` (module `celpy`): compile with useful errors, evaluate safely.

celpy parses with lark and checks nothing else before evaluation, so a typo such as
`enviroment` or `version.signd` would only show when a promotion is evaluated, and then
block it. `compile_expression` therefore also walks the parse tree against the request
schema (`SCHEMA`) and the functions CEL has, and reports unknown names, unknown fields of
known maps, unknown functions and malformed macros, each with its line and column.

celpy is imported on first use, so `seaway` works without it until a policy is compiled.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from seaway.policy.errors import CelUnavailable

if TYPE_CHECKING:
    import lark

# The request context as types: a dict is a map with these keys, {"*": T} a map of any keys,
# [T] a list of T, a string a scalar type. `seaway.policy.request` is the source of truth.
_GATE_RESULT = {"name": "string", "kind": "string", "status": "string", "required": "bool"}
_APPROVAL = {"actor": "string", "role": "string", "comment": "string", "at": "string"}
SCHEMA: dict[str, Any] = {
    "environment": "string",
    "model": "string",
    "version": {
        "number": "int",
        "author": "string",
        "metrics": {"*": "double"},
        "signed": "bool",
        "scan": "string",
        "lineage": {"*": None},
        "age_hours": "double",
        "aliases": ["string"],
    },
    "gates": {"passed": "bool", "results": [_GATE_RESULT]},
    "approvals": [_APPROVAL],
    "actor": "string",
    "roles": ["string"],
}

_MACROS = {"all": (2,), "exists": (2,), "exists_one": (2,), "filter": (2,), "map": (2, 3)}
_GLOBAL_MACROS = {"has", "dyn"}
_TYPE_NAMES = {
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "duration",
    "timestamp",
}
_RULE_OPERATORS = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "unary_neg": "-",
    "unary_not": "!",
}
_TERMINALS = {
    "IDENT": "a name",
    "INT_LIT": "a number",
    "UINT_LIT": "a number",
    "FLOAT_LIT": "a number",
    "STRING_LIT": "a string",
    "MLSTRING_LIT": "a string",
    "BYTES_LIT": "bytes",
    "BOOL_LIT": "true or false",
    "NULL_LIT": "null",
}


@dataclass(frozen=True)
class SyntaxProblem:
    line: int | None
    column: int | None
    message: str


class EvaluationError(Exception):
    """An expression could not be evaluated for this request (a missing key, a type error)."""


def celpy_module() -> Any:
    try:
        import celpy
    except ImportError:
        raise CelUnavailable() from None
    return celpy


@cache
def _environment() -> Any:
    return celpy_module().Environment()


@cache
def _functions() -> frozenset[str]:
    from celpy.evaluation import base_functions

    # Operators are stored as "_+_", "!_"; functions and methods have plain names.
    return frozenset(name for name in base_functions if name.isidentifier())


class CompiledExpression:
    """A parsed CEL expression, ready to evaluate many times."""

    def __init__(self, source: str, runner: Any) -> None:
        self.source = source
        self._runner = runner

    def evaluate(self, activation: dict[str, Any]) -> bool:
        """The expression's value, which must be a bool; raises EvaluationError otherwise."""
        celpy = celpy_module()
        try:
            result = self._runner.evaluate(activation)
        except celpy.CELEvalError as exc:
            raise EvaluationError(_eval_message(exc)) from exc
        except RecursionError as exc:
            raise EvaluationError("the expression nests too deeply") from exc
        except Exception as exc:
            # celpy raises plain Python errors for some unsupported cases; a policy that
            # cannot be evaluated blocks, it never crashes the promotion.
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, celpy.CELEvalError):
            raise EvaluationError(_eval_message(result))
        if not isinstance(result, celpy.celtypes.BoolType):
            raise EvaluationError(
                f"the expression gave {_cel_type(result)} {result!s}, not true or false"
            )
        return bool(result)


def compile_expression(source: str) -> CompiledExpression | list[SyntaxProblem]:
    """Parse and check `source`; the compiled expression, or what is wrong with it."""
    celpy = celpy_module()
    env = _environment()
    if not source.strip():
        return [SyntaxProblem(1, 1, "the expression is empty (write `true` for always)")]
    try:
        tree = env.compile(source)
    except celpy.CELParseError as exc:
        return [_syntax_problem(exc, source)]
    problems = _Checker().check(tree)
    if problems:
        return problems
    return CompiledExpression(source, env.program(tree))


def to_cel_value(value: Any) -> Any:
    """Plain JSON-like Python data as CEL values (dict → map, float → double, …)."""
    return celpy_module().json_to_cel(value)


# --- Parse errors -----------------------------------------------------------------------------


def _syntax_problem(exc: Exception, source: str) -> SyntaxProblem:
    import lark.exceptions

    cause = exc.__context__
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if isinstance(cause, lark.exceptions.UnexpectedToken):
        expected = _expected(cause.expected)
        if cause.token.type == "$END":
            lines = source.splitlines() or [""]
            return SyntaxProblem(
                len(lines), len(lines[-1]) + 1, f"the expression ends too early{expected}"
            )
        return SyntaxProblem(line, column, f"unexpected {cause.token.value!r}{expected}")
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        char = cause.char
        extra = " (a string without its closing quote?)" if char in "\"'" else ""
        return SyntaxProblem(line, column, f"unexpected character {char!r}{extra}")
    first = str(exc).strip().splitlines()
    return SyntaxProblem(line, column, first[0] if first else "cannot parse the expression")


def _expected(names: set[str]) -> str:
    from celpy.celparser import CELParser

    parser = CELParser.CEL_PARSER
    literals: dict[str, str] = {}
    if parser is not None:
        for term in parser.terminals:
            value = getattr(term.pattern, "value", None)
            if term.pattern.type == "str" and isinstance(value, str):
                literals[term.name] = repr(value)
    shown = sorted({_TERMINALS.get(n) or literals.get(n) or n for n in names})
    if not shown:
        return ""
    if len(shown) > 8:
        shown = [*shown[:8], "…"]
    return "; expected " + ", ".join(shown)


# --- Runtime errors ---------------------------------------------------------------------------


def _cel_type(value: Any) -> str:
    name = type(value).__name__
    return name[: -len("Type")].lower() if name.endswith("Type") else name


def _eval_message(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    # celpy appends the whole activation to an unknown name; the name is what matters.
    text = re.sub(r" \(in activation .*", "", text, flags=re.S)
    text = re.sub(
        r"no such member in mapping: ('[^']*')",
        r"no key \1 in the map (guard optional keys with has(…) or `in`)",
        text,
    )
    text = re.sub(
        r"Token\('RULE', '(\w+)'\)", lambda m: repr(_RULE_OPERATORS.get(m[1], m[1])), text
    )
    text = re.sub(r"<class 'celpy\.celtypes\.(\w+?)Type'>", lambda m: m[1].lower(), text)
    text = text.replace("applied to '(", "applied to (").replace(")'", ")")
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    if line is not None:
        text += f" (at {line}:{column})"
    return text


# --- The static check -------------------------------------------------------------------------

_WRAPPERS = {
    "expr",
    "conditionalor",
    "conditionaland",
    "relation",
    "addition",
    "multiplication",
    "unary",
    "member",
    "primary",
    "paren_expr",
}


def _unwrap(node: Any) -> Any:
    import lark

    while (
        isinstance(node, lark.Tree)
        and node.data in _WRAPPERS
        and len(node.children) == 1
        and isinstance(node.children[0], lark.Tree)
    ):
        node = node.children[0]
    return node


def _suggest(word: str, options: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _describe(kind: Any) -> str:
    if isinstance(kind, list):
        return "a list"
    if isinstance(kind, dict):
        return "a map"
    return f"a {kind}" if kind else "a value"


class _Checker:
    """Walks a parse tree with the names in scope and their types (None: unknown)."""

    def __init__(self) -> None:
        self.problems: list[SyntaxProblem] = []

    def check(self, tree: lark.Tree) -> list[SyntaxProblem]:
        self.visit(tree, dict(SCHEMA))
        return sorted(self.problems, key=lambda p: (p.line or 0, p.column or 0))

    def report(self, where: Any, message: str) -> None:
        line = getattr(where, "line", None)
        column = getattr(where, "column", None)
        if line is None and getattr(where, "meta", None) is not None and not where.meta.empty:
            line, column = where.meta.line, where.meta.column
        self.problems.append(SyntaxProblem(line, column, message))

    def visit(self, node: Any, scope: dict[str, Any]) -> Any:
        """Check `node`; return its type when it is known."""
        import lark

        if not isinstance(node, lark.Tree):
            return None
        node = _unwrap(node)
        if not isinstance(node, lark.Tree):
            return None
        data = node.data
        children = node.children
        if data in ("ident", "dot_ident"):
            token = children[0]
            name = str(token)
            if name in scope:
                return scope[name]
            if name not in _TYPE_NAMES:
                self.report(token, f"unknown name '{name}'{_suggest(name, set(scope))}")
            return None
        if data in ("ident_arg", "dot_ident_arg"):
            token = children[0]
            name = str(token)
            if name not in _GLOBAL_MACROS and name not in _functions():
                self.report(
                    token, f"unknown function '{name}()'{_suggest(name, set(_functions()))}"
                )
            for child in children[1:]:
                self.visit_all(child, scope)
            return None
        if data == "member_dot":
            owner = self.visit(children[0], scope)
            return self.field(owner, children[1], children[0])
        if data == "member_dot_arg":
            return self.call(children, scope)
        if data == "member_index":
            owner = self.visit(children[0], scope)
            self.visit(children[1], scope)
            if isinstance(owner, dict) and "*" in owner:
                return owner["*"]
            if isinstance(owner, list):
                return owner[0]
            return None
        self.visit_all(node, scope)
        return None

    def visit_all(self, node: Any, scope: dict[str, Any]) -> None:
        import lark

        if isinstance(node, lark.Tree):
            for child in node.children:
                if isinstance(child, lark.Tree):
                    self.visit(child, scope)

    def field(self, owner: Any, token: Any, owner_node: Any) -> Any:
        name = str(token)
        if isinstance(owner, dict):
            if "*" in owner:
                return owner["*"]
            if name in owner:
                return owner[name]
            self.report(
                token,
                f"no field '{name}' here{_suggest(name, list(owner))} (fields: {', '.join(owner)})",
            )
            return None
        if isinstance(owner, list):
            self.report(
                token,
                f"'.{name}' on a list: lists have no fields; use a macro such as "
                f"exists(x, x.{name} == …)",
            )
            return None
        if isinstance(owner, str):
            self.report(token, f"'.{name}' on {_describe(owner)}, which has no fields")
        return None

    def call(self, children: list[Any], scope: dict[str, Any]) -> Any:
        import lark

        member, token = children[0], children[1]
        args = list(children[2].children) if len(children) > 2 else []
        name = str(token)
        owner = self.visit(member, scope)
        if name not in _MACROS:
            if name not in _functions():
                self.report(token, f"unknown method '.{name}()'{_suggest(name, set(_functions()))}")
            for arg in args:
                self.visit(arg, scope)
            return None
        if len(args) not in _MACROS[name]:
            counts = " or ".join(str(n) for n in _MACROS[name])
            self.report(token, f".{name}() takes {counts} arguments: a variable, then a condition")
            return None
        var = _unwrap(args[0])
        if not (isinstance(var, lark.Tree) and var.data == "ident"):
            self.report(token, f"the first argument of .{name}() must be a variable name")
            return None
        if isinstance(owner, list):
            element = owner[0]
        elif isinstance(owner, dict):
            element = "string"  # macros over a map range over its keys
        else:
            element = None
        inner = {**scope, str(var.children[0]): element}
        for arg in args[1:]:
            self.visit(arg, inner)
        return "bool" if name in ("all", "exists", "exists_one") else None
