"""The code's shape: modules and their sizes, import cycles, abstract methods per role.

    python bench/structure.py [REPO]

Counts the first-party modules (rag, ingest, api, rag_cli, rag_eval) and their lines; the
groups of modules that import each other (strongly connected groups of grimp's import
graph: imports inside functions and for type checking included); the abstract methods of
each abstract base class; and the `# fmt: skip` markers left in the code, tests and benches.
"""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

import grimp

PACKAGES = ["rag", "ingest", "api", "rag_cli", "rag_eval"]


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of two or more modules that import each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def abstract_methods(path: Path) -> list[tuple[str, int]]:
    """(class, number of abstract methods) for each class of the file that has some."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            count = sum(
                any(
                    (isinstance(d, ast.Name) and d.id == "abstractmethod")
                    or (isinstance(d, ast.Attribute) and d.attr == "abstractmethod")
                    for d in f.decorator_list
                )
                for f in node.body
                if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            )
            if count:
                found.append((node.name, count))
    return found


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1]).resolve()
    sys.path[0] = str(root)  # not bench/, whose ingest.py would shadow ingest/
    files = [p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in files}
    counted = [n for name, n in sizes.items() if not name.endswith("__init__.py") or n > 5]
    largest = max(sizes.items(), key=lambda kv: kv[1])
    print(f"modules: {len(files)} ({len(list((root / 'rag').glob('*.py')))} files directly in rag/)")
    print(f"median lines: {statistics.median(counted)}  largest: {largest[0]} ({largest[1]})")
    print("over 400 lines:", sorted((n, s) for n, s in sizes.items() if s > 400) or "none")
    groups = cycles(grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None))
    print(f"import cycles (groups): {len(groups)}")
    for group in groups:
        print("  ", " <-> ".join(group))
    for path in files:
        for name, count in abstract_methods(path):
            print(f"abstract methods: {path.relative_to(root)}:{name} {count}")
    grep = subprocess.run(
        ["grep", "-rc", "--include=*.py", "--exclude=structure.py", "fmt: skip", *PACKAGES, "tests", "bench"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    skips = sum(int(line.rsplit(":", 1)[1]) for line in grep.stdout.splitlines())
    print(f"'# fmt: skip' markers: {skips}")


if __name__ == "__main__":
    main()
