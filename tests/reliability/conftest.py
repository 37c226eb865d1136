"""Fixtures of the reliability suite (helpers are in ``reliability/helpers.py``)."""

import numpy as np
import pytest


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "home", "fast"]
    p = tmp_path / "corpus.txt"
    p.write_text(" ".join(rng.choice(words, 3000)) + "\n")
    return p
