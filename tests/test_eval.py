"""fastrnn eval: B streams side by side agree closely with the exact one-stream evaluation."""

import numpy as np
import pytest

from fastrnn import cli, train
from fastrnn.sample import evaluate_file, load_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "home", "fast"]
    corpus = d / "corpus.txt"
    corpus.write_text(" ".join(rng.choice(words, 6000)) + "\n")
    held_out = d / "held_out.txt"
    held_out.write_text(" ".join(rng.choice(words, 5000)) + "\n")
    cfg = train.TrainConfig(corpus=str(corpus), cell="gru", hidden=24, layers=2, seq=16,
                            batch=8, steps=120, eval_every=1000, lr=1e-2, out=str(d / "run"))
    train.Trainer(cfg, progress=False, log=lambda *a: None).run()
    return d / "run", held_out


def test_streams_agree_with_the_exact_evaluation(trained):
    run, held_out = trained
    model, vocab, _ = load_model(run)
    n_text = len(held_out.read_text())
    exact, n = evaluate_file(model, vocab, held_out, streams=1, seq=100)
    assert n == n_text - 1
    for streams in (3, 8):                       # 3 does not divide the token count
        nats, m = evaluate_file(model, vocab, held_out, streams=streams, seq=100)
        assert m == n
        assert nats == pytest.approx(exact, rel=0.01), (streams, nats, exact)
        assert nats != exact                     # each stream starts cold: not the same
    one, _ = evaluate_file(model, vocab, held_out, streams=1, seq=37, chunk_tokens=1000)
    assert one == pytest.approx(exact, rel=1e-5)   # exact whatever the chunking


def test_every_token_is_predicted_once(trained, tmp_path):
    run, _ = trained
    model, vocab, _ = load_model(run)
    p = tmp_path / "short.txt"
    p.write_text("the cat sat")
    exact, n = evaluate_file(model, vocab, p, streams=1)
    for streams in (2, 5, 10, 100):              # up to one token per stream (clamped)
        nats, m = evaluate_file(model, vocab, p, streams=streams)
        assert m == n == 10
    x = vocab.encode("the cat sat")
    # 10 streams of one token each: every token predicted from the zero state alone
    cold = [model.loss(x[i:i + 1, None], x[i + 1:i + 2, None])[0] for i in range(10)]
    assert evaluate_file(model, vocab, p, streams=10)[0] == pytest.approx(np.mean(cold),
                                                                          rel=1e-5)
    with pytest.raises(ValueError, match="streams must be None or an int >= 1"):
        evaluate_file(model, vocab, p, streams=0)


def test_eval_cli(trained, capsys):
    run, held_out = trained
    assert cli.main(["eval", str(run), str(held_out), "--streams", "4"]) == 0
    assert "(4 streams)" in capsys.readouterr().out
    assert cli.main(["eval", str(run), str(held_out), "--exact"]) == 0
    assert "(one stream, exact)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["eval", str(run), str(held_out), "--exact", "--streams", "3"])
    assert "not allowed with" in capsys.readouterr().err
