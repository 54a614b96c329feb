"""The step graph of a pipeline: order, parents, descendants.

seaway.spec.crossref already refused unknown references and cycles when the spec was
loaded, so building the graph here cannot fail on a valid spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from seaway.pipeline.plan import PipelinePlan, StepInput, parse_ref


@dataclass(frozen=True)
class Dag:
    order: list[str]  # topological; ties keep declaration order
    parents: dict[str, list[str]]
    children: dict[str, list[str]]

    def descendants(self, step: str) -> list[str]:
        """Every step that depends on `step`, directly or not, in topological order."""
        seen: set[str] = set()
        stack = [step]
        while stack:
            for child in self.children[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return [s for s in self.order if s in seen]


def build_dag(plan: PipelinePlan) -> Dag:
    parents: dict[str, list[str]] = {name: [] for name in plan.steps}
    for name, step in plan.steps.items():
        deps: list[str] = []
        for text in step.inputs.values():
            ref = parse_ref(text)
            if isinstance(ref, StepInput) and ref.step not in deps:
                deps.append(ref.step)
        for need in step.needs:
            if need not in deps:
                deps.append(need)
        parents[name] = deps
    children: dict[str, list[str]] = {name: [] for name in plan.steps}
    for name, deps in parents.items():
        for dep in deps:
            children[dep].append(name)
    # Kahn's algorithm, always taking the earliest declared ready step: a stable order
    # that reads like the spec.
    remaining = {name: len(deps) for name, deps in parents.items()}
    position = {name: i for i, name in enumerate(plan.steps)}
    ready = sorted((n for n, c in remaining.items() if c == 0), key=position.__getitem__)
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in children[name]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
                ready.sort(key=position.__getitem__)
    if len(order) != len(parents):
        from seaway.errors import SpecError

        raise SpecError(
            f"pipeline '{plan.name}' has a dependency cycle among: "
            + ", ".join(n for n in plan.steps if n not in order),
            hint="run `seaway validate` for details",
        )
    return Dag(order, parents, children)
