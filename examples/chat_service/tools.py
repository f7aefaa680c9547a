"""The tool registry: commands an agent can run, ``/calc 2*(3+4)``, ``/time``, ``/tools``.

A tool is sync (run on a worker thread of the task manager) or async.
"""

from __future__ import annotations

import ast
import datetime
import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Tool", "ToolRegistry", "tool_registry"]

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}
_MAX_EXPRESSION = 200


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    run: Callable[[str], Any]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.run)


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __len__(self) -> int:
        return len(self._tools)


def calculate(expression: str) -> str:
    """Arithmetic only: numbers and + - * / // % **, no names, no calls."""
    if len(expression) > _MAX_EXPRESSION:
        raise ValueError("expression too long")

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.operand))
        raise ValueError(f"unsupported expression: {ast.dump(node)[:40]}")

    return str(value(ast.parse(expression.strip(), mode="eval")))


def utc_now(_: str) -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def tool_registry() -> ToolRegistry:
    """Component: the built-in tools."""
    tools = ToolRegistry()
    tools.register(Tool("calc", "evaluate arithmetic: /calc 2*(3+4)", calculate))
    tools.register(Tool("time", "the current UTC time", utc_now))
    tools.register(Tool("tools", "list the tools", lambda _: ", ".join(tools.names())))
    return tools
