"""The examples run and do what they claim."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def test_binary_addition_reaches_full_accuracy():
    sys.path.insert(0, EXAMPLES)
    try:
        import binary_addition
    finally:
        sys.path.remove(EXAMPLES)
    assert binary_addition.train(verbose=False) == 1.0


@pytest.mark.parametrize("script,args,expect", [
    ("binary_addition.py", [], "test accuracy: 100%"),
    ("char_lstm_reference.py", ["--iters", "30"], "iter     1  loss"),
])
def test_example_scripts_run(script, args, expect):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout
