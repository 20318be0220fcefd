"""The layout rules of docs/design.md, checked on the source: no import cycles (every import,
also those inside functions), imports only from lower layers, no module over 500 lines, no
function-level imports but of optional heavy dependencies (each with its reason), ``__all__``
in every public module, docstring references that resolve, and the posterior maths free of
transformers."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "swag_lora"
MAX_LINES = 500

# What each layer (a subpackage, or a foundation module) may import from the project, besides
# itself: the layer picture of docs/design.md.
FOUNDATION = {"errors", "version", "files", "tensorfile", "distributed"}
ALLOWED = {
    "errors": set(),
    "version": set(),
    "files": {"errors"},
    "tensorfile": {"errors", "files"},
    "metrics": set(),
    "distributed": set(),
    "tasks": {"errors", "files"},
    "bayes": FOUNDATION | {"metrics"},
    "lm": FOUNDATION | {"metrics", "bayes", "tasks"},
    "training": FOUNDATION | {"metrics", "bayes", "lm"},
    "runs": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "training"},
    "evaluation": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "runs"},
    "prediction": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "runs", "evaluation"},
    "generation": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "training", "runs", "evaluation"},
    "report": {"errors", "files", "metrics", "bayes", "evaluation"},
    "benchmark": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "runs", "training", "evaluation", "report",
                               "generation"},
    "cli": FOUNDATION | {"metrics", "bayes", "lm", "tasks", "runs", "training", "evaluation", "prediction",
                         "report", "generation"},
}
# Third-party modules that may be imported inside a function (optional or slow to import).
LAZY_ALLOWED = {"laplace", "matplotlib", "deepspeed", "datasets", "pyarrow", "ivon"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_module(name: str, known: dict[str, Path]) -> bool:
    return name in known


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported project module, line, inside a function) for every import statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "swag_lora":
                        found.append((alias.name, child.lineno, inside))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] != "swag_lora":
                    continue
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    found.append((sub if _is_module(sub, known) else target, child.lineno, inside))
            visit(child, inside)

    visit(tree, False)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _, _ in imports_of(name, path, known)} for name, path in known.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), by Tarjan."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_what_they_may():
    known = modules()
    wrong = []
    for name, path in known.items():
        mine = layer(name)
        if not mine:  # the package itself: the public API imports from everywhere, lazily
            continue
        for target, line, _ in imports_of(name, path, known):
            theirs = layer(target)
            if theirs and theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{path.relative_to(SRC)}:{line} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)
    assert set(ALLOWED) == {layer(n) for n in known if layer(n)}, "a layer is missing from ALLOWED"


def test_no_module_over_500_lines():
    long = {str(p.relative_to(SRC)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_imports_inside_functions_only_for_optional_heavy_dependencies():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if not isinstance(sub, (ast.Import, ast.ImportFrom)):
                    continue
                names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [sub.module or ""]
                top = {n.split(".")[0] for n in names}
                where = f"{path.relative_to(SRC)}:{sub.lineno}"
                if getattr(sub, "level", 0) or not top <= LAZY_ALLOWED:
                    wrong.append(f"{where}: {lines[sub.lineno - 1].strip()} (import it at the top)")
                elif "#" not in lines[sub.lineno - 1]:
                    wrong.append(f"{where}: a function-level import needs its reason as a comment")
    assert not wrong, "\n".join(wrong)


def test_public_modules_declare_all():
    missing = []
    for name, path in modules().items():
        stem = path.stem
        if stem.startswith("_") and stem != "__init__" or stem == "__main__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        has_all = any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets)
                      for n in tree.body)
        defines = any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
                      for n in tree.body)
        if defines and not has_all:
            missing.append(name)
    assert not missing, f"modules with public names but no __all__: {missing}"


def test_docstring_references_resolve():
    pattern = re.compile(r":(?:class|func|mod|meth|data|attr|exc):`~?(swag_lora(?:\.\w+)+)`")
    bad = []
    for path in PACKAGE.rglob("*.py"):
        for ref in pattern.findall(path.read_text(encoding="utf-8")):
            parts = ref.split(".")
            for i in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                except ImportError:
                    continue
                try:
                    for attribute in parts[i:]:
                        obj = getattr(obj, attribute)
                except AttributeError:
                    bad.append(f"{path.relative_to(SRC)}: {ref}")
                break
    assert not bad, "\n".join(bad)
    assert not [p for p in PACKAGE.rglob("*.py") if "DESIGN.md" in p.read_text(encoding="utf-8")], \
        "docstrings cite docs/design.md"


@pytest.mark.parametrize("module", ["swag_lora.bayes.posterior", "swag_lora.bayes.registry", "swag_lora.metrics",
                                    "swag_lora.report.format", "swag_lora"])
def test_posterior_maths_and_metrics_load_without_transformers(module):
    code = f"import sys, {module}; print('transformers' in sys.modules, 'peft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], f"{module} imports transformers or peft"


def test_public_api():
    import swag_lora

    for name in swag_lora.__all__:
        assert getattr(swag_lora, name) is not None, name
    from swag_lora import SwagCallback, SwagPosterior, SwagSettings

    assert SwagPosterior.__module__ == "swag_lora.bayes.posterior"
    assert SwagCallback.__module__ == "swag_lora.training.callbacks"
    assert SwagSettings.__module__ == "swag_lora.training.settings"
    with pytest.raises(AttributeError):
        swag_lora.no_such_name  # noqa: B018
