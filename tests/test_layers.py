"""The import layers of consult (docs/architecture.md, "Layers"), checked on the source.

Lowest first: ``config.py`` < core (with ``consult/extensions.py``) < audit < the domains <
process < interface < ``wsgi.py``. A module may import modules of its own layer and of the
layers below it, never of one above:

- every import counts, wherever it is: at the top, inside a function (a deferred import hides
  a dependency, it does not remove it) and under ``if TYPE_CHECKING:`` (a type names the layer
  it comes from just the same);
- the domains may import each other (a ballot belongs to a consultation of a compound's
  household), but no cycle may run between packages: an import of a module that imports
  nothing of the project (a pure module such as ``ballots/tally.py``) cannot close one, and
  imports for types only are never run;
- ``config.py`` imports nothing of consult, so any layer may read the configuration;
  ``wsgi.py`` builds the app, and nothing imports it.

Interface modules are found by name wherever they are (``views``, ``forms``, ``*_views``,
command modules, ``demo*``), so a domain's views sit in the domain's folder and still count as
interface. Imports made by name at run time (``importlib``) are not seen.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS = ("configuration", "core", "audit", "domain", "process", "interface", "entry")
RANK = {name: rank for rank, name in enumerate(LAYERS)}
# The layer of each top-level package or module of consult/ (interface modules aside).
PACKAGE_LAYERS = {
    "core": "core", "extensions": "core",
    "audit": "audit",
    **{domain: "domain" for domain in (
        "registry", "accounts", "uploads", "consultations", "ballots", "notices",
        "implementation", "operations", "feedback", "notifications")},
    "process": "process",
    "scoring": "process",  # rounds across compounds: drives registry and notices
    "main": "interface",  # the home page, health check and language switch: views only
    "api": "interface",  # the JSON API: views over the same services as the pages
}
_INTERFACE = re.compile(r"(views|forms|cli|commands|demo)(_\w+)?|\w+_(views|forms|commands)")

def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (``consult.ballots.service``); None if it has none."""
    if module == "config":
        return "configuration"
    if module == "wsgi":
        return "entry"
    names = module.split(".")
    if names[0] != "consult":
        return None
    if len(names) == 1:
        return "interface"  # consult/__init__.py: create_app
    if any(_INTERFACE.fullmatch(name) for name in names[1:]):
        return "interface"
    return PACKAGE_LAYERS.get(names[1])


@dataclass(frozen=True)
class Source:
    module: str  # dotted name
    path: str    # for messages, relative to the project
    text: str

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")


@dataclass(frozen=True)
class Import:
    source: Source
    target: str      # the module imported (a module of the project)
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return (f"{self.source.path}:{self.line}: {self.source.module} "
                f"({layer_of(self.source.module)}) imports {self.target} "
                f"({layer_of(self.target)}){' for types only' if self.type_only else ''}")


def project_sources(root: Path = ROOT) -> list[Source]:
    """Every module of consult/ under ``root``, and config.py and wsgi.py if there."""
    paths = sorted((root / "consult").rglob("*.py"))
    paths += [path for path in (root / "config.py", root / "wsgi.py") if path.exists()]
    sources = []
    for path in paths:
        names = list(path.relative_to(root).with_suffix("").parts)
        if names[-1] == "__init__":
            names.pop()
        sources.append(Source(".".join(names), str(path.relative_to(root)),
                              path.read_text(encoding="utf-8")))
    return sources


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, wherever it is, and whether it is under TYPE_CHECKING."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, type_only = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_only
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack += [(child, True) for child in node.body]
            stack += [(child, type_only) for child in node.orelse]
            continue
        stack += [(child, type_only) for child in ast.iter_child_nodes(node)]


