"""What each ``fastrnn`` sub-command does once ``fastrnn.cli`` has parsed its arguments: train,
sample, info, eval, export (``run_<command>(args)``; errors are raised, ``cli.main`` turns
them into one line and exit 2). Modules are imported inside the commands, so ``fastrnn
--help`` stays fast.
"""

import os
import sys

# exit codes of `fastrnn train` by the trainer's status ("done": 0; bad arguments: 2)
EXIT_CODES = {"diverged": 1, "save_failed": 1, "interrupted": 130, "aborted": 130}


def run_train(args, given_options):
    """``fastrnn train``; ``given_options()`` -> the train options given on the command line
    (it parses the command line again, so it is asked only when needed)."""
    from . import rundir, train
    if args.steps is None and args.epochs is None and args.time is None:
        args.epochs = 10.0
    if args.plot:                                   # optional dependencies: before any work
        _require("matplotlib", "--plot", "plot")
    if args.threads:
        from . import set_num_threads
        set_num_threads(args.threads)
    fields = dict(
        corpus=args.corpus, mode="byte" if args.byte else "char", cell=args.cell,
        hidden=args.hidden, layers=args.layers, seq=args.seq, batch=args.batch,
        dropout=args.dropout, truncate=args.truncate, optimizer=args.optimizer, lr=args.lr,
        clip=args.clip, schedule=args.schedule, warmup=args.warmup, steps=args.steps,
        epochs=args.epochs, time=args.time, val_fraction=args.val_fraction,
        val_split=args.val_split, val_file=args.val_file, eval_every=args.eval_every,
        eval_batches=args.eval_batches, on_nan=args.on_nan, nan_retries=args.nan_retries,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, dtype=args.dtype,
        seed=args.seed, out=args.out)
    if args.time is not None and not args.resume:  # the model fits the time (README)
        fields["auto_model"] = not {"hidden", "layers", "dropout"} & given_options()
    if args.resume:
        args.resume = rundir.resolve(args.resume)
        given = {"mode" if k == "byte" else k for k in given_options()}
        fields = rundir.resumed_settings(fields, args.resume, given)
    rundir.check_new_run(fields["out"], args.resume, args.overwrite)
    cfg = train.TrainConfig(**fields)
    from .dist import world
    with world().abort_on_error("fastrnn train"):  # under MPI: an error on one rank ends all
        trainer = train.Trainer(cfg, resume=args.resume, progress=not args.no_progress)
        end = trainer.budget.total                # steps/epochs: the last step
        if args.resume and end is not None and trainer.step >= end:
            cfg = trainer.cfg                     # with the pass limit a picked model keeps
            if cfg.steps == end:
                budget, larger = f"--steps {cfg.steps}", f"--steps {trainer.step + 1000}"
            else:
                budget = f"--epochs {cfg.epochs:g} (step {end})"
                larger = f"--epochs {2 * cfg.epochs:g}"
            raise ValueError(f"{args.resume} is already at step {trainer.step}, past the budget "
                             f"{budget}: nothing to train. Budgets count from the start of "
                             f"the run: give a larger one (e.g. {larger})"
                             + ("" if cfg.time is not None else " or --time SECONDS"))
        if args.overwrite and trainer.world.is_root and not (
                args.resume and os.path.abspath(args.resume)
                == os.path.abspath(trainer.checkpoint_path)):
            for name in (train.CHECKPOINT, train.BEST, "log.jsonl", "loss.png"):  # the new
                path = os.path.join(trainer.out, name)             # run replaces the old one's
                if os.path.exists(path):
                    os.remove(path)
        status = trainer.run()
    if not trainer.world.is_root:                  # rank 0 alone reports
        return EXIT_CODES.get(status, 0)
    print(f"{status} after {trainer.step} steps; checkpoint: {trainer.checkpoint_path}")
    _print_heldout(trainer.heldout, trainer.best, trainer.best_path)
    if args.plot:
        try:
            png = train.plot_log(os.path.join(trainer.out, "log.jsonl"),
                                 os.path.join(trainer.out, "loss.png"))
            print(f"loss curves: {png}")
        except OSError as e:                       # e.g. disk full: the run itself is fine
            print(f"fastrnn train: warning: could not write the loss curves: {e}",
                  file=sys.stderr)
    return EXIT_CODES.get(status, 0)


def _require(module, what, extra):
    """Import an optional dependency up front, or fail with the extra that provides it."""
    import importlib
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs {module}, which is not installed: "
                          f"pip install 'fastrnn[{extra}]' (or pip install -e '.[{extra}]' in "
                          f"a clone)") from e


