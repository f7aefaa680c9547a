"""Finding what ``daybreak imports`` audits, and the static import graph.

Discovery never imports the target in the calling process: the package is
found with ``importlib.machinery.PathFinder`` and walked with
``pkgutil.iter_modules`` (plus folders without ``__init__.py``: namespace
packages). ``__main__`` modules are skipped: importing them runs the program.
The graph comes from the modules' source (:func:`module_level_imports`), its
cycles from :func:`find_cycles`; :func:`dependency_order` is the order the
one-pass child imports in, :func:`needing` what cannot be imported once a module
hangs.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder

__all__ = (
    "Module",
    "Target",
    "TargetNotFoundError",
    "dependency_order",
    "discover",
    "excluded",
    "find_cycles",
    "interpreter_dirs",
    "module_level_imports",
    "name_and_path",
    "needing",
    "roots_of",
    "search_path",
    "static_graph",
)


class TargetNotFoundError(ModuleNotFoundError):
    """The package or module to audit cannot be found (nothing was imported)."""



@dataclass(frozen=True, slots=True)
class Module:
    name: str
    source: str | None  # path of the .py file, when there is one
    is_package: bool


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    roots: tuple[str, ...]
    modules: tuple[Module, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (folder or module, why)


def name_and_path(target: str) -> tuple[str, list[str]]:
    """Accept ``pkg.mod``, ``pkg.mod:attribute``, ``path/to/pkg`` or ``path/to/mod.py``."""
    text = target.strip()
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.isidentifier() and not (len(head) == 1 and head.isalpha()):
        text = head  # module:attribute, as the other commands take it
    is_path = text.endswith(".py") or os.sep in text or (os.altsep is not None and os.altsep in text)
    if not is_path:
        if not text or not all(part.isidentifier() for part in text.split(".")):
            raise TargetNotFoundError(f"not a module name: {target!r}", name=text)
        return text, []
    location = os.path.abspath(text)
    if not os.path.exists(location):
        raise TargetNotFoundError(f"no such file or directory: {text!r}", name=text)
    if os.path.isfile(location):
        stem = os.path.splitext(os.path.basename(location))[0]
        location = os.path.dirname(location)
        parts = [] if stem == "__init__" else [stem]
    else:
        parts = []
    # Walk up through the packages, so that a file inside a package audits as
    # ``pkg.sub.mod`` with the directory above ``pkg`` on the path.
    if not parts or os.path.isfile(os.path.join(location, "__init__.py")):
        parts.insert(0, os.path.basename(location))
        location = os.path.dirname(location)
        while os.path.isfile(os.path.join(location, "__init__.py")):
            parts.insert(0, os.path.basename(location))
            location = os.path.dirname(location)
    name = ".".join(parts)
    if not all(part.isidentifier() for part in parts):
        raise TargetNotFoundError(f"not importable as a module: {text!r}", name=name)
    return name, [location]


def _find_spec(name: str, search_path: list[str]) -> ModuleSpec | None:
    """Find ``name`` without importing it, nor any of its parent packages."""
    parts = name.split(".")
    spec = PathFinder.find_spec(parts[0], search_path)
    if spec is None:  # an import hook (editable installs), builtin or frozen
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is PathFinder or find_spec is None:
                continue
            try:
                spec = find_spec(parts[0], None)
            except Exception:  # a finder that cannot answer has not found it
                spec = None
            if spec is not None:
                break
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = PathFinder.find_spec(".".join(parts[: depth + 1]), list(spec.submodule_search_locations))
    return spec


def _source_of(spec: ModuleSpec) -> str | None:
    origin = spec.origin
    if spec.has_location and origin is not None and origin.endswith(".py"):
        return origin
    return None


def excluded(name: str, root: str, globs: Iterable[str]) -> str | None:
    """The glob of ``globs`` that leaves module ``name`` out: one matching the dotted
    name or one of its parts below ``root`` (``tests``, ``test_*``, ``conftest``)."""
    parts = name[len(root) + 1 :].split(".") if name.startswith(root + ".") else []
    for glob in globs:
        if fnmatch.fnmatchcase(name, glob) or any(fnmatch.fnmatchcase(part, glob) for part in parts):
            return glob
    return None


def _folders_without_init(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(name, path) of the sub-folders of ``paths`` that hold Python files but no ``__init__.py``."""
    for path in paths:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir() or entry.name.startswith((".", "__")):
                continue
            if os.path.exists(os.path.join(entry.path, "__init__.py")):
                continue  # a regular package: pkgutil lists it
            if any(name.endswith(".py") for _, _, files in os.walk(entry.path) for name in files):
                yield entry.name, entry.path


