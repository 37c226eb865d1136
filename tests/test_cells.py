"""The cell descriptions (fastrnn.cells) and the layering they allow: every backend module
lists the same functions, and the kernels import nothing from the reference."""

import ast
import pathlib

import pytest

import fastrnn
import fastrnn.kernels
import fastrnn.kernels.optim
import fastrnn.reference
import fastrnn.reference.optim
from fastrnn import cells

PACKAGE = pathlib.Path(fastrnn.__file__).parent


@pytest.mark.parametrize("cell", list(cells.CELLS.values()), ids=cells.NAMES)
def test_both_backends_list_the_cell_functions(cell):
    ref, ker = cell.functions("reference"), cell.functions("kernels")
    for field in cells.CellFunctions._fields:
        r, k = getattr(ref, field), getattr(ker, field)
        assert r.__name__ == k.__name__ == f"{cell.name}_{field}"
        assert r.__module__ == f"fastrnn.reference.{cell.module}"
        assert k.__module__ == f"fastrnn.kernels.{cell.module}"


def test_descriptions():
    assert [c.gates for c in cells.CELLS.values()] == [1, 4, 3]
    assert cells.LSTM.gate_names == ("i", "f", "g", "o")
    assert cells.GRU.gate_names == ("r", "z", "n")
    assert [label for label, _, _ in cells.variants()] == ["rnn_tanh", "rnn_relu", "lstm", "gru"]
    with pytest.raises(ValueError, match=r"one of \['rnn', 'lstm', 'gru'\], got 'lsmt'"):
        cells.get("lsmt")
    with pytest.raises(ValueError, match="backend must be 'kernels' or 'reference'"):
        cells.LSTM.functions("torch")


def test_kernels_have_the_reference_names():
    assert fastrnn.kernels.__all__ == fastrnn.reference.__all__
    assert fastrnn.kernels.optim.__all__ == fastrnn.reference.optim.__all__
    for name in fastrnn.kernels.__all__:
        assert callable(getattr(fastrnn.kernels, name))


def test_every_public_kernels_module_has_a_reference_twin():
    """What is not a twin (the surface for callers outside kernels/) lives in private modules
    and is exported by kernels/__init__.py."""
    public = [p.name for p in (PACKAGE / "kernels").glob("*.py") if not p.name.startswith("_")]
    assert len(public) >= 7
    assert [n for n in public if not (PACKAGE / "reference" / n).exists()] == []


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_kernels_import_nothing_from_the_reference():
    for path in sorted((PACKAGE / "kernels").glob("*.py")):
        bad = [m for m in _imports(path) if "reference" in m]
        assert not bad, f"{path.name} imports {bad}"


def _absolute(path, node):
    """The absolute module name of an ImportFrom in the file at ``path``."""
    if not node.level:
        return node.module or ""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    base = parts[:len(parts) - node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _private_kernels_uses(path, source=None):
    """Private names of fastrnn.kernels that the file at ``path`` (or ``source`` as if it
    were that file) imports or reaches into."""
    tree = ast.parse(path.read_text() if source is None else source)
    private, modules = [], set()          # modules: local names bound to kernels modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            for a in node.names:
                full = f"{module}.{a.name}"
                if full.startswith("fastrnn.kernels"):
                    if any(p.startswith("_") for p in full.split(".")[2:]):
                        private.append(full)
                    modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fastrnn.kernels"):
                    if any(p.startswith("_") for p in a.name.split(".")[2:]):
                        private.append(a.name)
                    modules.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            private.append(f"{node.value.id}.{node.attr}")
    return private


def test_nothing_outside_the_kernels_uses_a_private_kernels_name():
    root = PACKAGE.parent
    files = [p for p in PACKAGE.rglob("*.py") if "kernels" not in p.relative_to(PACKAGE).parts]
    files += [*(root / "asv_benchmarks").rglob("*.py"), *(root / "examples").rglob("*.py")]
    assert len(files) > 20
    bad = {str(p.relative_to(root)): uses for p in files if (uses := _private_kernels_uses(p))}
    assert not bad, f"private fastrnn.kernels names used outside kernels/: {bad}"


def test_the_private_kernels_check_sees_private_uses():
    where = PACKAGE / "compat" / "minchar.py"       # relative imports resolve from here
    for source in ("from ..kernels._blocks import scatter_add\n",
                   "from ..kernels.stack import _pick\n",
                   "from .. import kernels\nkernels._blocks\n",
                   "from ..kernels import stack\nstack._pick(1)\n",
                   "import fastrnn.kernels._math\n"):
        assert _private_kernels_uses(where, source), source
    assert not _private_kernels_uses(where, "from ..kernels.stack import step_packed\n"
                                            "from .. import _jit\n_jit._blas_state\n")
