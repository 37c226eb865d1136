"""The soak run (scripts/soak.py) behind the ``soak`` marker, deselected by default:
``pytest -m soak tests/reliability/test_soak.py`` (FASTRNN_SOAK_SIZE / _MINUTES to scale it,
default 1G and 20 minutes)."""

import os
import subprocess
import sys

import pytest

from reliability.helpers import ROOT, cli_env


@pytest.mark.soak
def test_soak(tmp_path):
    size = os.environ.get("FASTRNN_SOAK_SIZE", "1G")
    minutes = os.environ.get("FASTRNN_SOAK_MINUTES", "20")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "soak.py"), "--size", size,
                        "--minutes", minutes, "--workdir", str(tmp_path)],
                       capture_output=True, text=True, env=cli_env())
    print(r.stdout[-3000:], r.stderr[-3000:])
    assert r.returncode == 0 and "soak: PASS" in r.stdout