def discover(name: str, search_path: list[str], exclude: Iterable[str] = ()) -> Target:
    """Every module of ``name`` (found on ``search_path``), without importing any.

    Folders without ``__init__.py`` that hold Python files are audited as
    namespace packages (``pkgutil`` does not list them); one whose name is no
    identifier cannot be imported and is skipped, with why, like the modules
    ``exclude`` leaves out.
    """
    import pkgutil

    globs = tuple(exclude)
    spec = _find_spec(name, search_path)
    if spec is None:
        raise TargetNotFoundError(
            f"no module named {name!r} (searched --path/path= and sys.path; nothing was imported)",
            name=name,
        )
    locations = spec.submodule_search_locations
    if locations is None:  # a plain module
        source = _source_of(spec)
        roots = (spec.origin,) if spec.has_location and spec.origin is not None else ()
        return Target(name, roots, (Module(name, source, False),))

    modules = [Module(name, _source_of(spec), True)]
    skipped: list[tuple[str, str]] = []
    pending: list[tuple[str, list[str]]] = [(name, list(locations))]
    while pending:
        package, paths = pending.pop()
        # (name, is a package, folder of a namespace package)
        found: list[tuple[str, bool, str | None]] = [
            (info.name, info.ispkg, None) for info in pkgutil.iter_modules(paths, prefix=package + ".")
        ]
        for folder, path in _folders_without_init(paths):
            if folder.isidentifier():
                found.append((f"{package}.{folder}", True, path))
            else:
                skipped.append((path, "no __init__.py and not a module name: cannot be imported"))
        for module, is_package, namespace in found:
            if module.rpartition(".")[2] == "__main__":
                continue  # importing it runs the program
            glob = excluded(module, name, globs)
            if glob is not None:
                skipped.append((module, f"excluded ({glob})"))
                continue
            if namespace is not None:  # PathFinder would look for the parent in sys.modules
                modules.append(Module(module, None, True))
                pending.append((module, [namespace]))
                continue
            sub = PathFinder.find_spec(module, paths)
            if sub is None:
                continue
            modules.append(Module(module, _source_of(sub), is_package))
            if is_package and sub.submodule_search_locations is not None:
                pending.append((module, list(sub.submodule_search_locations)))
    modules.sort(key=lambda m: m.name)
    return Target(name, tuple(locations), tuple(modules), tuple(sorted(skipped)))


def roots_of(names: Iterable[str], search_path: list[str]) -> tuple[str, ...]:
    """Directories (or files) of the first-party packages ``names``, for ``where``."""
    roots: list[str] = []
    for name in names:
        spec = _find_spec(name, search_path)
        if spec is None:
            raise TargetNotFoundError(f"no first-party package named {name!r} (--package)", name=name)
        if spec.submodule_search_locations is not None:
            roots += spec.submodule_search_locations
        elif spec.has_location and spec.origin is not None:
            roots.append(spec.origin)
    return tuple(roots)


def search_path(extra: Iterable[str]) -> list[str]:
    entries: list[str] = []
    for entry in [*extra, *sys.path]:
        absolute = os.path.abspath(entry) if entry else os.getcwd()
        if absolute not in entries:
            entries.append(absolute)
    return entries


def interpreter_dirs() -> tuple[list[str], list[str]]:
    """The standard library's directories, and the site-packages ones."""
    import sysconfig

    paths = sysconfig.get_paths()
    stdlib = {paths["stdlib"], paths["platstdlib"], os.path.dirname(os.__file__)}
    site = {paths["purelib"], paths["platlib"]}
    site.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    site_module = sys.modules.get("site")
    getsitepackages = getattr(site_module, "getsitepackages", None)
    if callable(getsitepackages):
        site.update(getsitepackages())
    return sorted(stdlib), sorted(site)


