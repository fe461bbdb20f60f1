"""A small, safe condition language for playbook decisions (no ``eval``).

Grammar (hand-written recursive descent; every error names its column)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") value)?
    value   := NAME | STRING | NUMBER | "true" | "false" | "[" value ("," value)* "]" | "(" expr ")"

Names are ``case.<field>`` (see :data:`CASE_FIELDS`) or the bare severity and TLP words
(``high``, ``amber`` …), which compare by rank: ``case.severity >= high``. Anything else is
refused when the playbook is loaded, not when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pukara.core.taxonomy import TLP, Severity

#: the case fields a condition may read, and what they hold
CASE_FIELDS = {
    "severity": "severity word", "tlp": "TLP word", "pap": "PAP word",
    "classification": "class/type", "status": "case status", "tags": "list of tags",
    "entities": "list of entity ids", "sectors": "list of entity sectors",
    "observable_types": "list of observable types", "alerts": "number of alerts",
    "incidents": "number of incident reports", "evidence": "number of evidence files",
    "title": "title text",
}
_RANKED: dict[str, Severity | TLP] = {**{m.value: m for m in TLP},
                                      **{m.value: m for m in Severity}}
_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<number>\d+(?:\.\d+)?) | (?P<string>"[^"\\]*"|'[^'\\]*')
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_+\-]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)
_COMPARE = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")


class ConditionError(ValueError):
    """A condition that does not parse; ``column`` is 1-based within the condition text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.reason = message
        self.column = column


@dataclass(frozen=True)
class Token:
    """One lexical token and where it starts (0-based)."""

    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; an unknown character is a located error."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise ConditionError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = found.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, found.group(), pos))
        pos = found.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


Node = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.token.text != text:
            raise ConditionError(f"expected {text!r}, found {self._shown()}", self.token.pos + 1)
        self.take()

    def _shown(self) -> str:
        return "the end" if self.token.kind == "end" else repr(self.token.text)

    def parse(self) -> Node:
        node = self.or_()
        if self.token.kind != "end":
            raise ConditionError(f"unexpected {self._shown()}", self.token.pos + 1)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.token.text == "or":
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.token.text == "and":
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.token.text == "not":
            self.take()
            return ("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.value()
        op = self.token.text
        if op == "not" and self.tokens[self.index + 1].text == "in":
            self.take()
            op = "not in"
        if op in _COMPARE and self.token.kind in ("op", "name"):
            self.take()
            return ("cmp", op, left, self.value())
        return left

    def value(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return ("const", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "string":
            return ("const", token.text[1:-1])
        if token.text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if token.text == "[":
            return self.list_(token)
        if token.kind == "name":
            return self.name(token)
        shown = "the end" if token.kind == "end" else repr(token.text)
        raise ConditionError(f"expected a value, found {shown}", token.pos + 1)

    def list_(self, start: Token) -> Node:
        items: list[Node] = []
        while self.token.text != "]":
            if self.token.kind == "end":
                raise ConditionError("unclosed '['", start.pos + 1)
            items.append(self.value())
            if self.token.text == ",":
                self.take()
        self.take()
        return ("list", tuple(items))

    @staticmethod
    def name(token: Token) -> Node:
        text = token.text
        if text in ("true", "false"):
            return ("const", text == "true")
        if text in _RANKED:
            return ("const", _RANKED[text])
        if text.startswith("case."):
            field = text.removeprefix("case.")
            if field in CASE_FIELDS:
                return ("field", field)
            raise ConditionError(f"unknown case field {field!r}; known: "
                                 f"{', '.join(sorted(CASE_FIELDS))}", token.pos + 1)
        raise ConditionError(f"unknown name {text!r} (use case.<field>, a severity or "
                             "TLP word, a quoted string or a number)", token.pos + 1)


@dataclass(frozen=True)
class Condition:
    """A parsed condition, evaluated against a case's fields."""

    text: str
    tree: Node

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse ``text`` or raise :class:`ConditionError` with the column."""
        if not text.strip():
            raise ConditionError("the condition is empty", 1)
        return cls(text, _Parser(text).parse())

    def evaluate(self, case: Mapping[str, Any]) -> bool:
        """True when the condition holds for ``case`` (a mapping of :data:`CASE_FIELDS`)."""
        return bool(_eval(self.tree, case))


def _eval(node: Node, case: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "field":
        return _typed(node[1], case.get(node[1]))
    if kind == "list":
        return [_eval(item, case) for item in node[1]]
    if kind == "not":
        return not _eval(node[1], case)
    if kind == "and":
        return bool(_eval(node[1], case)) and bool(_eval(node[2], case))
    if kind == "or":
        return bool(_eval(node[1], case)) or bool(_eval(node[2], case))
    return _compare(node[1], _eval(node[2], case), _eval(node[3], case))


def _typed(field: str, value: Any) -> Any:
    if field == "severity" and isinstance(value, str):
        return Severity(value)
    if field == "tlp" and isinstance(value, str):
        return TLP(value)
    return value


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """A quoted level next to a ranked field compares by rank: ``case.severity >= 'high'``."""
    for ranked in (Severity, TLP):
        if isinstance(left, ranked) and isinstance(right, str) and not isinstance(right, ranked):
            return left, ranked(right) if right in ranked.__members__.values() else None
        if isinstance(right, ranked) and isinstance(left, str) and not isinstance(left, ranked):
            return ranked(left) if left in ranked.__members__.values() else None, right
    return left, right


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _coerce(left, right)
    if op in ("in", "not in"):
        try:
            found = left in right if not isinstance(right, str) else str(left) in right
        except TypeError:
            found = False
        return found if op == "in" else not found
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        result = {"<": left < right, "<=": left <= right,
                  ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return False
    return bool(result)
