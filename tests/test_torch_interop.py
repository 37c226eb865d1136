"""CharRNN <-> PyTorch: weights exact both ways, logits equal; export formats round-trip."""

import json

import numpy as np
import pytest

from fastrnn import nn, torch_interop

torch = pytest.importorskip("torch")


def ids(V, T=7, B=3, seed=0):
    return np.random.default_rng(seed).integers(0, V, (T, B))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_char_rnn_to_torch_and_back(cell, dtype, tol):
    V = 11
    model = nn.CharRNN(V, hidden_size=6, num_layers=2, cell=cell, dtype=dtype, seed=3)
    for p in model.parameters():            # trained-looking weights, not just the init
        p.data += np.random.default_rng(1).normal(0, 0.1, p.data.shape).astype(dtype)
    t = torch_interop.to_torch(model)
    assert isinstance(t, torch_interop.TorchCharRNN)
    assert list(t.state_dict()) == list(model.state_dict())           # the same keys
    for k, v in model.state_dict().items():
        assert t.state_dict()[k].numpy().dtype == dtype
        np.testing.assert_array_equal(t.state_dict()[k].numpy(), v, err_msg=k)
    x = ids(V)
    logits, state, _ = model.forward(x)
    with torch.no_grad():
        tl, tstate = t(torch.from_numpy(x))
    np.testing.assert_allclose(tl.numpy(), logits, rtol=tol, atol=tol)
    for a, b in zip(state if cell == "lstm" else (state,),
                    tstate if cell == "lstm" else (tstate,)):
        np.testing.assert_allclose(b.numpy(), a, rtol=tol, atol=tol)
    back = torch_interop.from_torch(t)
    assert isinstance(back, nn.CharRNN) and back.dtype == dtype
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)   # exact


def test_nn_to_torch_delegates_and_accepts_the_token_input_layer():
    model = nn.CharRNN(9, hidden_size=5, num_layers=1, seed=0)
    assert isinstance(nn.to_torch(model), torch_interop.TorchCharRNN)
    lstm = nn.to_torch(model.rnn)                 # the layer that reads one-hot vectors
    assert isinstance(lstm, torch.nn.LSTM) and lstm.input_size == 9
    x = ids(9)
    hs, _, _ = model.rnn.forward(x)
    with torch.no_grad():
        out, _ = lstm(torch.nn.functional.one_hot(torch.from_numpy(x), 9).float())
    np.testing.assert_allclose(out.numpy(), hs, rtol=1e-5, atol=1e-6)
    assert isinstance(nn.from_torch(torch_interop.TorchCharRNN(9, 5, 1)), nn.CharRNN)


def test_an_embedding_in_front_is_folded_into_the_first_layer():
    torch.manual_seed(0)

    class TorchRNNStyle(torch.nn.Module):        # torch-rnn: LookupTable -> LSTM -> Linear
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(13, 4)
            self.rnn = torch.nn.LSTM(4, 8, 2)
            self.decoder = torch.nn.Linear(8, 13)

        def forward(self, x):
            return self.decoder(self.rnn(self.embedding(x))[0])

    t = TorchRNNStyle()
    model = torch_interop.from_torch(t)
    assert model.rnn.weight_ih_l0.data.shape == (32, 13)
    x = ids(13)
    with torch.no_grad():
        expect = t(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x)[0], expect, rtol=1e-5, atol=1e-5)


def test_bad_modules_are_refused():
    with pytest.raises(TypeError, match="cannot convert Conv1d from torch"):
        torch_interop.from_torch(torch.nn.Conv1d(2, 2, 2))
    with pytest.raises(TypeError, match="cannot convert str to torch"):
        torch_interop.to_torch("lstm")
    with pytest.raises(ValueError, match="bidirectional"):
        torch_interop.from_torch(torch.nn.LSTM(3, 4, bidirectional=True))


