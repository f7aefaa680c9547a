"""The plan: a validated dependency graph in a deterministic start order.

Building it runs nothing. Every declaration error is raised here, naming the
components involved.
"""

from __future__ import annotations

import difflib
import heapq
import inspect
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from daybreak._introspect import Analysis, AnalysisError, analyse, code_of, type_name
from daybreak._override import Wrap
from daybreak.errors import (
    CycleError,
    DeclarationError,
    DuplicateProviderError,
    MissingDependencyError,
    UnknownPhaseError,
)
from daybreak.registry import UNSET, Check, Component

if TYPE_CHECKING:
    from daybreak.registry import Registry

__all__ = ["Dependency", "Plan", "Step", "build_plan"]


class Dependency(NamedTuple):
    """One parameter of a factory or check and the component that fills it."""

    parameter: str
    key: Any
    optional: bool  # annotated ``T | None``: receives None when the provider is down
    provider: Component[Any] | None  # None: the parameter keeps its default


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    check: Check
    dependencies: tuple[Dependency, ...]


class Step:
    """A component as the plan runs it: resolved dependencies and settings.

    ``provides`` is the type it provides (None: nothing), ``call``, ``enter``
    and ``await_result`` say how to run its factory, and ``param_names``,
    ``param_keys`` (the types asked for), ``param_optional`` and
    ``param_defaults`` describe its parameters in order, each filled by the
    component at the same place in ``providers``.
    """

    # A plain class: a plan of ten thousand components builds ten thousand of
    # them. It keeps its factory's analysis as fields, not as an object of its own.
    __slots__ = ("await_result", "call", "checks", "component", "direct", "enter", "gate", "name",
                 "param_defaults", "param_keys", "param_names", "param_optional", "phase_index",
                 "position", "providers", "provides", "stop_timeout", "timeout")

    def __init__(self, component: Component[Any], analysis: Analysis,
                 providers: tuple[Component[Any] | None, ...], phase_index: int,
                 timeout: float | None, stop_timeout: float | None) -> None:
        self.component = component
        self.name = component.name  # read on every event of the step
        (self.param_names, self.param_keys, self.param_optional, self.param_defaults,
         self.provides, self.call, self.enter, self.await_result) = analysis
        # The provider of each parameter (None: it keeps its default), in
        # parameter order: one tuple per step, not one object per edge.
        self.providers = providers
        self.phase_index = phase_index
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.checks: tuple[PlannedCheck, ...] = ()
        self.position = -1  # index in plan.order
        self.gate = -1  # index of the phase barrier it waits for, -1 for none
        # A coroutine function that provides a plain instance: the engine awaits
        # it directly, with nothing to enter or unwrap.
        self.direct = self.call == "async" and self.enter == "none"

    @property
    def analysis(self) -> Analysis:
        """What the plan read from the factory's signature."""
        return Analysis(self.param_names, self.param_keys, self.param_optional, self.param_defaults,
                        self.provides, self.call, self.enter, self.await_result)

    @property
    def dependencies(self) -> tuple[Dependency, ...]:
        """Each parameter with the component that fills it."""
        return tuple(map(Dependency, self.param_names, self.param_keys, self.param_optional, self.providers))

    def __repr__(self) -> str:
        return f"<Step {self.position} {self.name!r}>"


