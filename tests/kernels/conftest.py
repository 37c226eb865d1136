import pytest

from fastrnn.kernels import _blocks


@pytest.fixture(autouse=True)
def split_small_steps(monkeypatch):
    """Kernels give small steps (the test shapes) to one thread; split them anyway here, so
    the multi-thread code paths are what these tests compare against the reference."""
    monkeypatch.setattr(_blocks, "MIN_MACS_PER_THREAD", 1)
