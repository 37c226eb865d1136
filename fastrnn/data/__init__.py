"""Corpus -> token ids: vocabulary, the on-disk id cache, the default corpus and batching.

The path of a text through the trainer::

    text file --load_corpus--> Corpus.ids (N,) uint8/uint16 memmap
              --StreamBatcher--> x, y (T, B) int64 windows, y the next token of x

``load_corpus(path, mode)`` never holds the corpus as one Python string. It reads the file in
blocks of a few MiB, twice:

1. *scan*: hash the bytes (blake2b), check them (UTF-8, no NUL bytes in char mode), count the
   tokens and mark which symbols occur (a boolean table indexed by byte or code point);
2. *encode*: map every symbol through a dense lookup table (symbol -> id) and append the ids to
   a ``.npy`` file.

The result is cached beside the corpus, in ``<corpus>.fastrnn-cache/<mode>/``::

    ids.npy      the token ids, uint8 when the vocabulary has <= 256 symbols, else uint16
    vocab.json   Vocab.to_json()
    meta.json    corpus size, mtime_ns, ctime_ns, inode and blake2b hash, mode, token count,
                 vocabulary size

and reused while the corpus is unchanged: same size, mtime, inode change time and inode, or
same size and same hash (a ``touch`` or a copy does not force a re-encode; a file rewritten
with its mtime set back by ``os.utime`` does, as ``utime`` sets the change time). A cache
whose ids fall outside its vocabulary is reported as damaged, with the command to rebuild
it. If that folder cannot be written the cache goes to ``<cache root>/<hash of the corpus's
absolute path>/<mode>/``; ``cache_dir=`` puts it exactly in ``<cache_dir>/<mode>/``. The cache
root is ``$FASTRNN_CACHE`` if set, else ``$XDG_CACHE_HOME/fastrnn``, else ``~/.cache/fastrnn``.

Every file is written under a temporary name and moved into place with ``os.replace``
(``fastrnn._files``), and
``meta.json`` (the file that makes a cache valid) is removed before and written after the
others, so an encode killed at any point leaves no cache that looks valid.

Token ids follow the symbol order: in char mode the vocabulary is the sorted list of the
distinct characters (code points) of the corpus, in byte mode the sorted list of the distinct
byte values, and the id of a symbol is its index in that list.

The package: ``vocab`` (``Vocab``), ``cache`` (``load_corpus``, ``Corpus``, ``cache_root``),
``default`` (``default_corpus_path``), ``batching`` (``StreamBatcher``).
"""

from .batching import StreamBatcher
from .cache import Corpus, cache_root, load_corpus
from .default import default_corpus_path
from .vocab import MAX_VOCAB, MODES, Vocab

__all__ = ["Vocab", "Corpus", "load_corpus", "cache_root", "default_corpus_path",
           "StreamBatcher", "MODES", "MAX_VOCAB"]
