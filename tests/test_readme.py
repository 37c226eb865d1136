"""Every code block of the README runs, in the README's order, in one scratch directory.

How the blocks are run (the only changes made to them):

- ``python`` blocks: executed as written, each in a fresh namespace, with the scratch directory
  as the working directory, after these substitutions that shrink the work (same code paths):
  ``range(100)`` -> ``range(3)`` (training steps of the Python API example). A block that
  imports torch is skipped when PyTorch is not installed.
- ``bash`` blocks: split into commands (shell comments dropped, ``&&`` chains split). Each
  ``fastrnn ...`` command runs in-process through ``fastrnn.cli.main`` (the function behind the
  ``fastrnn`` console script) and must exit with 0. ``pip install ...`` commands are dropped:
  the test runs inside the environment they build. Budgets and sizes are shrunk by
  ``BASH_SUBSTITUTIONS`` below.
- Skipped bash blocks, each for the reason in ``SKIP_BASH``: the test command itself (``pytest``,
  this suite), MPI and Slurm launches (``tests/dist`` runs ``mpiexec -n 2`` training), and asv
  (``tests/test_asv.py`` runs every benchmark; ``.ci/run`` runs asv itself).

The scratch directory holds ``corpus.txt`` and ``held_out.txt`` (fastrnn's own source files as
text) for the "your own corpus" commands; ``FASTRNN_CACHE`` points into it, so the default
corpus is built there and nothing is written to the home directory.
"""

import glob
import os
import re
import shlex

import pytest

from fastrnn import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

PYTHON_SUBSTITUTIONS = [("range(100)", "range(3)")]
BASH_SUBSTITUTIONS = [
    ("--time 60", "--time 1"),
    ("--time 3600", "--time 1"),
    ("--hidden 256 --layers 2", "--hidden 16 --layers 1"),
    ("-n 2000", "-n 100"),
]
SKIP_BASH = [
    (r"(^|\s)pytest(\s|$)", "the test command runs this very suite"),
    (r"mpiexec|srun|#SBATCH", "MPI and Slurm launches: tests/dist runs mpiexec -n 2 training"),
    (r"(^|\s)asv\s", "asv: tests/test_asv.py runs every benchmark, .ci/run runs asv itself"),
]


def readme_blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"^```(\w+)\n(.*?)^```", text, flags=re.S | re.M)
    return [(i, lang, code) for i, (lang, code) in enumerate(blocks)]


BLOCKS = readme_blocks()


def test_the_readme_has_runnable_blocks():
    langs = [lang for _, lang, _ in BLOCKS]
    assert langs.count("python") >= 4 and langs.count("bash") >= 4
    assert set(langs) <= {"python", "bash"}, "a block in a language this test cannot run"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    sources = sorted(glob.glob(os.path.join(ROOT, "fastrnn", "*.py")))
    text = ""
    for p in sources:
        with open(p, encoding="utf-8") as f:
            text += f.read()
    (d / "corpus.txt").write_text(text[: len(text) * 9 // 10], encoding="utf-8")
    (d / "held_out.txt").write_text(text[len(text) * 9 // 10:], encoding="utf-8")
    return d


@pytest.fixture
def in_scratch(scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    monkeypatch.setenv("FASTRNN_CACHE", str(scratch / "cache"))
    return scratch


def commands(code):
    """The commands of a bash block: comments dropped, && chains split, pip installs removed."""
    out = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        cmd = []
        for w in words + ["&&"]:
            if w == "&&":
                if cmd and cmd[:2] != ["pip", "install"]:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(w)
    return out


@pytest.mark.parametrize("index,lang,code", BLOCKS, ids=[f"{lang}-{i}" for i, lang, _ in BLOCKS])
def test_readme_block(index, lang, code, in_scratch, capsys):
    if lang == "python":
        for a, b in PYTHON_SUBSTITUTIONS:
            code = code.replace(a, b)
        if re.search(r"^\s*import torch", code, flags=re.M):
            pytest.importorskip("torch")
        exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
        return
    for pattern, reason in SKIP_BASH:
        if re.search(pattern, code, flags=re.M):
            pytest.skip(reason)
    for a, b in BASH_SUBSTITUTIONS:
        code = code.replace(a, b)
    cmds = commands(code)
    assert cmds, f"block {index} has no command to run"
    for cmd in cmds:
        assert cmd[0] == "fastrnn", f"block {index}: cannot run {shlex.join(cmd)}"
        code = cli.main(cmd[1:])
        err = capsys.readouterr().err
        assert code == 0, f"README block {index}: {shlex.join(cmd)} exited {code}: {err}"
