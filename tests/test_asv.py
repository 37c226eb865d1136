"""The asv suite (asv_benchmarks/) runs: every benchmark of every module, once, at its smallest
parameters and with shrunken sizes, so a broken benchmark fails pytest even without asv
installed. (asv itself runs them in ``.ci/run``: ``asv check`` and a quick subset.)"""

import importlib
import inspect
import json
import math
import os
import pkgutil
import sys

import pytest

ASV_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "asv_benchmarks")
PREFIXES = ("time_", "timeraw_", "track_", "peakmem_", "mem_")

# Parameters whose every value runs (the others: their first, smallest, value only).
EVERY_VALUE = {"cell", "backend", "truncate", "case"}

# Class attributes shrunk for the test: same code paths, a fraction of the work.
SMALL = {
    "TrainingStep": {"MIN_TIME": 0.0, "MIN_STEPS": 2},
    "PeakMemTrainingStep": {"HIDDEN": 32},
    "ValidationLoss": {"STEPS": 2, "CORPUS_CHARS": 60_000},
    "TimeToQuality": {"TIME": 0.5},
    "Sampling": {"N_CHARS": 20},
    "EncodeCorpus": {"N_BYTES": 2**20},
    # the subprocess machinery runs; the cold compile itself (minutes) is tests/kernels'
    "Compile": {"CALL": "None"},
}


def _modules():
    if ASV_DIR not in sys.path:
        sys.path.insert(0, ASV_DIR)
    pkg = importlib.import_module("benchmarks")
    return [importlib.import_module(f"benchmarks.{m.name}")
            for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("bench_")]


def _param_lists(cls):
    params = getattr(cls, "params", [])
    names = list(getattr(cls, "param_names", []))
    if not params:
        return [], []
    if len(names) == 1 or not isinstance(params[0], (list, tuple)):
        params = [params]
    assert len(names) == len(params), f"{cls.__name__}: param_names do not match params"
    return names, [list(p) for p in params]


def _combinations(cls):
    names, lists = _param_lists(cls)
    combos = [()]
    for name, values in zip(names, lists):
        chosen = values if name in EVERY_VALUE else values[:1]
        combos = [c + (v,) for c in combos for v in chosen]
    return combos


def _cases():
    cases = []
    for mod in _modules():
        for cname, cls in vars(mod).items():
            if not inspect.isclass(cls) or cls.__module__ != mod.__name__ \
                    or cname.startswith("_"):
                continue
            for attr in dir(cls):
                if attr.startswith(PREFIXES) and callable(getattr(cls, attr)):
                    for combo in _combinations(cls):
                        cases.append(pytest.param(cls, attr, combo,
                                                  id=f"{mod.__name__.split('.')[-1]}.{cname}."
                                                     f"{attr}{combo if combo else ''}"))
    return cases


CASES = _cases()
_SETUP_CACHE = {}


@pytest.fixture(autouse=True)
def one_kernel_thread():
    """One kernel thread: what is checked here is that each benchmark runs, and a parallel
    kernel whose threads meet at a barrier every time step crawls when other processes hold
    the cores (as during a parallel test run)."""
    import fastrnn

    n = fastrnn.get_num_threads()
    fastrnn.set_num_threads(1)
    yield
    fastrnn.set_num_threads(n)


def test_every_module_has_benchmarks():
    names = {c.id.split(".")[0] for c in CASES}
    assert {"bench_cells", "bench_compat", "bench_training", "bench_sampling", "bench_data",
            "bench_jit"} <= names, names
    # benchmarks are methods of classes (module-level ones would escape the test below)
    for mod in _modules():
        loose = [n for n, f in vars(mod).items() if n.startswith(PREFIXES) and callable(f)]
        assert not loose, f"{mod.__name__}: put {loose} in a class"


@pytest.mark.parametrize("cls, method, params", CASES)
def test_benchmark_runs_once(cls, method, params, tmp_path, monkeypatch):
    for attr, value in SMALL.get(cls.__name__, {}).items():
        assert hasattr(cls, attr), f"{cls.__name__} no longer has {attr}"
        monkeypatch.setattr(cls, attr, value)
    bench = cls()
    args = list(params)
    if hasattr(bench, "setup_cache"):       # once per class, as in asv
        if cls not in _SETUP_CACHE:
            # its files go to the cwd, as in asv (pytest keeps tmp_path for the session)
            monkeypatch.chdir(tmp_path)
            _SETUP_CACHE[cls] = bench.setup_cache()
        args = [_SETUP_CACHE[cls]] + args
    monkeypatch.chdir(tmp_path)
    if hasattr(bench, "setup"):
        bench.setup(*args)                  # must not raise NotImplementedError (skip) here
    try:
        result = getattr(bench, method)(*args)
    finally:
        if hasattr(bench, "teardown"):
            bench.teardown(*args)
    if method.startswith("track_"):
        assert isinstance(result, (int, float)) and math.isfinite(result) and result > 0, result


def test_reference_backend_is_skipped_at_large_sizes():
    from benchmarks import bench_cells

    with pytest.raises(NotImplementedError):
        bench_cells.Forward().setup("lstm", 512, 128, "float32", "reference")


def test_asv_conf_keeps_results_under_asv_benchmarks():
    with open(os.path.join(ASV_DIR, "asv.conf.json"), encoding="utf-8") as f:
        text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
    conf = json.loads(text)
    assert conf["repo"] == ".." and conf["benchmark_dir"] == "benchmarks"
    for key in ("env_dir", "results_dir", "html_dir"):
        assert conf[key].startswith(".asv/"), (key, conf[key])
    assert any("--no-deps" in c for c in conf["build_command"])
