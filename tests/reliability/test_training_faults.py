"""Faults during training: NaN/Inf (stop, skip, rollback), a disk that fills up or a directory
that refuses writes, signals in the middle of a step. In-process, tiny models."""

import errno
import os
import signal

import numpy as np
import pytest

from fastrnn import checkpoint as ckpt
from fastrnn import _progress, cli, rundir, train
from reliability.helpers import files_under, same_weights, tiny_cfg


def trainer(corpus, out, messages, **kw):
    return train.Trainer(tiny_cfg(corpus, out, **kw), progress=False, log=messages.append)


def poison(monkeypatch, t, bad_calls, what="loss"):
    """Makes the given calls (1-based) of the model's loss_and_grad non-finite."""
    real = t.model.loss_and_grad
    calls = []

    def poisoned(x, y, state=None):
        calls.append(1)
        loss, state = real(x, y, state)
        if (len(calls) >= 5) if bad_calls == "all" else (len(calls) in bad_calls):
            if what == "loss":
                return float("nan"), state
            t.params[0].grad[0] = np.inf
        return loss, state
    monkeypatch.setattr(t.model, "loss_and_grad", poisoned)
    return calls


def finite(tree):
    return all(np.isfinite(a).all() for a in tree["model"].values())


# ---------------------------------------------------------------- NaN / Inf

def test_huge_learning_rate_stops_naming_the_step_and_the_last_good_checkpoint(corpus,
                                                                                tmp_path):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, lr=1e37, checkpoint_every=1, steps=50)
    assert t.run() == "diverged"
    last = msgs[-1]
    assert "became" in last and "training stopped" in last
    good = ckpt.load(t.checkpoint_path)
    assert f"at step {t.step + 1}: training stopped" in last
    assert f"The last good checkpoint is {t.checkpoint_path} (step {good['step']})" in last
    assert good["step"] <= t.step and finite(good)     # weights that overflowed were not saved
    assert any("weights are not finite" in m for m in msgs) or good["step"] == t.step


@pytest.mark.parametrize("what", ["loss", "grad"])
def test_stop_is_the_default(corpus, tmp_path, monkeypatch, what):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs)
    poison(monkeypatch, t, {7}, what)
    before = [p.data.copy() for p in t.params]
    steps_done = []
    real_update = t._update
    monkeypatch.setattr(t, "_update", lambda: (steps_done.append(1), real_update())[1])
    assert t.run() == "diverged"
    name = "loss" if what == "loss" else "gradient norm"
    assert f"{name} became " in msgs[-1] and "at step 7: training stopped" in msgs[-1]
    assert "The last good checkpoint is" in msgs[-1] and "(step 4)" in msgs[-1]
    assert ckpt.load(t.checkpoint_path)["step"] == 4 and t.step == 6
    if what == "grad":                      # the poisoned update was not applied
        assert len(steps_done) == 7
        assert all(np.isfinite(p.data).all() for p in t.params)
    assert any((a != p.data).any() for a, p in zip(before, t.params))


def test_skip_drops_the_update_and_goes_on(corpus, tmp_path, monkeypatch):
    msgs = []
    ref = trainer(corpus, tmp_path / "ref", [])
    ref.run()
    t = trainer(corpus, tmp_path / "r", msgs, on_nan="skip")
    poison(monkeypatch, t, {5, 9})
    assert t.run() == "done" and t.step == 12
    skipped = [m for m in msgs if "update skipped" in m]
    assert len(skipped) == 2 and "loss became nan at step 5" in skipped[0]
    assert all(np.isfinite(p.data).all() for p in t.params)
    # two windows were dropped: the model differs from the clean run, but is trained as far
    assert ckpt.load(t.checkpoint_path)["step"] == 12
    assert any((a != b).any() for a, b in zip(ref.model.state_dict().values(),
                                                 t.model.state_dict().values()))


