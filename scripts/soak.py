"""Soak test: train on a generated corpus for a long time and check that memory stays flat and
throughput holds. Not run in CI (it takes 20 minutes and 1 GB of disk by default).

    python scripts/soak.py                                  # the full run: 1 GB, 20 minutes
    python scripts/soak.py --size 50M --minutes 1.5         # a quick check

It writes the corpus (random words from a small lexicon, deterministic) into --workdir, runs
the real ``fastrnn train`` in a subprocess with a time budget, samples the trainer's resident
memory (/proc/PID/status) every --interval seconds and reads tokens/s from the run's
log.jsonl. It reports peak RSS, the RSS slope over the training phase (least squares, MiB per
minute, after the first logged step so that start-up and corpus encoding are excluded; total
and anonymous memory, as the memmapped corpus adds file-backed pages as training reads on)
and mean tokens/s over the first and the last fifth of the log records, and exits 1 if the
anonymous-memory slope exceeds --max-slope or tokens/s dropped by more than --max-drop.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

WORDS = ("the of and to in is was that for it with as his on be at by had are but from or "
         "have an they which one you were her all she there would their we him been has when "
         "who will more no if out so said what up its about into than them can only other new "
         "some could time these two may then do first any my now such like our over man me even "
         "most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make "
         "world still own see men work long get here between both life being under never day "
         "same another know while last might us great old year off come since against go came "
         "right used take three").split()


def size_arg(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * mult[s[-1].upper()]) if s[-1].upper() in mult else int(s)


def make_corpus(path, size, seed=0):
    """``size`` bytes of random words and sentences (ASCII), written block by block."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    rng = np.random.default_rng(seed)
    words = np.array(WORDS, dtype=object)
    t0, written = time.time(), 0
    with open(path + ".part", "w", encoding="ascii") as f:
        while written < size:
            idx = rng.integers(0, len(words), 600_000)
            text = " ".join(words[idx])
            text = text.replace(" the ", ". The ", 2000) + "\n"
            text = text[:size - written]
            f.write(text)
            written += len(text)
    os.replace(path + ".part", path)
    print(f"corpus: {size / 2**20:,.0f} MiB in {time.time() - t0:.0f} s -> {path}", flush=True)
    return path


def rss_kib(pid):
    """(VmRSS, VmHWM, RssAnon, RssFile) of a live process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return tuple(int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"))
    except (OSError, KeyError, ValueError):
        return None


def slope_mib_per_min(samples, i=1):
    """Least-squares slope of field ``i`` of the samples (1: RSS, 3: anonymous RSS)."""
    if len(samples) < 3:
        return float("nan")
    t = np.array([s[0] for s in samples]) / 60
    r = np.array([s[i] for s in samples]) / 1024
    return float(np.polyfit(t, r, 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=size_arg, default=1 << 30, help="corpus bytes (1G, 50M...)")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    ap.add_argument("--workdir", default="soak", help="corpus, its cache and the run go here")
    ap.add_argument("--interval", type=float, default=5.0, help="RSS sampling period (s)")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--max-slope", type=float, default=2.0, help="MiB per minute")
    ap.add_argument("--max-drop", type=float, default=0.10, help="tokens/s, end vs start")
    ap.add_argument("train_args", nargs="*", help="extra fastrnn train arguments (after --)")
    args = ap.parse_args(argv)

    os.makedirs(args.workdir, exist_ok=True)
    corpus = make_corpus(os.path.join(args.workdir, f"corpus-{args.size}.txt"), args.size)
    out = os.path.join(args.workdir, "run")
    if os.path.exists(os.path.join(out, "log.jsonl")):
        os.remove(os.path.join(out, "log.jsonl"))
    cmd = [sys.executable, "-m", "fastrnn.cli", "train", corpus, "--time",
           str(args.minutes * 60), "--out", out, "--no-progress", "--eval-every",
           str(args.eval_every), "--checkpoint-every", "1000", "--overwrite", *args.train_args]
    print(" ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    samples, hwm, t_train = [], 0, None
    log = os.path.join(out, "log.jsonl")
    while proc.poll() is None:
        m = rss_kib(proc.pid)
        now = time.time() - t0
        if m is not None:
            hwm = max(hwm, m[1])
            if t_train is None and os.path.exists(log) and os.path.getsize(log) > 0:
                t_train = now                       # the first step is logged: training runs
            if t_train is not None:
                samples.append((now - t_train, m[0], m[1], m[2], m[3]))
        time.sleep(args.interval)
    rows = []
    if os.path.exists(log):
        with open(log) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    tok = [r["tok_s"] for r in rows[1:]]            # the first interval includes warm-up
    k = max(1, len(tok) // 5)
    start, end = (float(np.mean(tok[:k])), float(np.mean(tok[-k:]))) if tok else (0.0, 0.0)
    report = {
        "returncode": proc.returncode, "corpus_mib": args.size / 2**20,
        "train_minutes": samples[-1][0] / 60 if samples else 0.0, "steps": rows[-1]["step"]
        if rows else 0, "peak_rss_mib": hwm / 1024,
        "rss_start_mib": samples[0][1] / 1024 if samples else None,
        "rss_end_mib": samples[-1][1] / 1024 if samples else None,
        "rss_slope_mib_per_min": slope_mib_per_min(samples, 1),
        # the corpus is a memmap: pages of it that training has read count as (file-backed,
        # reclaimable) RSS and grow with the distance covered; a leak would be anonymous memory
        "anon_rss_slope_mib_per_min": slope_mib_per_min(samples, 3),
        "file_rss_end_mib": samples[-1][4] / 1024 if samples else None,
        "tok_s_start": start, "tok_s_end": end,
        "tok_s_change": (end - start) / start if start else float("nan"),
        "wall_minutes": (time.time() - t0) / 60,
    }
    print(json.dumps(report, indent=2))
    ok = (proc.returncode == 0 and report["anon_rss_slope_mib_per_min"] <= args.max_slope
          and report["tok_s_change"] >= -args.max_drop)
    print("soak: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
