"""Imports point down the layers (DESIGN §2) and never in a circle.

- The core runs without the UI: nothing below the front-ends, nor the CLI and the daemon, loads
  textual (it costs start-up time and would tie the engine to one front-end).
- No two modules of ours import each other, directly or round a longer circle: every import
  counts, at module level, inside a function or under TYPE_CHECKING.
- Each layer imports only the layers below it: domain nothing but itself; the store the
  domain and the settings; the engine those, the keystore and the simulated endpoint (an
  adapter); none of the core (domain, store, engine, export) a front-end or the Workbench;
  the simulated endpoint nothing of the engine, so it runs without it.
- The two terminal front-ends stand side by side: the app imports nothing of the CLI (what both
  print, such as a config's text, lives below them), and the CLI nothing of the app except in
  the command that launches it, and there only when it runs (textual loads for no other
  command).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import promptlooper_tui

CHECK = """
import contextlib, pkgutil, sys
import promptlooper_tui.domain, promptlooper_tui.engine, promptlooper_tui.export
import promptlooper_tui.simulated, promptlooper_tui.store, promptlooper_tui.workbench
packages = (
    promptlooper_tui.domain,
    promptlooper_tui.engine,
    promptlooper_tui.export,
    promptlooper_tui.simulated,
    promptlooper_tui.store,
    promptlooper_tui.workbench,
)
for package in packages:
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        __import__(module.name)
import promptlooper_tui.server.http, promptlooper_tui.cli
with contextlib.suppress(SystemExit):
    promptlooper_tui.cli.main(["--help"])
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "textual")
print("textual modules:", loaded)
sys.exit(1 if loaded else 0)
"""

PACKAGE = Path(promptlooper_tui.__file__).parent
ROOT = "promptlooper_tui"

#: What must stay out of the core: the front-ends and the Workbench they share.
FRONT = {"service", "workbench", "tui", "cli", "server"}
#: Layer -> the layers it may import ("" is the package itself: its version).
ALLOWED = {
    "domain": {"domain"},
    "store": {"domain", "store", "settings"},
    "engine": {"", "domain", "store", "engine", "settings", "keystore", "simulated"},
    "keystore": {"domain", "settings"},
}
#: The one CLI module that may import the app: the command that launches it, when it runs.
APP_LAUNCHER = f"{ROOT}.cli.app"
#: Layer -> the layers it must never import.
FORBIDDEN = {
    "domain": FRONT,
    "store": FRONT,
    "engine": FRONT,
    "export": FRONT,
    "simulated": FRONT | {"engine", "store"},
}


def test_core_cli_and_daemon_do_not_import_textual() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_no_module_imports_itself_round_a_circle() -> None:
    assert _circles(_import_graph()) == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, imported in sorted(_import_graph().items()):
        layer = _layer(module)
        for target in sorted(imported):
            allowed = ALLOWED.get(layer)
            if (allowed is not None and _layer(target) not in allowed) or _layer(
                target
            ) in FORBIDDEN.get(layer, set()):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_app_and_the_cli_import_each_other_only_to_launch_the_app() -> None:
    graph = _import_graph()
    crossing = {("tui", "cli"), ("cli", "tui")}
    wrong = [
        f"{module} imports {target}"
        for module, imported in sorted(graph.items())
        for target in sorted(imported)
        if (_layer(module), _layer(target)) in crossing and module != APP_LAUNCHER
    ]
    assert wrong == []
    assert {target for target in graph[APP_LAUNCHER] if _layer(target) == "tui"}
    eager = _eager_imports(APP_LAUNCHER)
    assert {target for target in eager if _layer(target) == "tui"} == set()


def test_the_graph_sees_every_kind_of_import() -> None:
    """The checks above are only as good as the graph: relative, absolute, function-level and
    TYPE_CHECKING imports all make edges."""
    graph = _import_graph()
    assert f"{ROOT}.domain.records" in graph[f"{ROOT}.engine.ranking"]  # relative, top level
    assert f"{ROOT}.store.ranking" in graph[f"{ROOT}.engine.ranking"]  # `from ..store import x`
    assert f"{ROOT}.tui.host" in graph[f"{ROOT}.tui.commands"]
    tui_app = graph[f"{ROOT}.tui.app"]
    assert f"{ROOT}.tui.screens.help" in tui_app  # inside a method
    assert f"{ROOT}.workbench" in graph[f"{ROOT}.tui.host"]  # under TYPE_CHECKING
    # What importing a module runs leaves out TYPE_CHECKING blocks and function bodies.
    assert f"{ROOT}.workbench" not in _eager_imports(f"{ROOT}.tui.host")
    eager_app = _eager_imports(f"{ROOT}.tui.app")
    assert f"{ROOT}.tui.screens.help" not in eager_app
    assert f"{ROOT}.tui.commands" in eager_app


def test_circles_are_found_however_long() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a", "f"}, "f": {"e"}}
    assert _circles(graph) == [["a", "b", "c"], ["e", "f"]]


# -- the graph -------------------------------------------------------------------------------


def _import_graph() -> dict[str, set[str]]:
    """Each module of ours -> the modules of ours it imports, anywhere in its text."""
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def _eager_imports(name: str) -> set[str]:
    """The modules of ours that importing `name` loads itself (see `_run_on_import`)."""
    modules = _modules()
    return set(_imports(name, modules[name], modules, eagerly=True))


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(
    name: str, path: Path, modules: dict[str, Path], *, eagerly: bool = False
) -> Iterator[str]:
    """The modules of ours that `name` imports; with `eagerly`, only those that importing it
    loads (not inside a function, nor under TYPE_CHECKING)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in _run_on_import(tree) if eagerly else ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            # `from package import module` imports the module; only a name that is not a
            # module is read from the package itself.
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            targets = [module for module in submodules if module in modules]
            if len(targets) < len(submodules):
                targets.append(target)
        for target in targets:
            if target.split(".")[0] == ROOT and target != name:
                yield target


def _run_on_import(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under `node` that run when its module is imported: function bodies and
    `if TYPE_CHECKING:` blocks (but not their `else:`) left out."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.orelse:
                yield statement
                yield from _run_on_import(statement)
            continue
        yield child
        yield from _run_on_import(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules that import one another round a circle, one sorted list per circle (the
    strongly connected components of more than one module, by Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    #: The depth-first walk: each module being visited, with the imports it has left.
    work: list[tuple[str, Iterator[str]]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        work.append((module, iter(sorted(graph.get(module, ())))))

    for start in sorted(graph):
        if start in index:
            continue
        visit(start)
        while work:
            module, edges = work[-1]
            target = next(edges, None)
            if target is not None:
                if target not in index:
                    visit(target)
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles
