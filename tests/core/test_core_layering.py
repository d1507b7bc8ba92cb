"""Dependencies point one way: CLI/pipelines -> step packages -> core (docs/architecture.md).

Read from the source with ``ast`` (nothing is imported), so a new upward or sideways import, or an
import cycle between packages, fails here before it confuses anyone.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = "core"
STEP_PACKAGES = ("processing", "data_quality", "training", "evaluation", "inference", "seed_infra", "monitoring")
TOP = "pipelines"  # the CLI, the pipeline definition, the executor, the registry and deployment
PACKAGES = (CORE, *STEP_PACKAGES, TOP)
LAYER = {CORE: 0, **{p: 1 for p in STEP_PACKAGES}, TOP: 2}


def project_imports(path: Path) -> set[str]:
    """Top-level project packages imported by a module (module-level and inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out |= {n.split(".")[0] for n in names} & set(PACKAGES)
    return out


def package_edges() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the importing files."""
    edges: dict[str, dict[str, list[str]]] = {p: {} for p in PACKAGES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in project_imports(path) - {package}:
                edges[package].setdefault(target, []).append(str(path.relative_to(ROOT)))
    return edges


def test_reader_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom core import contract\n\ndef g():\n    from training.price import train\n    import numpy\n")
    assert project_imports(f) == {"core", "training"}


def test_no_upward_or_sideways_imports():
    bad = [
        f"{pkg} -> {target} ({', '.join(files)})"
        for pkg, targets in package_edges().items()
        for target, files in targets.items()
        if LAYER[target] >= LAYER[pkg]  # same layer (sideways) or above (upward)
    ]
    assert bad == [], "imports against the layering:\n" + "\n".join(bad)


def test_no_cycle_between_packages_or_modules():
    graphlib.TopologicalSorter({p: set(t) for p, t in package_edges().items()}).static_order()
    # Module level too: e.g. pipelines.definition <-> pipelines.validate.
    modules: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            deps: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    deps |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
                elif isinstance(node, ast.Import):
                    deps |= {a.name for a in node.names}
            modules[name] = deps
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError naming the cycle
