"""fastrnn.compat.speed (``fastrnn bench --compat``): every case runs, and each drop-in agrees
with its plain-NumPy original (fastrnn.compat._originals) on the case's inputs."""

import numpy as np

from fastrnn.compat import speed


def test_compat_speed_runs_and_agrees():
    lines = []
    rows = speed.run(min_time=0.0, rounds=1, settle=0.0, out=lines.append)
    assert len(rows) == len(speed.CASES) and len(lines) == len(rows) + 1
    assert all(r["max_rel_err"] < 1e-10 and np.isfinite(r["speedup"]) for r in rows)