def test_skip_gives_up_after_the_retries(corpus, tmp_path, monkeypatch):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, on_nan="skip", nan_retries=3)
    poison(monkeypatch, t, "all")
    assert t.run() == "diverged"
    assert sum("update skipped" in m for m in msgs) == 3
    assert "--on-nan skip gave up after 3 tries" in msgs[-2]
    assert "The last good checkpoint is" in msgs[-1] and "(step 4)" in msgs[-1]


def test_rollback_restores_the_last_good_state_and_halves_the_lr(corpus, tmp_path,
                                                                   monkeypatch):
    msgs = []
    # a constant learning rate, so that "halved" is one number (a schedule's base is halved)
    t = trainer(corpus, tmp_path / "r", msgs, on_nan="rollback", lr=1e-2, schedule="none")
    calls = poison(monkeypatch, t, {7})
    good4 = {}
    real_save = t.save

    def save():
        real_save()
        if t.step == 4:
            good4.update(ckpt.load(t.checkpoint_path))
    monkeypatch.setattr(t, "save", save)
    assert t.run() == "done" and t.step == 12
    roll = [m for m in msgs if "rolled back" in m]
    assert len(roll) == 1
    assert "loss became nan at step 7: rolled back to step 4 (the last good state), " \
           "learning rate halved to 0.005 (rollback 1 of at most 3)" in roll[0]
    assert t.opt.lr == pytest.approx(5e-3)
    assert len(calls) == 12 + 3                   # steps 5, 6, 7 were done again
    # the rolled-back run is the clean run from step 4 with lr / 2: check by redoing it
    again = trainer(corpus, tmp_path / "again", [], lr=1e-2, steps=12, schedule="none")
    again._restore(good4)
    again.opt.lr = 5e-3
    again.run()
    same_weights(ckpt.load(again.checkpoint_path), ckpt.load(t.checkpoint_path))


def test_rollback_gives_up_after_the_retries(corpus, tmp_path, monkeypatch):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, on_nan="rollback", nan_retries=2,
                schedule="none")
    poison(monkeypatch, t, "all")
    assert t.run() == "diverged"
    rolls = [m for m in msgs if "rolled back" in m]
    assert len(rolls) == 2 and all("at step 5: rolled back to step 4" in m for m in rolls)
    assert "learning rate halved to 0.0025" in rolls[-1]
    assert "--on-nan rollback gave up after 2 tries" in msgs[-2]


def test_cli_on_nan_flag(corpus, tmp_path, capsys):
    out = tmp_path / "r"
    code = cli.main(["train", str(corpus), "--out", str(out), "--lr", "1e37", "--steps", "30",
                     "--checkpoint-every", "1", "--on-nan", "rollback", "--nan-retries", "2",
                     "--hidden", "16", "--layers", "1", "--batch", "4", "--seq", "8",
                     "--no-progress"])
    captured = capsys.readouterr()
    assert "rolled back" in captured.out and "learning rate halved" in captured.out
    if code == 1:                                 # lr / 4 is still huge: it gives up cleanly
        assert "gave up after 2 tries" in captured.out
    assert finite(ckpt.load(out / "checkpoint.npz"))
    assert ckpt.load(out / "checkpoint.npz")["config"]["on_nan"] == "rollback"


# ---------------------------------------------------------------- disk full, permissions

@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_a_failed_checkpoint_write_keeps_the_previous_one_and_training_goes_on(
        corpus, tmp_path, monkeypatch, err):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, steps=12, checkpoint_every=4)
    real = ckpt.np.savez
    seen = []

    def savez(f, **arrays):
        seen.append(t.step)
        if t.step == 8:                           # the second checkpoint hits a full disk
            on_disk = ckpt.load(t.checkpoint_path)
            assert on_disk["step"] == 4
            raise OSError(err, os.strerror(err))
        return real(f, **arrays)
    monkeypatch.setattr(ckpt.np, "savez", savez)
    assert t.run() == "done"
    warn = [m for m in msgs if "warning" in m]
    assert len(warn) == 1
    assert f"could not write checkpoint {t.checkpoint_path}: {os.strerror(err)}" in warn[0]
    assert "Training goes on and the next checkpoint retries" in warn[0]
    assert "The last good checkpoint is" in warn[0] and "(step 4)" in warn[0]
    assert seen == [4, 8, 12]
    assert ckpt.load(t.checkpoint_path)["step"] == 12           # the retry worked
    assert not [f for f in files_under(tmp_path / "r") if ".tmp" in f]


