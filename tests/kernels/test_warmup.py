"""fastrnn.warmup() compiles every kernel once; a second process loads them from the cache."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json, numba
from numba.core.registry import CPUDispatcher
import fastrnn
n = fastrnn.warmup(dtypes=("float64",))
import fastrnn.kernels._blocks, fastrnn.kernels.lstm, fastrnn.kernels.gru, fastrnn.kernels.rnn
import fastrnn.kernels.loss
hits = misses = parallel = 0
for mod in (fastrnn.kernels._blocks, fastrnn.kernels.lstm, fastrnn.kernels.gru,
            fastrnn.kernels.rnn, fastrnn.kernels.loss):
    for value in vars(mod).values():
        # a loop or product compiled twice (parallel_or_serial) holds both dispatchers
        for obj in (value, getattr(value, "parallel", None), getattr(value, "serial", None)):
            if isinstance(obj, CPUDispatcher) and obj.signatures:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
                parallel += obj is getattr(value, "parallel", None)
print(json.dumps({"calls": n, "hits": hits, "misses": misses, "parallel": parallel}))
"""


def run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_every_kernel_from_the_cache(tmp_path):
    cold = run(tmp_path)
    assert cold["calls"] > 0 and cold["misses"] > 0
    assert cold["parallel"] >= 9          # the three time loops of each cell, parallel copies
    warm = run(tmp_path)
    # nothing compiled again; (callees inlined into a cached kernel are not loaded at all,
    # so the second process has fewer hits than the first had misses)
    assert warm["misses"] == 0, warm
    assert warm["hits"] > 0
