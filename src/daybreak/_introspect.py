"""What a factory needs and provides, read from its signature at plan time."""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

__all__ = ["Analysis", "Param", "analyse", "type_name"]

Call = Literal["sync", "async", "gen", "agen"]
Enter = Literal["none", "sync", "async"]

_UNWRAP_FIRST = {
    collections.abc.Iterator, collections.abc.AsyncIterator,
    collections.abc.Generator, collections.abc.AsyncGenerator,
    collections.abc.Iterable, collections.abc.AsyncIterable,
    collections.abc.Awaitable,
}
_SYNC_CM = {contextlib.AbstractContextManager}
_ASYNC_CM = {contextlib.AbstractAsyncContextManager}


# Named tuples, not frozen dataclasses: a plan builds thousands of them, and
# a frozen dataclass's __init__ costs several times more.
class Param(NamedTuple):
    name: str
    key: Any  # the type asked for
    optional: bool  # annotated ``T | None``
    has_default: bool


class Analysis(NamedTuple):
    # The parameters as four parallel tuples, not a Param each: three of them
    # hold only strings and bools, which the garbage collector stops tracking,
    # so a large plan leaves it fewer long-lived objects to walk.
    param_names: tuple[str, ...]
    param_keys: tuple[Any, ...]  # the type each asks for
    param_optional: tuple[bool, ...]  # annotated ``T | None``
    param_defaults: tuple[bool, ...]  # has a default
    provides: Any  # None: provides nothing
    call: Call
    enter: Enter
    await_result: bool

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(map(Param, self.param_names, self.param_keys, self.param_optional, self.param_defaults))


class AnalysisError(Exception):
    """A factory's signature cannot be understood; the message says why."""


