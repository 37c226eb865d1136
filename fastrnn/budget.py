"""The budget of a training run (``steps``, ``epochs`` or wall ``time``, whichever ends first)
and the learning-rate schedule that ends with it.

- The schedule knows the end of the budget (default): warm-up, then cosine (or linear) decay
  to 0 at the last step (``optim.BudgetLR``). With ``steps``/``epochs`` the last step is
  known; with ``time`` it is estimated from the measured speed (steps per second over the
  recent past, every evaluation and checkpoint included) and re-estimated every
  ``REPLAN_EVERY`` steps, so a slower (or busier) machine still ends at the bottom of the
  schedule at the deadline.
- Schedule and resume (the rule): the learning rate of a step is a function of the
  schedule's *plan* (the step and progress it started from, the planned last step) and of
  the step number only, never of a clock; the plan is in every checkpoint. So a run with a
  ``steps``/``epochs`` budget that is interrupted and resumed with the same budget is
  bit-identical to an uninterrupted one. A wall-time budget changes the plan only at
  re-estimates (at fixed step numbers, from the root rank's clock, broadcast under MPI); a
  resumed time run continues from the saved plan, so its learning rate does not jump, and
  re-estimates the rest from its own deadline (``time`` is the time of each invocation).
  A resumed run whose schedule had reached its end (a finished run given a bigger budget)
  starts a new warm-up and decay over the new budget; one whose ``steps`` changed keeps its
  progress and decays over the new remainder.
"""

import math

from . import optim

REPLAN_EVERY = 10        # steps between re-estimates of a time budget's last step
REPLAN_FIRST = 20        # ... after re-estimating at each of the first steps of a run
GUESS_STEPS = 1000       # the last step of a time budget before any step was timed


def last_step(cfg, batches_per_epoch):
    """The step a ``steps``/``epochs`` budget ends at, or None for a time budget alone."""
    totals = [cfg.steps] if cfg.steps is not None else []
    if cfg.epochs is not None:
        totals.append(math.ceil(cfg.epochs * batches_per_epoch))
    return min(totals) if totals else None


class Budget:
    """One invocation's budget: when the run is done, and (a time budget) where the schedule
    ends. ``clock`` gives seconds; ``world`` (``fastrnn.dist``) makes every decision the same
    on every rank."""

    def __init__(self, cfg, batches_per_epoch, world, clock):
        self.cfg, self.batches_per_epoch = cfg, batches_per_epoch
        self.world, self.clock = world, clock
        self.total = last_step(cfg, batches_per_epoch)
        self.t_start, self.start_step, self._samples = None, 0, []

    def schedule(self, opt):
        """The learning-rate schedule of ``cfg.schedule`` over this budget (None: constant)."""
        cfg = self.cfg
        if cfg.schedule in ("cosine", "linear"):
            return optim.BudgetLR(opt, self.total or GUESS_STEPS, shape=cfg.schedule,
                                  warmup=cfg.warmup)
        if cfg.schedule == "step":
            return optim.StepLR(opt, step_size=cfg.decay_every * self.batches_per_epoch,
                                gamma=cfg.lr_decay)
        return None

    def continue_plan(self, sched, saved, run_step):
        """After a resume at ``run_step`` (the schedule's state ``saved`` restored into
        ``sched`` if it was the same kind): how the schedule goes on (module docstring)."""
        if not isinstance(sched, optim.BudgetLR):
            return
        step, total = sched.step_count, self.total
        if saved is None or saved.get("schedule") != "BudgetLR":
            # a checkpoint with another (or no) schedule: a new plan from this step
            sched.step_count = step = run_step
            sched.replan(step, total or step + GUESS_STEPS, progress=0.0)
        elif sched.finished:                    # the last run ended its schedule: a new one
            sched.replan(step, total or step + GUESS_STEPS, progress=0.0)
        elif total is not None and total != sched.end_step:
            sched.replan(step, total)           # keep the progress, decay over the new rest

    def start(self, step):
        """This invocation starts training at ``step`` now -> the start time."""
        self.t_start, self.start_step, self._samples = self.clock(), step, []
        return self.t_start

    def done(self, step, reserve):
        """Is the budget spent after ``step`` steps? ``reserve``: seconds a time budget keeps
        for what follows the last step (a collective under MPI when there is a time budget)."""
        cfg = self.cfg
        if cfg.steps is not None and step >= cfg.steps:
            return True
        if cfg.epochs is not None and step >= cfg.epochs * self.batches_per_epoch:
            return True
        return cfg.time is not None and self.world.any(
            self.clock() - self.t_start >= cfg.time - reserve)

    def replan(self, sched, step, reserve):
        """A time budget: re-estimate the last step from the measured speed (every step of the
        first ``REPLAN_FIRST`` of this run, then every ``REPLAN_EVERY``; the first step, which
        includes compiling, only starts the clock) and move the schedule's end there."""
        k = step - self.start_step
        if not (k <= REPLAN_FIRST or k % REPLAN_EVERY == 0):
            return
        end = None
        if self.world.is_root:
            now = self.clock()
            samples = self._samples
            samples.append((now, step))
            if len(samples) >= 2:
                window = max(2.0, 0.2 * self.cfg.time)     # the recent past: speed may change
                t0, s0 = next((t, s) for t, s in samples if t >= now - window or s == step)
                if s0 == step:                         # no sample in the window but this one
                    t0, s0 = samples[-2]
                rate = (step - s0) / max(now - t0, 1e-9)           # steps per second
                left = self.t_start + self.cfg.time - reserve - now
                end = step + max(1, int(left * rate))
                if self.total is not None:
                    end = min(end, self.total)
                while len(samples) > 2 and samples[1][0] < now - window:
                    samples.pop(0)
        end = self.world.bcast(end)
        if end is not None:
            sched.replan(sched.step_count, end)
