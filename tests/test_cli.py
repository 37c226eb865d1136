"""The command line: safe run directories, resume rules, help, sample/info/eval details."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from fastrnn import checkpoint as ckpt
from fastrnn import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--hidden", "8", "--layers", "1", "--batch", "2", "--seq", "8", "--eval-batches", "2",
        "--no-progress"]


def test_version():
    out = subprocess.run([sys.executable, "-m", "fastrnn.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fastrnn {fastrnn.__version__}"


def test_python_dash_m_fastrnn():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "fastrnn", "--version"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"fastrnn {fastrnn.__version__}"


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "home", "fast"]
    p = tmp_path / "corpus.txt"
    p.write_text(" ".join(rng.choice(words, 1500)) + "\n")
    return p


def main(capsys, *args):
    """fastrnn in-process -> (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return code, cap.out, cap.err


def train(capsys, corpus, out, *args):
    return main(capsys, "train", corpus, "--out", out, *TINY, *args)


def test_a_new_run_never_replaces_a_trained_model(capsys, tmp_path, corpus):
    out = tmp_path / "run"
    code, _, err = train(capsys, corpus, out, "--steps", 6, "--hidden", 12)
    assert code == 0, err
    before = (out / "checkpoint.npz").read_bytes()
    log_before = (out / "log.jsonl").read_text()
    code, _, err = train(capsys, corpus, out, "--steps", 2)
    assert code == 2
    assert "already holds a trained model" in err and "--resume" in err and "--overwrite" in err
    assert (out / "checkpoint.npz").read_bytes() == before            # untouched
    assert (out / "log.jsonl").read_text() == log_before
    code, _, err = train(capsys, corpus, out, "--steps", 2, "--overwrite")
    assert code == 0, err
    tree = ckpt.load(out / "checkpoint.npz")
    assert tree["step"] == 2 and tree["config"]["hidden"] == 8       # the new run
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 2                                            # a fresh log
    # resuming the run in its own directory needs no flag; into another run's it does
    code, _, err = main(capsys, "train", "--resume", out, "--steps", 4, "--no-progress")
    assert code == 0, err
    other = tmp_path / "other"
    assert train(capsys, corpus, other, "--steps", 1)[0] == 0
    code, _, err = main(capsys, "train", "--resume", out, "--out", other, "--steps", 6,
                        "--no-progress")
    assert code == 2 and "already holds a trained model" in err
    assert ckpt.load(other / "checkpoint.npz")["step"] == 1


def test_abbreviated_options_are_refused(capsys, corpus, tmp_path):
    code, _, err = train(capsys, corpus, tmp_path / "r", "--steps", 1, "--drop", "0.5")
    assert code == 2 and "unrecognized arguments: --drop" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv,given", [
    (["--dropout", "0.5"], {"dropout"}),
    (["--dropout=0.5", "--lr=1e-3"], {"dropout", "lr"}),
    (["--byte", "--hidden", "128"], {"byte", "hidden"}),    # a default value, given: counts
    ([], set()),
])
def test_resume_overrides_come_from_parsed_options(argv, given):
    parser = cli.build_parser()
    full = ["train", "--resume", "r", "--steps", "5", *argv]
    args = parser.parse_args(full)
    assert cli._given_options(parser, args, full) - {"command", "resume", "steps"} == given


def test_resume_uses_given_options_and_inherits_the_rest(capsys, tmp_path, corpus):
    out = tmp_path / "run"
    assert train(capsys, corpus, out, "--steps", 2, "--dropout", "0.1", "--lr", "0.01")[0] == 0
    code, _, err = main(capsys, "train", "--resume", out, "--steps", 3, "--dropout=0.25",
                        "--no-progress")
    assert code == 0, err
    cfg = ckpt.load(out / "checkpoint.npz")["config"]
    assert cfg["dropout"] == 0.25 and cfg["lr"] == 0.01 and cfg["hidden"] == 8


def test_resume_past_the_budget_says_so(capsys, tmp_path, corpus):
    out = tmp_path / "run"
    assert train(capsys, corpus, out, "--steps", 5)[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    code, _, err = main(capsys, "train", "--resume", out, "--steps", 3, "--no-progress")
    assert code == 2
    assert "already at step 5, past the budget --steps 3: nothing to train" in err
    assert (out / "checkpoint.npz").read_bytes() == before


def _subparsers(parser):
    import argparse
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_has_help_and_help_shows_defaults(capsys):
    parser = cli.build_parser()
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            assert action.help, (name, action.option_strings or action.dest)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("hidden units per layer (default: 128)", "peak learning rate (default: 0.008)",
                  "(default: rmsprop)", "in [0, 1) (default: 0.0)"):
        assert shown in text


def test_sample_echoes_the_prime_and_info_reports_training_time(capsys, tmp_path, corpus):
    out = tmp_path / "run"
    # the last step is a checkpoint step: the final save is skipped, the time must be saved
    assert train(capsys, corpus, out, "--steps", 4, "--checkpoint-every", 2)[0] == 0
    assert ckpt.load(out / "checkpoint.npz")["elapsed"] > 0
    code, text, err = main(capsys, "sample", out, "-n", 20, "--prime", "the cat", "--seed", 1)
    assert code == 0, err
    assert text.startswith("the cat") and len(text.rstrip("\n")) == len("the cat") + 20
    code, text, _ = main(capsys, "info", out)
    assert code == 0 and "trained 4 steps" in text and " 0.00 s" not in text


def test_sample_from_a_file_that_is_not_a_checkpoint(capsys, tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"step": 1}\n')
    for cmd in ("sample", "info"):
        code, _, err = main(capsys, cmd, p)
        assert code == 2 and "is not a fastrnn checkpoint" in err and "pickle" not in err, err
