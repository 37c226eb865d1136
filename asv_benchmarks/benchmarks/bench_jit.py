"""Compilation, measured apart from every other benchmark: the time of ``fastrnn.warmup()``
(every kernel signature, float32 and float64) in a fresh process with an empty numba cache
(cold compile), then in a second fresh process loading from that cache, plus the import
time of ``fastrnn`` in that second process."""

import json
import shutil
import subprocess
import sys
import tempfile

from .common import env_without_numba_cache

SCRIPT = """
import json, time
t0 = time.perf_counter()
import fastrnn
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "warmup": t2 - t1}}))
"""


def warmup_in_subprocess(cache_dir, call="fastrnn.warmup()", timeout=1200):
    """Run ``call`` after ``import fastrnn`` in a fresh interpreter whose numba cache is
    ``cache_dir``. -> {"import": s, "warmup": s}"""
    env = env_without_numba_cache(NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(call=call)], env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"warmup subprocess failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Compile:
    CALL = "fastrnn.warmup()"
    timeout = 1200

    def setup_cache(self):
        cache_dir = tempfile.mkdtemp(prefix="fastrnn-asv-numba-")
        try:
            cold = warmup_in_subprocess(cache_dir, self.CALL)
            cached = warmup_in_subprocess(cache_dir, self.CALL)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
        return {"cold": cold["warmup"], "cached": cached["warmup"], "import": cached["import"]}

    setup_cache.timeout = 1200

    def track_warmup_cold_compile(self, r):
        return r["cold"]

    def track_warmup_cached_load(self, r):
        return r["cached"]

    def track_import_fastrnn(self, r):
        return r["import"]

    track_warmup_cold_compile.unit = "s"
    track_warmup_cached_load.unit = "s"
    track_import_fastrnn.unit = "s"
