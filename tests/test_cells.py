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