def test_a_failed_final_checkpoint_is_an_error_naming_the_last_good_one(corpus, tmp_path,
                                                                        monkeypatch, capsys):
    out = tmp_path / "r"
    real = ckpt.np.savez
    state = {"saves": 0}

    def savez(f, **arrays):
        state["saves"] += 1
        if state["saves"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, **arrays)
    monkeypatch.setattr(ckpt.np, "savez", savez)
    code = cli.main(["train", str(corpus), "--out", str(out), "--steps", "6",
                     "--checkpoint-every", "4", "--hidden", "16", "--layers", "1",
                     "--batch", "4", "--seq", "8", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 1
    assert "save_failed after 6 steps" in text
    assert "error: step 6: [Errno 28] could not write checkpoint" in text
    assert "The last good checkpoint is" in text and "(step 4)" in text
    assert "continue from it with --resume" in text
    assert ckpt.load(out / "checkpoint.npz")["step"] == 4


def test_an_output_directory_that_refuses_writes_fails_before_training(corpus, tmp_path,
                                                                       monkeypatch, capsys):
    def denied(path, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", path)
    monkeypatch.setattr(_progress, "open", denied, raising=False)    # log.jsonl
    monkeypatch.setattr(rundir, "open", denied, raising=False)      # the lock file
    with pytest.raises(PermissionError, match=r"cannot write to the run directory .*run "
                                              r"\(Permission denied\); choose another --out"):
        trainer(corpus, tmp_path / "run", [])
    code = cli.main(["train", str(corpus), "--out", str(tmp_path / "run"), "--steps", "2",
                     "--batch", "4", "--seq", "8"])
    assert code == 2 and "cannot write to the run directory" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_a_read_only_output_directory_for_real(corpus, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="cannot write to the run directory"):
            trainer(corpus, out, [])
    finally:
        out.chmod(0o755)


# ---------------------------------------------------------------- signals between steps

def test_a_signal_in_the_middle_of_a_step_saves_a_whole_step(corpus, tmp_path, monkeypatch):
    """Ctrl-C used to raise KeyboardInterrupt wherever it landed: between the forward and the
    optimizer step that saved a state from one step with the weights of the previous one, so
    the resumed run was not the uninterrupted one."""
    full = trainer(corpus, tmp_path / "full", [], steps=12)
    full.run()
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, steps=12)
    real_update = t._update

    def update():
        if t.step == 5:                            # in the middle of step 6
            os.kill(os.getpid(), signal.SIGINT)
        return real_update()
    monkeypatch.setattr(t, "_update", update)
    assert t.run() == "interrupted"
    assert "interrupted at step 6: checkpoint saved" in msgs[-1]
    rest = train.Trainer(tiny_cfg(corpus, tmp_path / "r", steps=12), progress=False,
                         resume=t.checkpoint_path, log=msgs.append)
    assert rest.run() == "done"
    same_weights(ckpt.load(full.checkpoint_path), ckpt.load(rest.checkpoint_path))


def test_a_second_ctrl_c_aborts_without_saving(corpus, tmp_path, monkeypatch):
    msgs = []
    t = trainer(corpus, tmp_path / "r", msgs, steps=12, checkpoint_every=4)
    real_update = t._update

    def update():
        if t.step == 5:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_update()
    monkeypatch.setattr(t, "_update", update)
    assert t.run() == "aborted"
    assert "aborted at step 5 without saving it" in msgs[-1]
    assert "The last good checkpoint is" in msgs[-1] and "(step 4)" in msgs[-1]
    assert ckpt.load(t.checkpoint_path)["step"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