def type_name(t: Any) -> str:
    if t is None:
        return "None"
    if isinstance(t, type):
        return t.__qualname__ if t.__module__ != "builtins" else t.__name__
    supertype = getattr(t, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return str(getattr(t, "__name__", t))
    return str(t).replace("typing.", "")


def _unbind(factory: Callable[..., Any]) -> tuple[Any, frozenset[str]]:
    """What a ``functools.partial`` (or a bare ``staticmethod``) calls, and the keywords it binds."""
    bound: set[str] = set()
    while True:
        if isinstance(factory, functools.partial):
            bound.update(factory.keywords)
            factory = factory.func
        elif isinstance(factory, staticmethod):
            factory = factory.__func__
        else:
            return factory, frozenset(bound)


def _function_of(target: Any) -> Any:
    """The function whose code and annotations describe calling ``target``.

    A bound method (or a classmethod) runs its ``__func__``; a callable object
    runs its class's ``__call__``; anything else stands for itself.
    """
    if isinstance(target, types.MethodType):
        return target.__func__
    if isinstance(target, types.FunctionType | type | types.BuiltinFunctionType):
        return target
    call = inspect.getattr_static(type(target), "__call__", None)
    return call if isinstance(call, types.FunctionType) else target


def code_of(factory: Callable[..., Any]) -> types.CodeType | None:
    """The code a factory or check runs, through partials, methods and decorators; None for a class."""
    fn = _function_of(_unbind(factory)[0])
    if isinstance(fn, type):
        return None
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _cm_helper(decorator: Callable[..., Any], fn: Callable[..., Any]) -> types.CodeType:
    return decorator(fn).__code__  # type: ignore[no-any-return]


def _gen() -> collections.abc.Iterator[None]:
    yield


async def _agen() -> collections.abc.AsyncIterator[None]:
    yield


# The wrappers contextlib's decorators return, by their code: calling one
# gives a context manager to enter, not the generator it wraps.
_CM_HELPERS: dict[types.CodeType, Enter] = {
    _cm_helper(contextlib.contextmanager, _gen): "sync",
    _cm_helper(contextlib.asynccontextmanager, _agen): "async",
}


def _call_through(fn: Any) -> tuple[Call, Enter | None]:
    """How calling ``fn`` behaves, and what to enter if contextlib made it.

    A synchronous wrapper (``functools.wraps``) returns what the function it
    wraps returns: a coroutine, an async generator... so the chain of
    ``__wrapped__`` is followed down to the first function that is not one.
    """
    for _ in range(100):  # inspect.unwrap's own bound on a chain
        fn = _function_of(fn)
        if isinstance(fn, types.FunctionType):
            enter = _CM_HELPERS.get(fn.__code__)
            if enter is not None:
                return "sync", enter
            call = _call_of(fn)
            if call != "sync":
                return call, None
        elif inspect.iscoroutinefunction(fn):  # a builtin or a marked object
            return "async", None
        fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            break
    return "sync", None


_COMPILED: dict[str, types.CodeType] = {}
_COMPILED_MAX = 4096


def _eval_annotation(text: str, globalns: dict[str, Any]) -> Any:
    # A bare name is the common case and needs no compiler: at 10,000
    # components, compile() alone would cost more than starting them.
    if text.isidentifier():
        if text in globalns:
            return globalns[text]
        builtins = globalns.get("__builtins__", __builtins__)
        table = builtins if isinstance(builtins, dict) else vars(builtins)
        if text in table:
            return table[text]
        if text == "None":
            return None
        raise NameError(f"name {text!r} is not defined")
    code = _COMPILED.get(text)
    if code is None:
        code = compile(text, "<annotation>", "eval")
        if len(_COMPILED) < _COMPILED_MAX:
            _COMPILED[text] = code
    return eval(code, globalns)  # annotations are the user's own source


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints`` for a function, without its per-call compile()."""
    annotations = getattr(fn, "__annotations__", None)
    # A decorator's wrapper lives in the decorator's module: names resolve
    # where the original function was written (typing does the same).
    globalns = getattr(inspect.unwrap(fn) if hasattr(fn, "__wrapped__") else fn, "__globals__", None)
    if not isinstance(annotations, dict) or not isinstance(globalns, dict):
        try:
            return typing.get_type_hints(fn)
        except Exception as exc:
            raise AnalysisError(f"its annotations cannot be evaluated ({type(exc).__name__}: {exc})") from None
    out: dict[str, Any] = {}
    for name, value in annotations.items():
        if isinstance(value, str):
            try:
                value = _eval_annotation(value, globalns)
            except NameError as exc:
                raise AnalysisError(
                    f"its annotations cannot be evaluated ({exc}); define or import that name "
                    "in the factory's module (annotations are read when the plan is built)"
                ) from None
            except Exception as exc:
                raise AnalysisError(
                    f"its annotation {value!r} cannot be evaluated ({type(exc).__name__}: {exc})") from None
        out[name] = type(None) if value is None else value
    return out


def _parameters(factory: Callable[..., Any], bound: frozenset[str]) -> list[tuple[str, bool]]:
    """(name, has a default) of each parameter a call must fill, read off the code object when possible.

    What a partial or a bound method already binds is no parameter: the
    partial's keywords win over any component of their type.
    """
    code = getattr(factory, "__code__", None)
    if (type(factory) is types.FunctionType and code is not None
            and not hasattr(factory, "__signature__") and not hasattr(factory, "__wrapped__")):
        positional = code.co_argcount
        names = code.co_varnames[: positional + code.co_kwonlyargcount]
        n_defaults = len(getattr(factory, "__defaults__", None) or ())
        kwdefaults = getattr(factory, "__kwdefaults__", None) or {}
        return [(name, (i >= positional - n_defaults) if i < positional else name in kwdefaults)
                for i, name in enumerate(names)]
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"its signature cannot be read ({exc})") from None
    return [(p.name, p.default is not p.empty) for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in bound]


def _split_optional(ann: Any) -> tuple[Any, bool]:
    if isinstance(ann, type):  # not a generic alias: those are no types on 3.11+
        return ann, False
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(ann)) == 2:
            return args[0], True
        raise AnalysisError(
            f"{type_name(ann)} is a union; a dependency is one type, or `T | None` "
            "for an optional one"
        )
    return ann, False


def _unwrap(ann: Any) -> tuple[Any, Enter, bool]:
    """(provided type, context manager to enter, result to await) for a return annotation."""
    if isinstance(ann, type):  # a plain class (``list[int]`` is no type on 3.11+)
        return ann, "none", False
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in _SYNC_CM:
        return (args[0] if args else None), "sync", False
    if origin in _ASYNC_CM:
        return (args[0] if args else None), "async", False
    if origin is collections.abc.Coroutine or origin is collections.abc.Awaitable:
        awaited = args[-1] if args else None
        inner, enter, _ = _unwrap(awaited)
        return inner, enter, True
    if origin in _UNWRAP_FIRST:
        return (args[0] if args else None), "none", False
    return ann, "none", False


_MISSING = object()
# A named tuple's own constructor is a Python function; tuple.__new__ is not,
# and builds the same object at a third of the cost (a plan builds thousands).
_new = tuple.__new__
_FALSES = [(False,) * n for n in range(16)]


def _call_of(fn: types.FunctionType) -> Call:
    # The code flags say it all; inspect's helpers would read them three times over.
    flags = fn.__code__.co_flags
    if flags & inspect.CO_ASYNC_GENERATOR:
        return "agen"
    if flags & inspect.CO_GENERATOR:
        return "gen"
    if flags & inspect.CO_COROUTINE or inspect.iscoroutinefunction(fn):
        return "async"
    return "sync"


def _analyse_function(fn: types.FunctionType, provides: Any, unset: Any) -> Analysis | None:
    """The common factory, a plain function whose annotations are bare names, in one pass.

    None for anything else (``*args``, an annotation to evaluate, a missing
    one...): :func:`analyse`'s general path reads those, and words the errors.
    """
    code = fn.__code__
    flags = code.co_flags
    annotations = fn.__annotations__
    if flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or type(annotations) is not dict:
        return None
    globalns = fn.__globals__
    positional = code.co_argcount
    names = code.co_varnames[: positional + code.co_kwonlyargcount]
    keys = []
    optional: list[bool] | None = None  # made at the first ``T | None``
    for index, name in enumerate(names):
        ann = annotations.get(name, _MISSING)
        if type(ann) is str:
            ann = globalns.get(ann, _MISSING)
        if ann is _MISSING or type(ann) is str:
            return None
        if isinstance(ann, type):
            keys.append(ann)
        else:
            key, maybe = _split_optional(type(None) if ann is None else ann)
            keys.append(key)
            if maybe:
                optional = optional or [False] * len(names)
                optional[index] = True
    # Most factories have neither defaults nor optional parameters: those share
    # one tuple of False per length instead of building two per factory.
    falses = _FALSES[len(names)] if len(names) < len(_FALSES) else (False,) * len(names)
    defaults = falses
    if fn.__defaults__ or fn.__kwdefaults__:
        first_default = positional - len(fn.__defaults__ or ())
        kwdefaults = fn.__kwdefaults__ or {}
        defaults = tuple([index >= first_default if index < positional else name in kwdefaults
                          for index, name in enumerate(names)])
    ret = annotations.get("return")
    if type(ret) is str:
        ret = globalns.get(ret, _MISSING)
        if ret is _MISSING or type(ret) is str:
            return None
    call = _call_of(fn)
    provided: Any
    enter: Enter
    if isinstance(ret, type):  # a plain class: nothing to enter or unwrap
        provided, enter, await_result = ret, "none", False
    else:
        provided, enter, await_result = _unwrap(ret)
    if provides is not unset:
        provided = provides
    if provided is type(None):
        provided = None
    return _new(Analysis, (names, tuple(keys), falses if optional is None else tuple(optional), defaults,
                           provided, call, enter, await_result and call == "sync"))


def analyse(factory: Callable[..., Any], provides: Any, unset: Any) -> Analysis:
    if type(factory) is types.FunctionType and not hasattr(factory, "__wrapped__") \
            and not hasattr(factory, "__signature__"):
        fast = _analyse_function(factory, provides, unset)
        if fast is not None:
            return fast
    target, bound = _unbind(factory)
    enter_as: Enter | None = None
    if isinstance(target, type):
        call: Call = "sync"
        hints_of: Any = target.__init__  # type: ignore[misc]
        ret: Any = target
    else:
        hints_of = _function_of(target)
        call, enter_as = _call_through(hints_of)
        ret = unset
    parameters = _parameters(factory, bound)
    hints: dict[str, Any] = {}
    if parameters:
        hints = _hints(hints_of)
    elif ret is unset:
        try:
            hints = _hints(hints_of)
        except AnalysisError:
            if provides is unset:
                raise
            # provides= names the type; the annotation only says what to enter,
            # and one that cannot be evaluated here says nothing.
    names: list[str] = []
    keys: list[Any] = []
    optional: list[bool] = []
    defaults: list[bool] = []
    for name, has_default in parameters:
        if name not in hints:
            if has_default:
                continue
            raise AnalysisError(
                f"parameter {name!r} has no annotation; daybreak finds dependencies by "
                f"type, so write `{name}: SomeType`"
            )
        key, maybe = _split_optional(hints[name])
        names.append(name)
        keys.append(key)
        optional.append(maybe)
        defaults.append(has_default)

    if ret is unset:
        ret = hints.get("return", None)
    provided, enter, await_result = _unwrap(ret)
    if enter_as is not None:
        enter = enter_as
    if provides is not unset:
        provided = provides
    if provided is type(None):
        provided = None
    return Analysis(tuple(names), tuple(keys), tuple(optional), tuple(defaults), provided, call, enter,
                    await_result and call == "sync")
