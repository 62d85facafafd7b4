"""The package's shape, held by tests (issue "One house"): no import cycles among cbagpu's
modules at import time, nothing outside the CLI imports the CLI, at most three places
outside ``cbagpu/backend/`` that ask which backend they run on (each says why), and no
library module touches matplotlib's global backend."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "cbagpu"

# asking a backend for its name, or reaching for CuPy directly
IDENTITY = re.compile(
    r"""\.name\s*(==|!=|\bin\b|\bnot\s+in\b)|__name__\s*(==|!=)\s*["']cupy|["']cupy["']\s*(==|!=|\bin\b)|(==|!=)\s*["']cupy["']|^\s*(import\s+cupy|from\s+cupyx?\b)"""
)


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, node: ast.ImportFrom, known: dict[str, Path]) -> list[str]:
    if node.level:
        base = name.split(".")
        if not known[name].name == "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    targets = []
    for alias in node.names:
        sub = f"{mod}.{alias.name}"
        targets.append(sub if sub in known else mod)
    return targets


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """module -> cbagpu modules it imports (at import time when ``top_level_only``)."""
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # imports for type checkers only never run
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        stack = list(nodes)
        while stack:  # module level, including inside if/try at module level
            node = stack.pop()
            if top_level_only and isinstance(node, (ast.If, ast.Try)):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                stack.extend(node.body + node.orelse + getattr(node, "finalbody", [])
                             + [h for t in getattr(node, "handlers", []) for h in t.body])
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, node, known)
            else:
                continue
            for t in targets:
                while t and t not in known:
                    t = t.rpartition(".")[0]
                if t and t.startswith("cbagpu") and t != name:
                    graph[name].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _is_package_parent(a: str, b: str) -> bool:
    """A package importing its own submodule (``cbagpu.x`` -> ``cbagpu.x.y``) and the
    submodule importing a sibling through the package is not a design cycle."""
    return b.startswith(a + ".") or a.startswith(b + ".")


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level", "any-import"])
def test_no_import_cycles(top_level_only):
    """None at import time, and none held together by imports inside functions either."""
    graph = import_graph(top_level_only)
    # a package __init__ re-exporting its submodules is the package's face, not a cycle
    pruned = {m: {t for t in ts if not _is_package_parent(m, t)} for m, ts in graph.items()}
    assert find_cycles(pruned) == []


def test_find_cycles_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_nothing_outside_the_cli_imports_it():
    graph = import_graph(top_level_only=False)
    bad = sorted(m for m, ts in graph.items()
                 if not (m == "cbagpu.cli" or m.startswith("cbagpu.cli.") or m == "cbagpu.__main__")
                 and any(t == "cbagpu.cli" or t.startswith("cbagpu.cli.") for t in ts))
    assert bad == []


def identity_checks() -> list[str]:
    hits = []
    for name, path in modules().items():
        if name.startswith("cbagpu.backend"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if not line.lstrip().startswith(("import", "from")) \
                else line
            if IDENTITY.search(code) and "argparse" not in line:
                hits.append(f"{path.relative_to(ROOT.parent)}:{i}: {line.strip()}")
    return hits


def test_at_most_three_backend_identity_checks_outside_the_backend():
    hits = identity_checks()
    assert len(hits) <= 3, "\n".join(hits)
    for hit in hits:  # each says why, on its own line or in the comment just above
        path, line_no, _ = hit.split(":", 2)
        lines = (ROOT.parent / path).read_text().splitlines()
        i = int(line_no) - 1
        assert any("backend identity" in line for line in lines[max(0, i - 3): i + 1]), hit


def test_identity_pattern_sees_the_usual_forms():
    for line in ('if be.name == "cupy":', "if xp.__name__ == 'cupy':", "import cupy",
                 "from cupyx.scipy import ndimage", 'if backend.name != "numpy":',
                 'if be.name in _KERNEL_BACKENDS:'):
        assert IDENTITY.search(line), line
    for line in ('backend=be.name,', 'out["backend"] = be.name', 'key = (be, shape)'):
        assert not IDENTITY.search(line), line


@pytest.mark.parametrize("name", sorted(m for m in modules() if not m.startswith("cbagpu.cli")))
def test_library_never_sets_matplotlib_backend(name):
    text = modules()[name].read_text()
    assert not re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import "
                         r"pyplot", text), name


def test_every_package_is_installed():
    """A non-editable install ships only the packages pyproject.toml lists."""
    import tomllib

    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]
                 ["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT.parent).parts) for p in ROOT.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
