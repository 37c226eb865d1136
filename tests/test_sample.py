"""fastrnn sample: beam search (greedy at K=1, exhaustive at K >= V**(n-1)), endless streaming."""

import itertools
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from fastrnn import cli, data, nn, train
from fastrnn.sample import beam_search, generate, load_model, stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_model(symbols, cell="lstm", seed=0):
    vocab = data.Vocab(sorted(symbols))
    model = nn.CharRNN(vocab.size, 8, 2, cell, seed=seed, dtype=np.float64)
    for p in model.parameters():                       # peaked distributions, not uniform
        p.data *= 4
    return model, vocab


def log_prob(model, vocab, prime, text):
    ids = vocab.encode(prime + text)
    logits, _, _ = model.forward(ids[:-1, None])
    z = logits[:, 0, :].astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return sum(logp[t, ids[t + 1]] for t in range(len(prime) - 1, len(ids) - 1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_beam_one_is_greedy_and_a_full_beam_is_exhaustive(cell):
    model, vocab = random_model("abc", cell)
    greedy = generate(model, vocab, 12, prime="ab", argmax=True)
    assert beam_search(model, vocab, 12, beam=1, prime="ab")[0] == greedy
    n = 4
    best = max(("".join(t) for t in itertools.product("abc", repeat=n)),
               key=lambda t: log_prob(model, vocab, "ab", t))
    text, score = beam_search(model, vocab, n, beam=3 ** (n - 1), prime="ab")
    assert text == best
    assert score == pytest.approx(log_prob(model, vocab, "ab", best), abs=1e-9)
    wide, score = beam_search(model, vocab, 30, beam=4, prime="ab")
    assert len(wide) == 30 and score == pytest.approx(log_prob(model, vocab, "ab", wide),
                                                      abs=1e-9)


def test_stream_continues_like_generate():
    model, vocab = random_model("ab\nc d")
    pieces = stream(model, vocab, temperature=0.9, seed=4, chunk=50)
    first = "".join(next(pieces) for _ in range(3))
    assert first == generate(model, vocab, 150, temperature=0.9, seed=4)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    corpus = d / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nand the dog ran home fast\n" * 40)
    cfg = train.TrainConfig(corpus=str(corpus), hidden=16, layers=1, seq=8, batch=2, steps=30,
                            eval_every=1000, eval_batches=1, lr=1e-2, out=str(d / "run"))
    train.Trainer(cfg, progress=False, log=lambda *a: None).run()
    return d / "run"


def test_sample_beam_cli(run_dir, capsys):
    assert cli.main(["sample", str(run_dir), "--beam", "5", "-n", "40", "--prime", "the "]) == 0
    out = capsys.readouterr().out
    model, vocab, _ = load_model(run_dir)
    text, _ = beam_search(model, vocab, 40, 5, "the ")
    assert out == "the " + text + "\n"
    for extra in (["--temperature", "0.5"], ["--argmax"], ["-n", "0"], ["--top-k", "3"]):
        assert cli.main(["sample", str(run_dir), "--beam", "5", *extra]) == 2
        assert "--beam finds the likeliest continuation" in capsys.readouterr().err


def test_sample_n0_streams_line_by_line_until_interrupted(run_dir):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "fastrnn", "sample", str(run_dir), "-n", "0",
                          "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        lines = [p.stdout.readline() for _ in range(50)]   # flushed per line, not at the end
        assert all(line.endswith("\n") for line in lines)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130 and "Traceback" not in err, err


@pytest.mark.parametrize("call, message", [
    (lambda m, v: generate(m, v, 10, temperature=0), "temperature must be > 0, got 0"),
    (lambda m, v: generate(m, v, 10, top_k=0), "top_k must be >= 1, got 0"),
    (lambda m, v: generate(m, v, -1), "length must be >= 0, got -1"),
    (lambda m, v: next(stream(m, v, temperature=-1.0)), "temperature must be > 0, got -1.0"),
    (lambda m, v: next(stream(m, v, top_k=0)), "top_k must be >= 1, got 0"),
    (lambda m, v: beam_search(m, v, 0), "length must be an int >= 1, got 0"),
    (lambda m, v: beam_search(m, v, 5, beam=True), "beam must be an int >= 1, got True"),
])
def test_bad_arguments_are_refused_by_name(call, message):
    model, vocab = random_model("ab")
    with pytest.raises(ValueError, match=message):
        call(model, vocab)
