"""The parts of fastrnn.dist that need no MPI: stream shares, launcher detection, the
single-process World, and the two slices a rank takes (batch windows, dropout masks)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastrnn import data, dist, nn


def world(rank, size):
    w = dist.World()
    w.rank, w.size = rank, size
    return w


@pytest.mark.parametrize("n,size", [(6, 2), (7, 3), (50, 4), (5, 5), (1, 1), (101, 8)])
def test_shares_are_contiguous_disjoint_and_cover_the_batch(n, size):
    shares = [world(r, size).shard(n) for r in range(size)]
    assert shares[0][0] == 0 and shares[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
    sizes = [hi - lo for lo, hi in shares]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_fewer_streams_than_ranks_is_refused():
    with pytest.raises(dist.RanksDisagree, match="batch=3 streams cannot be shared by 4 ranks"):
        world(0, 4).shard(3)


@pytest.mark.parametrize("env,size", [
    ({}, 1), ({"PMI_SIZE": "4"}, 4), ({"OMPI_COMM_WORLD_SIZE": "2"}, 2), ({"PMI_SIZE": "1"}, 1),
    ({"PMIX_RANK": "0"}, None), ({"FASTRNN_MPI": "1"}, None),
    ({"FASTRNN_MPI": "0", "PMI_SIZE": "4"}, 1)])
def test_launcher_detection(monkeypatch, env, size):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK",
                "FASTRNN_MPI"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert dist.launched_size() == size


def test_a_single_process_world_is_the_identity():
    w = dist.World()
    assert (w.rank, w.size, w.distributed, w.is_root) == (0, 1, False, True)
    a = np.arange(6.0).reshape(1, 3, 2)
    assert w.allgather_streams(a) is a and w.sum(2.5) == 2.5 and w.bcast("x") == "x"
    assert w.any([]) is False and w.any(["SIGINT"]) is True
    w.check_same("config", {"a": 1})
    with w.root_first():
        pass
    with pytest.raises(ZeroDivisionError), w.abort_on_error("t"):
        1 / 0


def test_a_share_of_the_streams_reads_the_columns_of_the_whole_batch():
    ids = np.random.default_rng(0).integers(0, 9, 2000).astype(np.uint8)
    whole = data.StreamBatcher(ids, 7, 10, "train")
    part = data.StreamBatcher(ids, 7, 10, "train", streams=(3, 5))
    for _ in range(whole.batches_per_epoch + 2):
        (xa, ya), (xb, yb) = whole.next_batch(), part.next_batch()
        np.testing.assert_array_equal(xa[:, 3:5], xb)
        np.testing.assert_array_equal(ya[:, 3:5], yb)
        assert xb.flags.c_contiguous and part.new_epoch == whole.new_epoch
    assert part.state_dict() == whole.state_dict()
    with pytest.raises(ValueError, match="streams must be"):
        data.StreamBatcher(ids, 7, 10, "train", streams=(5, 8))


@pytest.mark.parametrize("shares", [[(0, 3), (3, 5), (5, 7)], [(0, 7)]])
def test_dropout_masks_of_a_share_are_slices_of_the_whole_batch_masks(shares):
    kw = dict(num_layers=3, dropout=0.4, dtype=np.float64, seed=3)
    x = np.random.default_rng(1).normal(size=(5, 7, 4))
    whole = nn.Recurrent("lstm", 4, 6, **kw)
    _, _, (caches, _) = whole.forward(x)
    _, _, (caches2, _) = whole.forward(x)            # a second step: the generators advance
    for lo, hi in shares:
        part = nn.Recurrent("lstm", 4, 6, **kw)
        part.dropout_streams = (7, lo)
        for c_whole in (caches, caches2):
            _, _, (c_part, _) = part.forward(x[:, lo:hi])
            for layer in range(2):
                np.testing.assert_array_equal(c_part[layer].mask,
                                              c_whole[layer].mask[:, lo:hi])
        assert part.rng.bit_generator.state == whole.rng.bit_generator.state


def test_without_a_launcher_mpi_is_never_imported():
    code = ("import sys; from fastrnn import dist, train; w = dist.world(); "
            "assert not w.distributed and 'mpi4py' not in sys.modules, sys.modules.keys(); "
            "print('ok')")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK",
                        "FASTRNN_MPI")}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
