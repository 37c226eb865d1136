"""Run by tests/dist (plainly or under ``mpiexec``): train with the TrainConfig given as JSON in
argv[1] (``resume`` in it: a checkpoint to continue), then every rank writes its weights to
``<out>/weights-rank<r>.npz`` and its world size and status to ``weights-rank<r>.json``
(files, not stdout: mpiexec interleaves the ranks' output).

``FASTRNN_TEST_DIE="<rank>:<step>:<how>"`` makes that rank die before the update of that step,
by an exception (``raise``) or by SIGKILL (``kill``): the fault tests.
``FASTRNN_TEST_NAN="<rank>:<step>"`` puts a NaN into that rank's gradient at that step, once.
"""

import json
import os
import signal
import sys

import numpy as np

from fastrnn import train
from fastrnn.dist import world


def main():
    kw = json.loads(sys.argv[1])
    resume = kw.pop("resume", None)
    w = world()
    die = os.environ.get("FASTRNN_TEST_DIE")
    with w.abort_on_error("rank_main"):
        t = train.Trainer(train.TrainConfig(**kw), resume=resume, progress=False)
        if die:
            rank, step, how = die.split(":")
            update = t._update

            def dying_update():
                if w.rank == int(rank) and t.step + 1 == int(step):
                    if how == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    raise RuntimeError(f"test fault on rank {w.rank} at step {t.step + 1}")
                return update()

            t._update = dying_update
        nan = os.environ.get("FASTRNN_TEST_NAN")
        if nan:
            rank, step = map(int, nan.split(":"))
            loss_and_grad, done = t.model.loss_and_grad, []

            def nan_loss_and_grad(*args):
                out = loss_and_grad(*args)
                if w.rank == rank and t.step + 1 == step and not done:
                    t.params[0].grad[0, 0] = np.nan
                    done.append(True)
                return out

            t.model.loss_and_grad = nan_loss_and_grad
        status = t.run()
        np.savez(os.path.join(t.out, f"weights-rank{w.rank}.npz"), **t.model.state_dict())
        with open(os.path.join(t.out, f"weights-rank{w.rank}.json"), "w") as f:
            json.dump({"rank": w.rank, "size": w.size, "status": status}, f)


if __name__ == "__main__":
    main()
