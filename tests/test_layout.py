"""The package's layering: a module imports only from the groups before it in the data flow
(errors, files -> layers -> nets, data -> losses -> kit -> bench), and never from a script or a test."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minigan"
OUTSIDE = {"train_mnist", "train_dcgan", "train_pix2pix", "train_cyclegan", "tests", "script_checks", "conftest"}
# what each group may import from minigan besides itself ("" is the top-level `minigan` package)
ALLOWED = {
    "errors": set(),
    "files": set(),
    "layers": {"errors"},
    "nets": {"errors", "layers"},
    "data": {"errors", "files"},
    "losses": {"errors"},
    "kit": {"errors", "files", "layers", "nets", "data", "losses"},
    "bench": {"errors", "files", "layers", "nets", "data", "losses", "kit", ""},
}


def group(relpath):
    """'layers' for layers/..., 'losses' for losses.py, '' for the package's own __init__.py."""
    first = Path(relpath).parts[0]
    return "" if first == "__init__.py" else first.removesuffix(".py")


def imported_groups(source, relpath):
    """The groups of minigan (or the outside names) that `source`, the module at `relpath`, imports."""
    package = ["minigan", *Path(relpath).parts[:-1]]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            targets = [base + node.module.split(".")] if node.module else [base + [a.name] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in targets:
            if parts[0] == "minigan":
                yield group(parts[1] + ".py") if len(parts) > 1 else ""
            elif parts[0] in OUTSIDE:
                yield parts[0]


MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if group(p.relative_to(PACKAGE)))


@pytest.mark.parametrize("relpath", MODULES)
def test_imports_only_from_lower_groups(relpath):
    own = group(relpath)
    imports = set(imported_groups((PACKAGE / relpath).read_text(), relpath))
    assert not imports - {own} - ALLOWED[own], f"{relpath} ({own}) imports from {sorted(imports - {own} - ALLOWED[own])}"


def test_the_check_sees_what_a_module_imports():
    source = "from ..kit import run\nfrom . import kernels\nimport minigan.nets\nfrom minigan.data import x\nimport tests\n"
    assert set(imported_groups(source, "layers/conv_transpose.py")) == {"kit", "layers", "nets", "data", "tests"}
    assert set(imported_groups("from .errors import E\n", "losses.py")) == {"errors"}
