"""``fastrnn bench --quality``: time to quality. ``fastrnn train``'s defaults and the PyTorch
script of issue 15, each trained for the same wall time on the first 90% of a corpus, both
evaluated the same way on the last 10% (README, "Time to quality").
"""

import os
import time

import numba

from . import _jit

QUALITY_VAL_FRACTION = 0.1      # the embedded corpus: first 90% to train on, last 10% held out


def torch_baseline(train_ids, vocab_size, seconds, threads=None, seed=0, clock=time.perf_counter):
    """The PyTorch script of issue 15, trained for ``seconds`` of wall time: nn.Embedding(V, 128)
    -> 2-layer nn.LSTM(128) -> nn.Linear(128, V), Adam (lr 2e-3), gradient norm clipped at 5,
    B=50 streams read in windows of T=50 with the state carried (detached) between windows,
    constant learning rate, no evaluation during training. -> (model with ``loss(x, y,
    state)`` for ``fastrnn.validation.heldout_loss``, steps)."""
    import torch

    from . import data as data_mod
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    V, H, B, T = vocab_size, 128, 50, 50

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, H)
            self.rnn = torch.nn.LSTM(H, H, 2)
            self.out = torch.nn.Linear(H, V)

        def forward(self, x, state=None):
            h, state = self.rnn(self.emb(x), state)
            return self.out(h), state

        def loss(self, x, y, state=None):          # numpy (T, B) ids -> (float, state)
            with torch.no_grad():
                logits, state = self(torch.from_numpy(x), state)
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                         torch.from_numpy(y).reshape(-1))
            return float(loss), state

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    batches = data_mod.StreamBatcher(train_ids, B, T, "train", val_fraction=0.0)
    state, steps, t0 = None, 0, clock()
    while clock() - t0 < seconds:
        x, y = batches.next_batch()
        if batches.new_epoch:
            state = None
        logits, state = net(torch.from_numpy(x), state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                 torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        steps += 1
    return net, steps


def run_quality(seconds=60.0, use_torch=False, threads=None, corpus=None, progress=print):
    """``fastrnn bench --quality``: ``fastrnn train``'s defaults and (``use_torch``) the PyTorch
    script of issue 15, each trained for ``seconds`` of wall time on the first 90% of the
    corpus (default: the embedded one), both evaluated the same way on the last 10%
    (``fastrnn.validation.heldout_loss``: 50 streams, windows of 50, every held-out token).
    fastrnn's number is its best checkpoint's (what ``fastrnn sample`` uses); its budget
    includes compiling and its own evaluations, PyTorch's is its training loop alone."""
    import shutil
    import tempfile

    from . import data as data_mod
    from . import train
    from .sample import load_model
    from .validation import heldout_loss

    t_all = time.perf_counter()
    if threads:
        _jit.set_num_threads(threads)
    path = corpus or data_mod.default_corpus_path()
    ids = data_mod.load_corpus(path, progress=False).ids
    cut = len(ids) - int(round(len(ids) * QUALITY_VAL_FRACTION))
    val_ids = ids[cut:]
    res = {"corpus": path, "seconds": seconds, "train_tokens": int(cut),
           "heldout_tokens": int(len(ids) - cut)}
    out = tempfile.mkdtemp(prefix="fastrnn-quality-")
    try:
        cfg = train.TrainConfig(corpus=path, time=seconds, val_fraction=QUALITY_VAL_FRACTION,
                                out=os.path.join(out, "run"), auto_model=True)
        t = train.Trainer(cfg, progress=False, log=lambda *a, **k: None)
        if progress:
            progress(f"fastrnn train --time {seconds:g} (defaults: {t.describe()}) on "
                     f"{len(ids):,} characters, the last 10% held out ...")
        status = t.run()
        model = load_model(t.out, best=True)[0]
        res["fastrnn"] = {"status": status, "steps": t.step, "config": t.describe(),
                          "heldout": heldout_loss(model, val_ids)}
        if progress:
            progress(f"  fastrnn: {t.step:,} steps, held-out loss "
                     f"{res['fastrnn']['heldout']:.4f} nats/char")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if use_torch:
        if progress:
            progress(f"PyTorch script (2x128 LSTM, Adam 2e-3, constant LR) for {seconds:g} s ...")
        vocab_size = data_mod.load_corpus(path, progress=False).vocab.size
        net, steps = torch_baseline(ids[:cut], vocab_size, seconds,
                                    threads=threads or numba.config.NUMBA_NUM_THREADS)
        res["torch"] = {"steps": steps, "heldout": heldout_loss(net, val_ids)}
        res["fastrnn_minus_torch"] = res["fastrnn"]["heldout"] - res["torch"]["heldout"]
        if progress:
            progress(f"  torch:   {steps:,} steps, held-out loss {res['torch']['heldout']:.4f} "
                     f"nats/char")
            progress(f"fastrnn - torch: {res['fastrnn_minus_torch']:+.4f} nats/char "
                     "(negative: fastrnn is better)")
    res["wall_s"] = time.perf_counter() - t_all
    if progress:
        progress(f"bench --quality took {res['wall_s']:.0f} s")
    return res
