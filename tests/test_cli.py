import subprocess
import sys

import fastrnn


def test_version():
    out = subprocess.run([sys.executable, "-m", "fastrnn.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fastrnn {fastrnn.__version__}"