# --------------------------------------------------------------------------
# Static import graph and cycles


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_level_statements(body: Iterable[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported.

    Descends into module-level ``if``/``try``/``with``/``for``/``while``/``match``
    blocks and class bodies (they run at import); not into function bodies
    (methods included) nor ``if TYPE_CHECKING:`` blocks (their ``else`` runs).
    """
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            if _is_type_checking(test):
                yield from _module_level_statements(node.orelse)
            elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _is_type_checking(test.operand):
                yield from _module_level_statements(node.body)
            else:
                yield from _module_level_statements(node.body)
                yield from _module_level_statements(node.orelse)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            yield from _module_level_statements(node.body)
            for handler in node.handlers:
                yield from _module_level_statements(handler.body)
            yield from _module_level_statements(node.orelse)
            yield from _module_level_statements(node.finalbody)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            yield from _module_level_statements(node.body)
            yield from _module_level_statements(getattr(node, "orelse", []))
        elif isinstance(node, ast.Match):
            for case in node.cases:
                yield from _module_level_statements(case.body)
        elif isinstance(node, ast.ClassDef):
            yield from _module_level_statements(node.body)


def _known_prefix(name: str, known: Mapping[str, object] | frozenset[str] | set[str]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def module_level_imports(
    source: str | bytes,
    module: str,
    *,
    is_package: bool = False,
    known: Iterable[str] = (),
    filename: str = "<unknown>",
) -> set[str]:
    """Modules among ``known`` that ``module`` imports at module level.

    ``from pkg import mod`` is an import of ``pkg.mod`` when that is a known
    module, else of ``pkg``; ``import a.b.c`` is an import of ``a.b.c`` (or of
    its longest known prefix). Relative imports are resolved against
    ``module`` (a package's ``__init__`` is its own base). Parent packages that
    an import executes on the way are not edges: counting them would make
    every package whose ``__init__`` imports its submodules a cycle. Dynamic
    imports (``importlib.import_module``) are not seen. Self-imports are dropped.
    """
    names = frozenset(known)
    tree = ast.parse(source, filename=filename)
    edges: set[str] = set()
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = _known_prefix(alias.name, names)
                if found is not None:
                    edges.add(found)
            continue
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            if node.level - 1 > len(base) - 1 or not base:
                continue  # beyond the top-level package
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            if alias.name != "*" and submodule in names:
                edges.add(submodule)
                continue
            found = _known_prefix(origin, names)
            if found is not None:
                edges.add(found)
    edges.discard(module)
    return edges


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component.

    Tarjan's algorithm (iterative) finds the strongly connected components of
    ``graph`` (module -> modules it imports); for each component of two or
    more modules, the shortest cycle through its smallest module name is
    reported (breadth-first, neighbours in sorted order), starting at that name
    and closed: ``["a", "b", "a"]``. So each tangle is reported once and
    deterministically, in linear time; the number of elementary cycles can be
    exponential, and breaking the reported one reveals the next. Self-loops are
    not cycles. The result is sorted.
    """
    adjacency: dict[str, list[str]] = {}
    for node, targets in graph.items():
        adjacency.setdefault(node, [])
        for target in targets:
            adjacency.setdefault(target, [])
            if target != node:
                adjacency[node].append(target)
    for node in adjacency:
        adjacency[node] = sorted(set(adjacency[node]))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(adjacency):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(adjacency[root]))]
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(adjacency[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)

    cycles = [_shortest_cycle(adjacency, set(component)) for component in components]
    return sorted(cycles)


def _shortest_cycle(adjacency: Mapping[str, list[str]], component: set[str]) -> list[str]:
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for successor in adjacency[node]:
            if successor not in component:
                continue
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor not in seen:
                seen.add(successor)
                previous[successor] = node
                queue.append(successor)
    raise AssertionError(f"no cycle through {start!r} in its component")  # pragma: no cover


def static_graph(target: Target) -> dict[str, tuple[str, ...]]:
    known = frozenset(m.name for m in target.modules)
    graph: dict[str, tuple[str, ...]] = {}
    for module in target.modules:
        edges: set[str] = set()
        if module.source is not None:
            try:
                with open(module.source, "rb") as file:
                    source = file.read()
                edges = module_level_imports(
                    source, module.name, is_package=module.is_package, known=known, filename=module.source
                )
            except (OSError, SyntaxError, ValueError):
                pass  # the child reports an unreadable or invalid module as an import error
        graph[module.name] = tuple(sorted(edges))
    return graph


def _needs(graph: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """What each module's import runs first: its static imports and its parent packages."""
    needs: dict[str, list[str]] = {}
    for module, imported in graph.items():
        parents = [module.rpartition(".")[0]] if "." in module else []
        needs[module] = sorted({name for name in (*parents, *imported) if name in graph and name != module})
    return needs


def dependency_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Every module of ``graph`` after what it needs (parents, static imports).

    Depth-first post-order from each module in sorted order; a cycle is broken
    where the walk meets it. Iterative: a long chain does not recurse.
    """
    needs = _needs(graph)
    order: list[str] = []
    placed: set[str] = set()
    for root in sorted(needs):
        if root in placed:
            continue
        placed.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(needs[root]))]
        while work:
            node, pending = work[-1]
            for successor in pending:
                if successor not in placed:
                    placed.add(successor)
                    work.append((successor, iter(needs[successor])))
                    break
            else:
                work.pop()
                order.append(node)
    return order


def needing(graph: Mapping[str, Iterable[str]], modules: Iterable[str]) -> set[str]:
    """The modules whose import runs one of ``modules`` first (transitively), not those."""
    dependents: dict[str, list[str]] = {}
    for module, needed in _needs(graph).items():
        for name in needed:
            dependents.setdefault(name, []).append(module)
    start = set(modules)
    found: set[str] = set()
    queue = deque(start)
    while queue:
        for dependent in dependents.get(queue.popleft(), ()):
            if dependent not in found and dependent not in start:
                found.add(dependent)
                queue.append(dependent)
    return found