def imports_of(source: Source, known: Set[str]) -> list[Import]:
    """The imports of the project's modules (``known`` names them) that ``source`` makes."""
    found = []
    for node, type_only in _import_nodes(ast.parse(source.text, source.path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                package = source.module.split(".")
                if not source.is_package:
                    package.pop()
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            # ``from package import module`` imports the module, else a name of the package.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` of a name in a.b
                target = target.rpartition(".")[0]
            if target:
                found.append(Import(source, target, node.lineno, type_only))
    return sorted(found, key=lambda one: one.line)


def all_imports(sources: Iterable[Source]) -> list[Import]:
    sources = list(sources)
    known = {source.module for source in sources}
    return [found for source in sources for found in imports_of(source, known)]


def unassigned(sources: Iterable[Source]) -> list[str]:
    """The modules that belong to no layer."""
    return [source.path for source in sources if layer_of(source.module) is None]


def violations(imports: Iterable[Import]) -> list[str]:
    """Every import of a module of a higher layer, as ``path:line: what``."""
    found = []
    for one in imports:
        source, target = layer_of(one.source.module), layer_of(one.target)
        if source is not None and target is not None and RANK[target] > RANK[source]:
            found.append(str(one))
    return found


def package_of(module: str) -> str:
    """The node of the package graph: a top-level package or module of consult, with its
    interface modules apart (a domain's views import the process layer, which imports the
    domain: no cycle between the packages)."""
    names = module.split(".")
    node = ".".join(names[:2])
    if layer_of(module) == "interface" and layer_of(node) != "interface":
        return f"{node} (interface)"
    return node


def package_graph(imports: Iterable[Import]) -> dict[str, dict[str, list[Import]]]:
    """Package → imported package → the imports that make the edge. Imports for types only are
    left out (they are never run), and so are imports of a module that imports nothing of the
    project itself: no cycle can pass through it (``ballots/tally.py``, pure, is read by
    ``consultations/service.py`` to check a rule without ``consultations`` depending on the rest
    of ``ballots``)."""
    imports = [found for found in imports if not found.type_only]
    importing = {found.source.module for found in imports}
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for found in imports:
        source, target = package_of(found.source.module), package_of(found.target)
        if source != target and found.target in importing:
            graph[source][target].append(found)
    return graph


def cycles(graph: Mapping[str, Mapping[str, object]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _explain(component: frozenset[str], graph: Mapping[str, Mapping[str, list[Import]]]
             ) -> str:
    return "\n".join(f"  {found}" for source in sorted(component)
                     for target in sorted(component)
                     for found in graph.get(source, {}).get(target, [])[:3])


# --- the project ------------------------------------------------------------------------------


SOURCES = project_sources()
IMPORTS = all_imports(SOURCES)


def test_every_module_has_a_layer():
    assert len(SOURCES) > 50
    assert unassigned(SOURCES) == []


def test_no_module_imports_a_higher_layer():
    assert len(IMPORTS) > 500
    assert violations(IMPORTS) == []


def test_the_audit_trail_imports_only_the_core():
    """What ``flask audit verify`` checks beyond the chain comes from the domains."""
    imported = {found.target for found in IMPORTS
                if layer_of(found.source.module) == "audit"}
    assert imported and {layer_of(target) for target in imported} <= {"core", "audit"}


def test_no_cycle_between_packages():
    graph = package_graph(IMPORTS)
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        f"{sorted(component)}:\n{_explain(component, graph)}" for component in found)


# --- the checker itself -----------------------------------------------------------------------


def _sources(modules: Mapping[str, str]) -> list[Source]:
    return [Source(module, module.replace(".", "/") + ".py", text)
            for module, text in modules.items()]


BASE = {"consult": "", "consult.core": "", "consult.core.text": "", "consult.ballots": "",
        "consult.ballots.service": "", "consult.ballots.views": "", "consult.process": "",
        "consult.process.workflow": "", "consult.audit": "", "consult.audit.service": ""}


def test_the_checker_catches_an_import_from_above_wherever_it_is():
    sources = _sources({**BASE, "consult.core.sneaky": (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from consult.core import text\n"
        "if TYPE_CHECKING:\n"
        "    from consult.audit.service import EventFields\n"
        "def later():\n"
        "    import consult.process.workflow\n"
        "    from ..ballots import service\n"
        "    from consult import create_app\n")})
    assert violations(all_imports(sources)) == [
        "consult/core/sneaky.py:5: consult.core.sneaky (core) imports consult.audit.service "
        "(audit) for types only",
        "consult/core/sneaky.py:7: consult.core.sneaky (core) imports consult.process.workflow "
        "(process)",
        "consult/core/sneaky.py:8: consult.core.sneaky (core) imports consult.ballots.service "
        "(domain)",
        "consult/core/sneaky.py:9: consult.core.sneaky (core) imports consult (interface)",
    ]


def test_the_checker_lets_a_layer_import_its_own_and_lower_ones():
    sources = _sources({**BASE,
                        "consult.ballots.views": "from consult.process import workflow\n",
                        "consult.process.workflow": "from consult.ballots import service\n",
                        "consult.ballots.service": "from consult.audit import service\n"})
    assert violations(all_imports(sources)) == []


def test_the_checker_finds_a_cycle_and_leaves_out_types_only():
    sources = _sources({**BASE,
                        "consult.ballots.service": "from consult.core import text\n",
                        "consult.core.text": "def f():\n    from consult.ballots import service\n",
                        "consult.audit.service": ("if TYPE_CHECKING:\n"
                                                  "    from consult.ballots import service\n"),
                        "consult.process.workflow": "from consult.audit import service\n"})
    graph = package_graph(all_imports(sources))
    assert cycles(graph) == [frozenset({"consult.core", "consult.ballots"})]
    assert "consult.ballots" not in graph["consult.audit"]
    # A domain's views apart from the domain: views → process → domain is no cycle.
    views = _sources({**BASE, "consult.ballots.views": "from consult.process import workflow\n",
                      "consult.process.workflow": "from consult.ballots import service\n"})
    assert cycles(package_graph(all_imports(views))) == []


def test_an_import_of_a_module_that_imports_nothing_closes_no_cycle():
    pure = {**BASE, "consult.ballots.tally": "import fractions\n",
            "consult.consultations": "",
            "consult.consultations.models": "from consult.core import text\n",
            "consult.consultations.service": "from consult.ballots import tally\n",
            "consult.ballots.service": "from consult.consultations import models\n"}
    assert cycles(package_graph(all_imports(_sources(pure)))) == []
    # The same through a module of ballots that does import something: a cycle.
    impure = {**pure, "consult.consultations.service": "from consult.ballots import service\n"}
    assert cycles(package_graph(all_imports(_sources(impure)))) == [
        frozenset({"consult.ballots", "consult.consultations"})]


def test_a_new_package_without_a_layer_is_named(tmp_path):
    for path in ("consult/__init__.py", "consult/core/__init__.py",
                 "consult/ballots/views.py", "consult/newthing/__init__.py",
                 "consult/newthing/service.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    assert unassigned(project_sources(tmp_path)) == [
        "consult/newthing/__init__.py", "consult/newthing/service.py"]


def test_layers_of_names():
    expected = {
        "consult.extensions": "core", "consult.core.forms": "interface",
        "consult.consultations.views.pages": "interface",
        "consult.ballots.proof_views": "interface", "consult.registry.commands": "interface",
        "consult.demo_consultations": "interface", "consult.operations.backup": "domain",
        "consult.process.audit_export": "process", "config": "configuration", "wsgi": "entry",
        "consult.newthing": None}
    assert {name: layer_of(name) for name in expected} == expected