class Plan:
    """A deterministic, validated start order. Built by :meth:`Registry.plan`."""

    def __init__(self, registry: Registry, steps: list[Step], phases: tuple[str, ...],
                 gates: list[tuple[int, tuple[Step, ...]]], edges: Edges,
                 waits: tuple[list[int], list[int]]) -> None:
        self.registry = registry
        self.name = registry.name
        self.phases = phases
        self._steps = steps  # in plan order
        # gates[g] = (phase index it closes, the critical steps it waits for)
        self._gates = gates
        # (n, out, indegree) in plan positions, gates after the steps.
        self.edges = edges
        # The same graph reversed, as (targets, start): what each node waits for.
        self.waits = waits
        self._by_component = {s.component: s for s in steps}
        self._by_name = {s.name: s for s in steps}
        self._dependents: dict[Step, list[Step]] | None = None
        self._gated: dict[int, list[Step]] | None = None

    # -- the graph ---------------------------------------------------------
    @property
    def order(self) -> tuple[Component[Any], ...]:
        """Components and validators in start order."""
        return tuple(s.component for s in self._steps)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    def step(self, component: Component[Any] | str) -> Step:
        if isinstance(component, str):
            return self._by_name[component]
        return self._by_component[component]

    def __contains__(self, component: object) -> bool:
        return component in self._by_component or component in self._by_name

    def __len__(self) -> int:
        return len(self._steps)

    def gate_members(self, gate: int) -> tuple[Step, ...]:
        return self._gates[gate][1]

    @property
    def gate_count(self) -> int:
        return len(self._gates)

    def predecessors(self, step: Step) -> list[Step]:
        """What ``step`` waits for: its providers and its phase barrier."""
        preds = [self._by_component[c] for c in dict.fromkeys(step.providers) if c is not None]
        if step.gate >= 0:
            known = set(preds)
            preds.extend(s for s in self._gates[step.gate][1] if s not in known)
        return preds

    def successors(self, step: Step) -> list[Step]:
        """What waits for ``step``, the reverse of :meth:`predecessors`."""
        if self._dependents is None:
            dependents: dict[Step, list[Step]] = {s: [] for s in self._steps}
            for s in self._steps:
                for p in self.predecessors(s):
                    dependents[p].append(s)
            self._dependents = dependents
        return self._dependents[step]

    def dependencies_of(self, component: Component[Any] | str) -> tuple[Component[Any], ...]:
        return tuple(s.component for s in self.predecessors(self.step(component)))

    def dependents_of(self, component: Component[Any] | str) -> tuple[Component[Any], ...]:
        return tuple(s.component for s in self.successors(self.step(component)))

    def _longest(self, weights: Sequence[float]) -> tuple[list[float], list[int]]:
        """Per step in plan order: the heaviest chain ending there (``weights`` by
        position), and the position of the step before it on that chain (-1: none).

        A phase barrier is one node, weighed once, not an edge from each of its
        members to each step of the next phase: a walk in O(steps + edges).
        Ties go to the first predecessor, providers before the barrier.
        """
        best: list[float] = []
        before: list[int] = []
        gates: dict[int, int] = {}  # gate -> position of its heaviest member
        position = {s.component: s.position for s in self._steps}
        for i, s in enumerate(self._steps):
            top = -1
            for c in s.providers:
                if c is not None:
                    j = position[c]
                    if top < 0 or best[j] > best[top]:
                        top = j
            if s.gate >= 0:
                g = gates.get(s.gate)
                if g is None:
                    members = [m.position for m in self._gates[s.gate][1]]
                    g = gates[s.gate] = max(members, key=best.__getitem__)
                if top < 0 or best[g] > best[top]:
                    top = g
            best.append((best[top] if top >= 0 else 0.0) + weights[i])
            before.append(top)
        return best, before

    @property
    def levels(self) -> tuple[tuple[Component[Any], ...], ...]:
        """Groups that can start together: level n waits only for levels < n."""
        depth, _ = self._longest([1.0] * len(self._steps))
        groups: list[list[Component[Any]]] = [[] for _ in range(int(max(depth, default=0)))]
        for s, d in zip(self._steps, depth, strict=True):
            groups[int(d) - 1].append(s.component)
        return tuple(tuple(g) for g in groups)

    def critical_path_for(self, durations: Mapping[str, float]) -> tuple[list[str], float]:
        """The longest chain by ``durations`` (seconds by name, missing counts 0)."""
        if not self._steps:
            return [], 0.0
        best, before = self._longest([durations.get(s.name, 0.0) for s in self._steps])
        end = max(range(len(best)), key=best.__getitem__)
        total = best[end]
        chain: list[str] = []
        while end >= 0:
            chain.append(self._steps[end].name)
            end = before[end]
        return chain[::-1], total

    @property
    def critical_path(self) -> tuple[Component[Any], ...]:
        """The longest chain, each step counted by its expected duration.

        Without measurements every step counts as one unit; the report uses
        :meth:`critical_path_for` with measured durations.
        """
        names, _ = self.critical_path_for(dict.fromkeys(self._by_name, 1.0))
        return tuple(self._by_name[n].component for n in names)

    # -- renderings --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phases": list(self.phases),
            "order": [s.name for s in self._steps],
            "levels": [[c.name for c in level] for level in self.levels],
            "critical_path": [c.name for c in self.critical_path],
            "components": [self._step_dict(s) for s in self._steps],
            # Each barrier once, not its members under every step behind it: a
            # plan of two phases of thousands would otherwise list millions.
            "barriers": [{"phase": self.phases[k], "waits_for": [m.name for m in members]}
                         for k, members in self._gates],
        }

    def _step_dict(self, s: Step) -> dict[str, Any]:
        c = s.component
        return {
            "name": s.name,
            "kind": c.kind,
            "provides": type_name(s.provides) if s.provides is not None else None,
            "phase": self.phases[s.phase_index] if self.phases else None,
            "critical": c.critical,
            "depends_on": [c.name for c in s.providers if c is not None],
            "barrier": self.phases[self._gates[s.gate][0]] if s.gate >= 0 else None,
            "timeout": s.timeout,
            "stop_timeout": s.stop_timeout,
            "retries": c.retries,
            "once": c.once,
            "tags": sorted(c.tags),
            "checks": [pc.check.name for pc in s.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def _edges(self) -> Iterable[tuple[Step, Step, bool]]:
        for s in self._steps:
            for d in s.dependencies:
                if d.provider is not None:
                    yield self._by_component[d.provider], s, d.optional

    def _by_phase(self) -> list[list[Step]]:
        """The steps of each phase (one group without phases), in plan order."""
        groups: list[list[Step]] = [[] for _ in self.phases or ("",)]
        for s in self._steps:
            groups[s.phase_index].append(s)
        return groups

    def to_dot(self) -> str:
        lines = [f"digraph {json.dumps(self.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
        for phase, members in zip(self.phases or ("",), self._by_phase(), strict=True):
            indent = "  "
            if self.phases:
                lines.append(f"  subgraph {json.dumps('cluster_' + phase)} {{")
                lines.append(f"    label={json.dumps(phase)};")
                indent = "    "
            for s in members:
                style = []
                if s.component.optional:
                    style.append("style=dashed")
                if s.component.kind == "validator":
                    style.append("shape=diamond")
                attrs = ", ".join([f"label={json.dumps(s.name)}", *style])
                lines.append(f"{indent}{json.dumps(s.name)} [{attrs}];")
            if self.phases:
                lines.append("  }")
        for a, b, optional in self._edges():
            attr = " [style=dashed]" if optional else ""
            lines.append(f"  {json.dumps(a.name)} -> {json.dumps(b.name)}{attr};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        ids = {s: f"c{i}" for i, s in enumerate(self._steps)}
        lines = ["flowchart LR"]
        for phase, members in zip(self.phases or ("",), self._by_phase(), strict=True):
            if self.phases:
                lines.append(f'  subgraph {phase}["{phase}"]')
            for s in members:
                label = s.name + (" (optional)" if s.component.optional else "")
                shape = ("{{", "}}") if s.component.kind == "validator" else ("[", "]")
                lines.append(f'    {ids[s]}{shape[0]}"{label}"{shape[1]}')
            if self.phases:
                lines.append("  end")
        for a, b, optional in self._edges():
            arrow = "-.->" if optional else "-->"
            lines.append(f"  {ids[a]} {arrow} {ids[b]}")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        lines = [f"plan {self.name}: {len(self._steps)} steps, {len(self.levels)} levels"]
        current = None
        for s in self._steps:
            phase = self.phases[s.phase_index] if self.phases else None
            if phase != current:
                lines.append(f"phase {phase}")
                current = phase
            deps = [c.name for c in s.providers if c is not None]
            flags = [] if s.component.critical else ["optional"]
            if s.component.kind == "validator":
                flags.append("validator")
            if s.component.once:
                flags.append("once")
            label = f"  {s.position + 1:>3}. {s.name}"
            if flags:
                label += f" [{', '.join(flags)}]"
            if deps:
                label += f"  <- {', '.join(deps)}"
            lines.append(label)
        lines.append("critical path: " + " -> ".join(c.name for c in self.critical_path))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<Plan {self.name!r}: {len(self._steps)} steps>"


# -- building ------------------------------------------------------------------


def _is_factory(value: object) -> bool:
    return isinstance(value, Component) or inspect.isfunction(value) or inspect.ismethod(value) \
        or isinstance(value, type) or type(value).__name__ == "partial"


def _close(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


class _Builder:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.problems: list[str] = []
        self.analyses: dict[Component[Any], Analysis] = {}

    def analysis(self, c: Component[Any]) -> Analysis | None:
        known = self.analyses.get(c)
        if known is not None:
            return known
        try:
            a = analyse(c.factory, c.provides, UNSET)
        except AnalysisError as exc:
            self.problems.append(f"{c.kind} {c.name!r} ({_origin(c.factory)}): {exc}")
            return None
        if c.kind == "validator":
            a = a._replace(provides=None)
        self.analyses[c] = a
        return a


def _origin(fn: Callable[..., Any]) -> str:
    code = code_of(fn)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(fn)


def _override_component(original: Component[Any], value: Any) -> Component[Any]:
    options: dict[str, Any] = {
        "name": original.name, "phase": original.phase, "optional": original.optional,
        "provides": original.provides, "tags": original.tags,
    }
    if isinstance(value, Wrap):  # the real component, and what it provides wrapped
        replacement = Component(original.factory, timeout=original.timeout,
                                stop_timeout=original.stop_timeout, retries=original.retries,
                                backoff=original.backoff, blocking=original.blocking, **options)
        replacement.checks = original.checks
        replacement.wrapper = value.fn
        replacement.once = original.once
    elif _is_factory(value):
        factory = value.factory if isinstance(value, Component) else value
        options.update(timeout=original.timeout, stop_timeout=original.stop_timeout,
                       retries=original.retries, backoff=original.backoff,
                       blocking=original.blocking)
        replacement = Component(factory, **options)
    else:
        def override_value() -> Any:
            return value

        replacement = Component(override_value, blocking=False, value=value, **options)
    replacement.index = original.index
    return replacement


def build_plan(registry: Registry, *, overrides: Mapping[Any, Any] | None = None,
               only: Iterable[Any] | None = None) -> Plan:
    b = _Builder(registry)
    phases = registry.phases
    components = list(registry.components)

    # names and options
    seen: dict[str, Component[Any]] = {}
    for c in components:
        b.problems.extend(c.problems(phases))
        if c.name in seen and seen[c.name] is not c:
            b.problems.append(f"two declarations are named {c.name!r} ({_origin(seen[c.name].factory)} "
                              f"and {_origin(c.factory)}); pass name= to tell them apart")
        seen[c.name] = c
    if len(set(map(id, components))) != len(components):
        components = list(dict.fromkeys(components))

    phase_index: dict[Component[Any], int] = {}
    index_of_phase = {phase: k for k, phase in enumerate(phases)}
    for c in components:
        if c.phase is None or not isinstance(c.phase, str):
            phase_index[c] = 0
        elif not phases:
            raise UnknownPhaseError(
                f"{c.kind} {c.name!r} has phase={c.phase!r}, but registry {registry.name!r} "
                "declares no phases; pass phases=(...) to Registry()"
            )
        elif c.phase not in index_of_phase:
            raise UnknownPhaseError(
                f"{c.kind} {c.name!r} has phase={c.phase!r}, which registry {registry.name!r} "
                f"does not declare (phases: {', '.join(phases)}){_close(c.phase, phases)}"
            )
        else:
            phase_index[c] = index_of_phase[c.phase]

    # providers by type, before overrides so that an override key can be a type
    providers: dict[Any, Component[Any]] = {}
    for c in components:
        a = b.analysis(c)
        if a is None or a.provides is None:
            continue
        other = providers.get(a.provides)
        if other is not None:
            raise DuplicateProviderError(
                f"{type_name(a.provides)} is provided by both {other.name!r} ({_origin(other.factory)}) "
                f"and {c.name!r} ({_origin(c.factory)}); remove one, or pass provides= to tell them apart"
            )
        try:
            providers[a.provides] = c
        except TypeError:
            b.problems.append(f"{c.kind} {c.name!r} provides {a.provides!r}, which is not hashable")
    if b.problems:
        raise DeclarationError(_join(b.problems))

    replaced: dict[Component[Any], Component[Any]] = {}
    for key, value in (overrides or {}).items():
        if isinstance(key, Component):
            target = key if key in phase_index else None
        elif isinstance(key, str):
            target = seen.get(key)
        else:
            target = providers.get(key)
        if target is None:
            label = key if isinstance(key, str) else (key.name if isinstance(key, Component) else type_name(key))
            names = [type_name(t) for t in providers] + list(seen)
            raise MissingDependencyError(
                f"override for {label} matches no component of {registry.name!r}{_close(str(label), names)}"
            )
        new = _override_component(target, value)
        replaced[target] = new
        phase_index[new] = phase_index[target]
        a = b.analysis(new)
        if a is not None and target.provides is UNSET:
            old = b.analyses[target]
            b.analyses[new] = a._replace(provides=old.provides)
        if b.analyses[target].provides is not None:
            providers[b.analyses[target].provides] = new
    if b.problems:
        raise DeclarationError(_join(b.problems))
    components = [replaced.get(c, c) for c in components]

    # resolve dependencies
    # deps[c]: the provider of each parameter, None where none (its default, if any)
    deps: dict[Component[Any], tuple[Component[Any] | None, ...]] = {}
    for c in [*components, *replaced]:
        resolved = tuple([providers.get(k) for k in b.analyses[c].param_keys])
        if None in resolved and c not in replaced:  # a replaced component's needs no longer matter
            for p, provider in zip(b.analyses[c].params, resolved, strict=True):
                if provider is None and not p.has_default:
                    b.problems.append(_missing(c, p.name, p.key, providers))
        deps[c] = resolved

    # prune: only=, and what only the replaced components needed
    keep = _keep(components, deps, providers, seen, replaced, only, registry)
    components = [c for c in components if c in keep]
    if b.problems:
        raise MissingDependencyError(_join(b.problems))

    # Only an optional provider can make this mistake; most plans have few of them.
    optional = {c for c in components if c.optional}
    for c in components if optional else ():
        if not c.critical or optional.isdisjoint(deps[c]):
            continue
        a = b.analyses[c]
        for name, key, maybe, provider in zip(a.param_names, a.param_keys, a.param_optional, deps[c],
                                              strict=True):
            if provider is not None and provider.optional and not maybe:
                b.problems.append(
                    f"critical {c.kind} {c.name!r} needs {type_name(key)} from optional component "
                    f"{provider.name!r} (parameter {name!r}); annotate it "
                    f"`{name}: {type_name(key)} | None` to run without it, or make "
                    f"{c.name!r} optional=True"
                )
    if b.problems:
        raise DeclarationError(_join(b.problems))

    default_timeout = registry.default_timeout
    default_stop = registry.default_stop_timeout
    steps: dict[Component[Any], Step] = {}
    analyses = b.analyses
    for c in components:
        steps[c] = Step(c, analyses[c], deps[c], phase_index[c],
                        default_timeout if c.timeout is UNSET else c.timeout,  # type: ignore[arg-type]
                        default_stop if c.stop_timeout is UNSET else c.stop_timeout)  # type: ignore[arg-type]
    _plan_checks(b, steps, providers)
    if b.problems:
        raise MissingDependencyError(_join(b.problems))

    # barriers: phase k waits for the critical steps of the nearest earlier phase that has any
    gates: list[tuple[int, tuple[Step, ...]]] = []
    if phases:
        critical_by_phase: dict[int, list[Step]] = {}
        for s in steps.values():
            if s.component.critical:
                critical_by_phase.setdefault(s.phase_index, []).append(s)
        gate_of_phase: dict[int, int] = {}
        last = -1
        for k in range(len(phases)):
            if last >= 0:
                gate_of_phase[k] = last
            if critical_by_phase.get(k):
                gates.append((k, tuple(critical_by_phase[k])))
                last = len(gates) - 1
        for s in steps.values():
            s.gate = gate_of_phase.get(s.phase_index, -1)

    ordered, edges, waits = _toposort(list(steps.values()), gates, phases)
    for i, s in enumerate(ordered):
        s.position = i
    return Plan(registry, ordered, phases, gates, edges, waits)


def _join(problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _missing(c: Component[Any], parameter: str, key: Any, providers: Mapping[Any, Component[Any]]) -> str:
    wanted = type_name(key)
    names = {type_name(t): p.name for t, p in providers.items()}
    close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.5)
    hint = ""
    if close:
        hint = "; closest provided types: " + ", ".join(f"{n} (from {names[n]!r})" for n in close)
    return (f"{c.kind} {c.name!r} ({_origin(c.factory)}) needs {wanted} (parameter {parameter!r}), "
            f"but no component provides it{hint}")


def _keep(components: list[Component[Any]], deps: Mapping[Component[Any], tuple[Component[Any] | None, ...]],
          providers: Mapping[Any, Component[Any]], by_name: Mapping[str, Component[Any]],
          replaced: Mapping[Component[Any], Component[Any]], only: Iterable[Any] | None,
          registry: Registry) -> set[Component[Any]]:
    def closure(roots: Iterable[Component[Any]]) -> set[Component[Any]]:
        out: set[Component[Any]] = set()
        todo = list(roots)
        while todo:
            c = todo.pop()
            if c in out:
                continue
            out.add(c)
            todo.extend(p for p in deps.get(c, ()) if p is not None)
        return out

    if only is not None:
        roots = []
        for key in only:
            found: Component[Any] | None
            if isinstance(key, Component):
                found = replaced.get(key, key)
            elif isinstance(key, str):
                found = by_name.get(key)
                found = replaced.get(found, found) if found is not None else None
            else:
                found = providers.get(key)
            if found is None or found not in deps:
                label = key if isinstance(key, str) else type_name(key)
                raise MissingDependencyError(
                    f"only= asks for {label}, which no component of {registry.name!r} provides"
                    f"{_close(str(label), [type_name(t) for t in providers] + list(by_name))}"
                )
            roots.append(found)
        return closure(roots)
    if not replaced:
        return set(components)
    # The replaced components' own dependencies start only if something else needs them.
    candidates: set[Component[Any]] = set()
    for original in replaced:
        candidates |= closure([original]) - {original}
    candidates -= set(replaced.values())
    needed = closure(c for c in components if c not in candidates)
    return {c for c in components if c not in candidates or c in needed}


def _plan_checks(b: _Builder, steps: dict[Component[Any], Step],
                 providers: Mapping[Any, Component[Any]]) -> None:
    for c, s in steps.items():
        if not c.checks:
            continue
        reach: set[Component[Any]] = set()
        todo = [c]
        while todo:
            x = todo.pop()
            if x not in reach:
                reach.add(x)
                todo.extend(c for c in steps[x].providers if c is not None)
        planned = []
        for check in c.checks:
            try:
                a = analyse(check.fn, None, UNSET)
            except AnalysisError as exc:
                b.problems.append(f"check {check.name!r} of {c.name!r}: {exc}")
                continue
            resolved = []
            for p in a.params:
                provider = providers.get(p.key)
                if provider is None and not p.has_default:
                    b.problems.append(_missing(c, p.name, p.key, providers).replace(
                        f"{c.kind} {c.name!r}", f"check {check.name!r} of {c.name!r}", 1))
                elif provider is not None and provider not in reach:
                    b.problems.append(
                        f"check {check.name!r} of {c.name!r} needs {type_name(p.key)} from "
                        f"{provider.name!r}, which {c.name!r} does not depend on; a check sees "
                        "its component and that component's dependencies"
                    )
                else:
                    resolved.append(Dependency(p.name, p.key, p.optional, provider))
            planned.append(PlannedCheck(check, tuple(resolved)))
        s.checks = tuple(planned)


# A graph in compressed rows: the targets of node i are targets[start[i]:start[i + 1]].
# Two flat lists of ints instead of a list per node: a plan of ten thousand
# steps gives the garbage collector two objects to track, not ten thousand.
Edges = tuple[int, list[int], list[int], list[int]]  # (n, targets, start, indegree)


def rows(count: int, pairs: Callable[[], Iterable[tuple[int, int]]]) -> tuple[list[int], list[int]]:
    """(targets, start) of the edges (source, target) that ``pairs()`` yields, over ``count`` nodes.

    ``pairs`` is called twice (count, then fill), so no edge is kept as an object.
    """
    start = [0] * (count + 1)
    for source, _ in pairs():
        start[source + 1] += 1
    for k in range(count):
        start[k + 1] += start[k]
    fill = start[:-1]
    targets = [0] * start[count]
    for source, target in pairs():
        targets[fill[source]] = target
        fill[source] += 1
    return targets, start


def _transpose(count: int, targets: list[int], sources: list[int]) -> tuple[list[int], list[int]]:
    """The rows of the reversed graph; ``sources[e]`` is the node whose row holds ``targets[e]``."""
    out_start = [0] * (count + 1)
    for j in targets:
        out_start[j + 1] += 1
    out_start = list(itertools.accumulate(out_start))
    fill = out_start[:-1]
    out = [0] * len(targets)
    for j, i in zip(targets, sources):  # noqa: B905 - one length by construction
        out[fill[j]] = i
        fill[j] += 1
    return out, out_start


def _toposort(nodes: list[Step], gates: list[tuple[int, tuple[Step, ...]]],
              phases: Sequence[str]) -> tuple[list[Step], Edges, tuple[list[int], list[int]]]:
    """Kahn's algorithm, ties by (phase, declaration order); gates are virtual nodes.

    Returns the order, the graph in plan positions (:data:`Edges`) over steps
    ``0..n-1`` and gates ``n..`` (the engine walks it), and its reverse as
    rows (what each node waits for: the order a stop walks).
    """
    # Sorted once by the tie-break, a node's index is its priority: the heap
    # holds plain ints (gates as negatives, so they open as soon as they can).
    nodes.sort(key=lambda s: (s.phase_index, s.component.index))
    n = len(nodes)
    total = n + len(gates)
    ident = {s.component: i for i, s in enumerate(nodes)}
    # What each node waits for, as rows, built in one pass in node order.
    waits: list[int] = []
    waits_start = [0]
    owner: list[int] = []  # owner[e]: the node whose row holds waits[e]
    # Declared in dependency order (the common case), every edge goes forward:
    # then Kahn's order is the sort itself, and there is nothing to renumber.
    forward = True
    for i, s in enumerate(nodes):
        row = [ident[c] for c in s.providers if c is not None]
        if row:
            if len(row) > 1:
                row = list(dict.fromkeys(row))  # two parameters of one type are one edge
            if max(row) >= i:
                forward = False
        if s.gate >= 0:
            row.append(n + s.gate)
        waits += row
        owner += [i] * len(row)
        waits_start.append(len(waits))
    for g, (_, members) in enumerate(gates):
        row = [ident[m.component] for m in members]
        waits += row
        owner += [n + g] * len(row)
        waits_start.append(len(waits))
    targets, start = _transpose(total, waits, owner)
    indegree = [waits_start[i + 1] - waits_start[i] for i in range(total)]
    if forward:
        return nodes, (n, targets, start, indegree), (waits, waits_start)

    remaining = list(indegree)
    ready = [i if i < n else n - 1 - i for i in range(total) if remaining[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        key = heapq.heappop(ready)
        i = key if key >= 0 else n - 1 - key
        if i < n:
            order.append(i)
        for j in targets[start[i]:start[i + 1]]:
            remaining[j] -= 1
            if remaining[j] == 0:
                heapq.heappush(ready, j if j < n else n - 1 - j)
    if len(order) < n:
        _raise_cycle(nodes, [targets[start[i]:start[i + 1]] for i in range(total)], remaining, gates, phases)
    position = list(range(total))
    for pos, i in enumerate(order):
        position[i] = pos
    indegree_by_position = [0] * total
    for i in range(total):
        indegree_by_position[position[i]] = indegree[i]
    moved = rows(total, lambda: ((position[i], position[j]) for i in range(total)
                                 for j in targets[start[i]:start[i + 1]]))
    back = rows(total, lambda: ((position[j], position[i]) for i in range(total)
                                for j in targets[start[i]:start[i + 1]]))
    return [nodes[i] for i in order], (n, moved[0], moved[1], indegree_by_position), back


def _raise_cycle(nodes: list[Step], out: list[list[int]], indegree: list[int],
                 gates: list[tuple[int, tuple[Step, ...]]], phases: Sequence[str]) -> None:
    n = len(nodes)
    remaining = {i for i, d in enumerate(indegree) if d > 0}

    def label(i: int) -> str:
        if i < n:
            return nodes[i].name
        return f"(barrier after phase {phases[gates[i - n][0]]!r})"

    # Follow edges backwards inside the remaining set until a node repeats.
    back: dict[int, list[int]] = {i: [] for i in remaining}
    for i in remaining:
        for j in out[i]:
            if j in remaining:
                back[j].append(i)
    start = min(remaining, key=lambda i: (i >= n, i))
    path: list[int] = []
    index: dict[int, int] = {}
    node = start
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = min(back[node], key=lambda i: (i >= n, i))
    cycle = path[index[node]:]
    cycle.append(cycle[0])
    names = [label(i) for i in cycle]
    hint = ""
    if any(i >= n for i in cycle):
        hint = ("; a component cannot depend on a critical component of a later phase "
                "(phases start in order): move one of them to another phase")
    raise CycleError("dependency cycle: " + " -> ".join(names) + " (each needs the next)" + hint,
                     [nm for i, nm in zip(cycle, names, strict=True) if i < n] or names)
