"""Encoding a 100 MB generated UTF-8 corpus into token ids (``fastrnn.data.load_corpus`` with
an empty cache): peak memory, and the time as a ``track_`` (each measurement needs a fresh
cache, so asv's repeated timing loop does not fit)."""

import os
import shutil
import tempfile

from .common import TIMER, write_corpus


class EncodeCorpus:
    timeout = 300
    N_BYTES = 100 * 2**20

    def setup_cache(self):
        path = os.path.abspath("corpus_100mb.txt")
        write_corpus(path, self.N_BYTES, seed=0)
        return path

    def setup(self, path):
        self.cache_dir = tempfile.mkdtemp(prefix="fastrnn-asv-cache-")

    def teardown(self, path):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def _encode(self, path):
        from fastrnn.data import load_corpus

        corpus = load_corpus(path, mode="char", cache_dir=self.cache_dir, progress=False)
        if len(corpus) == 0:
            raise RuntimeError("empty corpus")
        return corpus

    def peakmem_load_corpus_100mb(self, path):
        self._encode(path)

    def track_load_corpus_100mb_seconds(self, path):
        t0 = TIMER()
        self._encode(path)
        return TIMER() - t0

    track_load_corpus_100mb_seconds.unit = "s"