def test_a_non_default_option_converts_as_a_layer_but_not_as_a_char_model():
    """The options (Cell.options) are torch's keyword arguments; TorchCharRNN has none."""
    model = nn.CharRNN(7, hidden_size=4, num_layers=1, cell="rnn", seed=0)
    model.rnn.nonlinearity = "relu"
    with pytest.raises(ValueError, match=r"TorchCharRNN builds the rnn cell with its default "
                                         r"options \{'nonlinearity': 'tanh'\}, the model has "
                                         r"\{'nonlinearity': 'relu'\}"):
        torch_interop.to_torch(model)
    layer = torch_interop.to_torch(model.rnn)
    assert isinstance(layer, torch.nn.RNN) and layer.nonlinearity == "relu"
    assert torch_interop.from_torch(layer).nonlinearity == "relu"

    class Char(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(7, 4, nonlinearity="relu")
            self.decoder = torch.nn.Linear(4, 7)

    with pytest.raises(ValueError, match=r"CharRNN's rnn cell uses its default options "
                                         r"\{'nonlinearity': 'tanh'\}, the torch module has "
                                         r"\{'nonlinearity': 'relu'\}"):
        torch_interop.from_torch(Char())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from fastrnn import train
    d = tmp_path_factory.mktemp("export")
    corpus = d / "corpus.txt"
    corpus.write_text("the cat sat on the mat and the dog ran home fast\n" * 60)
    cfg = train.TrainConfig(corpus=str(corpus), hidden=8, layers=2, seq=8, batch=2, steps=3,
                            eval_every=100, eval_batches=1, out=str(d / "run"))
    train.Trainer(cfg, progress=False, log=lambda *a: None).run()
    return d / "run"


def test_export_round_trips(run_dir, tmp_path):
    from fastrnn.sample import load_model
    model, vocab, _ = load_model(run_dir)
    ref = model.state_dict()
    x = ids(vocab.size)
    expect = model.forward(x)[0]

    assert torch_interop.export(run_dir, tmp_path / "m.pt") == "torch"
    obj = torch.load(tmp_path / "m.pt", weights_only=True)            # no pickled code
    t = torch_interop.TorchCharRNN(**obj["config"])
    t.load_state_dict(obj["state_dict"])
    with torch.no_grad():
        np.testing.assert_allclose(t(torch.from_numpy(x))[0].numpy(), expect, rtol=1e-5,
                                   atol=1e-5)
    assert obj["vocab"] == vocab.to_json()

    pytest.importorskip("safetensors")
    from safetensors import safe_open
    from safetensors.numpy import load_file
    torch_interop.export(run_dir, tmp_path / "m.safetensors")
    loaded = load_file(tmp_path / "m.safetensors")
    assert loaded.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(loaded[k], ref[k])
    with safe_open(tmp_path / "m.safetensors", framework="np") as f:
        assert json.loads(f.metadata()["config"])["hidden_size"] == 8

    torch_interop.export(run_dir, tmp_path / "m.bin", format="npz")
    with np.load(tmp_path / "m.bin", allow_pickle=False) as z:
        for k in ref:
            np.testing.assert_array_equal(z[k], ref[k])
        assert json.loads(str(z["__config__"]))["num_layers"] == 2


def test_export_cli(run_dir, tmp_path, capsys, monkeypatch):
    from fastrnn import cli
    assert cli.main(["export", str(run_dir), str(tmp_path / "w.npz")]) == 0
    assert "npz" in capsys.readouterr().out
    assert cli.main(["export", str(run_dir), str(tmp_path / "w.xyz")]) == 2
    assert "--format" in capsys.readouterr().err
    import builtins
    real = builtins.__import__

    def no_safetensors(name, *args, **kw):
        if name.startswith("safetensors"):
            raise ImportError("No module named 'safetensors'")
        return real(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    assert cli.main(["export", str(tmp_path / "missing"), str(tmp_path / "w.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'fastrnn[safetensors]'" in err        # checked before the checkpoint
    assert not (tmp_path / "w.safetensors").exists()