def _print_heldout(heldout, best, best_path=None):
    """The held-out loss lines of the train summary and of `fastrnn info`."""
    from .validation import bits
    if heldout is not None:
        print(f"held-out loss: {heldout['loss']:.4f} nats/char = "
              f"{bits(heldout['loss']):.3f} bits/char ({heldout['tokens']:,} tokens of "
              f"{heldout['what']}, step {heldout['step']})")
    if best is not None and best.get("heldout") is not None and (
            heldout is None or best["step"] != heldout["step"]):
        print(f"best checkpoint (step {best['step']}): held-out loss {best['heldout']:.4f} "
              f"nats/char" + (f", {best_path}" if best_path else ""))


def run_sample(args):
    from .sample import beam_search, generate, load_model, stream
    if args.beam is not None:
        clash = [f for f, on in (("--temperature", args.temperature is not None),
                                 ("--argmax", args.argmax), ("--top-k", args.top_k),
                                 ("--seed", args.seed is not None), ("-n 0", not args.length))
                 if on]
        if clash:
            raise ValueError(f"--beam finds the likeliest continuation of -n tokens: it takes no "
                             f"{', '.join(clash)}")
    if args.temperature is None:
        args.temperature = 0.8
    model, vocab, _ = load_model(args.checkpoint, best=not args.last)
    vocab.encode(args.prime)                       # a prime the model cannot read: error first
    sys.stdout.write(args.prime)                   # the text continues the prime
    if args.beam is not None:
        text, _ = beam_search(model, vocab, args.length, args.beam, args.prime)
        sys.stdout.write(text + "\n")
        return 0
    if args.length == 0:                           # stream until interrupted, line by line
        return _stream(stream(model, vocab, args.temperature, args.top_k, args.prime,
                              args.seed, args.argmax))
    generate(model, vocab, args.length, args.temperature, args.top_k, args.prime, args.seed,
             args.argmax, write=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    sys.stdout.write("\n")
    return 0


def _stream(pieces):
    """Write the pieces of an endless generation, flushing at each line end, until Ctrl-C
    (exit 130) or a closed pipe (e.g. ``| head``: exit 0)."""
    out = sys.stdout
    try:
        for piece in pieces:
            out.write(piece)
            if "\n" in piece:
                out.flush()
    except KeyboardInterrupt:
        out.write("\n")
        out.flush()
        return 130
    except BrokenPipeError:                        # the reader is gone: nothing to flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 0


def run_info(args):
    from .sample import load_model
    from .validation import bits
    model, vocab, tree = load_model(args.checkpoint)
    cfg = tree["config"]
    n = sum(p.data.size for p in model.parameters())
    print(f"{cfg['cell']} {cfg['layers']} x {cfg['hidden']}, {cfg['dtype']}, {n:,} parameters")
    print(f"vocabulary: {vocab.size} {vocab.mode} tokens")
    print(f"trained {tree['step']} steps, {tree['tokens']:,} tokens, {_duration(tree['elapsed'])}")
    if tree.get("heldout") is not None or tree.get("best") is not None:
        _print_heldout(tree.get("heldout"), tree.get("best"))
    elif tree["best_val"] is not None:                 # a checkpoint of an older fastrnn
        print(f"best validation loss: {tree['best_val']:.4f} nats/char "
              f"({bits(tree['best_val']):.3f} bits/char)")
    print(f"corpus: {cfg['corpus'] or '(embedded default)'}")
    return 0


def run_export(args):
    from . import torch_interop
    fmt = torch_interop.format_for(args.out, args.format)
    torch_interop.require(fmt)                     # the optional package, before any work
    torch_interop.export(args.checkpoint, args.out, fmt)
    print(f"{args.out}: {fmt} export of {args.checkpoint}")
    return 0


def _duration(seconds):
    if seconds < 100:
        return f"{seconds:.2f} s"
    h, rest = divmod(round(seconds), 3600)
    return (f"{h} h " if h else "") + f"{rest // 60} min {rest % 60} s ({seconds:,.0f} s)"


def run_eval(args):
    from .sample import eval_streams, evaluate_file, load_model
    from .validation import bits
    model, vocab, _ = load_model(args.checkpoint, best=True)
    streams = 1 if args.exact else args.streams
    nats, n = evaluate_file(model, vocab, args.file, streams=streams)
    how = ("one stream, exact" if streams == 1 else
           f"{min(streams or eval_streams(n + 1), n)} streams")
    print(f"{args.file}: {n:,} tokens, {nats:.4f} nats/char, {bits(nats):.4f} bits/char ({how})")
    return 0
