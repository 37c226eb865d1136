"""fastrnn keeps glibc's malloc from handing back, and faulting in again, the tens of MB a
training step allocates and frees (fastrnn._jit: ``MALLOC_TUNED``)."""

import json
import os
import platform
import subprocess
import sys

import pytest

# A step's pattern: several arrays of a few MB (under numpy's 4 MB huge-page advice), written,
# then all freed; 20 rounds. Prints the page faults of the rounds after the first.
PROBE = """
import json, resource
import numpy as np
import fastrnn._jit as j

def rounds(n):
    for _ in range(n):
        arrays = [np.empty(m << 20, np.uint8) for m in (1, 3, 2, 3, 1, 2, 3)]
        for a in arrays:
            a.fill(1)
        del arrays

rounds(2)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(20)
print(json.dumps({"tuned": j.MALLOC_TUNED,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def probe(**env):
    e = {k: v for k, v in os.environ.items()
         if k not in ("FASTRNN_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.splitlines()[-1])


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_freed_step_arrays_are_reused_without_page_faults():
    tuned, system = probe(), probe(FASTRNN_MALLOC="system")
    assert tuned["tuned"] and not system["tuned"]
    # 20 rounds of 15 MB: 77,000 pages if every round got new ones
    assert tuned["faults"] < 1000, tuned
    assert system["faults"] > 10 * max(tuned["faults"], 100), (tuned, system)


def test_a_users_malloc_settings_are_left_alone():
    assert not probe(MALLOC_TRIM_THRESHOLD_="1000000")["tuned"]
