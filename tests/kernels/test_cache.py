"""numba's on-disk cache of a kernel follows every source compiled code can reach, not only the
file that defines the kernel (fastrnn._jit: ``sources_stamp``, ``_StampedCache``)."""

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys

import fastrnn
from fastrnn._jit import COMPILED_SOURCES

PACKAGE = pathlib.Path(fastrnn.__file__).parent

CALLER = """
from .._jit import njit
from ._probe_callee import step


@njit
def run(x):
    return step(x)
"""

CALLEE = """
from .._jit import njit

OFFSET = {offset}


@njit
def step(x):
    return x + OFFSET
"""

SCRIPT = """
import json
from fastrnn.kernels._probe_caller import run
value = run(1.0)
print(json.dumps({"value": value, "hits": sum(run.stats.cache_hits.values()),
                  "misses": sum(run.stats.cache_misses.values())}))
"""


def _call(root):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}  # in-tree __pycache__
    env.update(PYTHONPATH=str(root), NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300, cwd=root, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_kernel_compiles_again_when_a_module_it_calls_changed(tmp_path):
    """The situation of an editable install after an edit or a `git pull`: a cached kernel
    whose own file is unchanged calls a function (and reads a constant) of a changed module.
    numba alone would load the old code from the cache and return 2.0 after the edit."""
    package = tmp_path / "fastrnn"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (package / "kernels" / "_probe_caller.py").write_text(CALLER)
    callee = package / "kernels" / "_probe_callee.py"
    callee.write_text(CALLEE.format(offset=1.0))

    assert _call(tmp_path) == {"value": 2.0, "hits": 0, "misses": 1}     # compiled, saved
    assert _call(tmp_path) == {"value": 2.0, "hits": 1, "misses": 0}     # loaded
    callee.write_text(CALLEE.format(offset=2.0))                         # caller unchanged
    assert _call(tmp_path) == {"value": 3.0, "hits": 0, "misses": 1}     # compiled again
    assert _call(tmp_path) == {"value": 3.0, "hits": 1, "misses": 0}
    # a module that compiled code cannot reach keeps the cache
    with open(package / "train.py", "a") as f:
        f.write("\n# edited\n")
    assert _call(tmp_path) == {"value": 3.0, "hits": 1, "misses": 0}


# names whose import (or use as numba.<name>) means a module defines compiled code
COMPILING = {"njit", "jit", "parallel_or_serial", "prange", "intrinsic", "overload",
             "overload_method", "register_jitable", "generated_jit", "vectorize", "guvectorize",
             "cfunc", "stencil", "jitclass"}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, modules):
    """fastrnn modules ``path`` imports (anywhere in it), and whether it compiles code."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found, compiles = set(), False
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            found |= {m for m in [base] + [f"{base}.{a.name}" for a in node.names]
                      if m in modules}
            compiles |= any(a.name in COMPILING for a in node.names)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.Attribute) and node.attr in COMPILING:
            compiles |= isinstance(node.value, ast.Name) and node.value.id == "numba"
    return found, compiles


def test_the_stamp_covers_every_module_compiled_code_can_reach():
    """COMPILED_SOURCES holds the modules that define compiled code and every fastrnn module
    they import (transitively): a kernel can only read globals its module imported."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    compiling = {name for name, (_, compiles) in graph.items() if compiles}
    assert {"fastrnn.kernels.lstm", "fastrnn.kernels._math", "fastrnn.kernels._bptt",
            "fastrnn.compat._cs231n_kernels"} <= compiling
    reached, todo = set(), sorted(compiling)
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += graph[name][0]
    covered = {_module_name(p) for p in PACKAGE.rglob("*.py")
               if any(str(p.relative_to(PACKAGE)) == s if not s.endswith("/") else
                      p.parent == PACKAGE / s.rstrip("/") for s in COMPILED_SOURCES)}
    assert reached - covered == set(), "add these to fastrnn._jit.COMPILED_SOURCES"
    assert "fastrnn.train" not in covered and "fastrnn.cli" not in covered
