"""The package's layers point one way (BUILD.md, "Architecture"): a module imports only from its
own package or from packages in lower layers, never from a sibling of its own layer."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "sslzoo"

# Lowest first. A package may import from any earlier layer.
LAYERS = [
    ("errors",),
    ("utils",),
    ("losses",),
    ("quality",),
    ("backbones",),
    ("data",),
    ("crr",),
    ("optim",),
    ("probes",),
    ("methods",),
    ("umm",),
    ("zoo",),
    ("train",),
    ("eval", "finetune"),
    ("export", "bench"),
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _package(path):
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(tree):
    """(target package, line, is function-local) of every sslzoo import in a module."""
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "sslzoo":
                targets = [a.name for a in node.names]
            elif node.module.startswith("sslzoo."):
                targets = [node.module.split(".")[1]]
            else:
                continue
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1] for a in node.names
                       if a.name.startswith("sslzoo.")]
        else:
            continue
        for t in targets:
            yield t, node.lineno, id(node) in local


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if p != ROOT / "__init__.py")


def test_every_package_has_a_layer():
    assert {_package(p) for p in _modules()} <= set(RANK), \
        "add the new package to LAYERS here and to BUILD.md's Architecture section"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    own = _package(path)
    lines = path.read_text().splitlines()
    bad = []
    for target, line, local in _imports(ast.parse(path.read_text())):
        if target == own:
            continue
        if target not in RANK:
            bad.append(f"line {line}: sslzoo.{target} has no layer")
        elif RANK[target] >= RANK[own]:
            bad.append(f"line {line}: {own} (layer {RANK[own]}) imports {target} "
                       f"(layer {RANK[target]})")
        if local and "# lazy:" not in lines[line - 1]:
            bad.append(f"line {line}: a function-local import of sslzoo.{target} without a "
                       "'# lazy: <heavy import it avoids>' comment")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_and_an_unmarked_local_import():
    tree = ast.parse("from sslzoo.train import pretrain\n"
                     "def f():\n    from sslzoo import zoo\n")
    assert list(_imports(tree)) == [("train", 1, False), ("zoo", 3, True)]
