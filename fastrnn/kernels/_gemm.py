"""The per-step product: a register-blocked micro-GEMM over weights packed once per call.

``C[r, :] = A[r, :] @ W`` for up to MR_MAX = 6 rows r (batch rows one thread owns at one time
step), with W (K, N) packed into panels of NR columns contiguous in K: ``Wp[p, k, j] =
W[k, p*NR + j]`` (zero beyond N). NR is 4 vectors on a CPU with AVX-512 (32 registers), 2 on
AVX2 (16 registers): 64 or 16 float32 columns, 32 or 8 float64. The kernel for MR rows keeps
the (MR, NR) accumulator tile in vector registers for the whole K loop: per k it loads the
NR/L vectors of ``Wp[p, k]``, broadcasts MR values of A and issues MR*NR/L fused
multiply-adds, then stores the tile with vector stores.

The kernel is one intrinsic (``_tile``) that emits those vector operations in LLVM IR.
Written as numba loops over a tile (stack- or heap-allocated), the same product depended on
LLVM's loop and SLP vectorisers and came out 5-20x slower on this AVX2 machine (scalar FMAs,
or tiles spilled at every k); see ../shared/NOTES.md, "The per-step engine".

With ``NUMBA_DISABLE_JIT=1`` the intrinsic cannot run: ``gemm_rows`` then is a NumPy product.
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import DISABLED, njit, parallel_or_serial, prange

def _host_vector_bytes():
    """64 on a CPU with AVX-512 (32 zmm registers), else 32 (AVX2: 16 ymm registers).
    ``FASTRNN_VECTOR_BYTES=32|64`` overrides it, for testing the other layout (LLVM splits
    wider vectors); use it with a NUMBA_CACHE_DIR of its own, since numba's cache keys on
    the CPU, not on this choice."""
    import os

    import llvmlite.binding as llvm

    forced = os.environ.get("FASTRNN_VECTOR_BYTES")
    if forced in ("32", "64"):
        return int(forced)
    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:
        return 32
    return 64 if features.get("avx512f", False) else 32


VECTOR_BYTES = _host_vector_bytes()
# A tile is MR rows x NR_VECTORS vectors of accumulators, plus NR_VECTORS weight vectors and one
# broadcast register: AVX-512 6 x 4 (+4 +1 = 29 of 32 zmm), AVX2 6 x 2 (+2 +1 = 15 of 16 ymm).
NR_VECTORS = 4 if VECTOR_BYTES == 64 else 2
MR_MAX = 6


def panel_width(dtype):
    """NR: columns of one packed panel (and of one accumulator tile) for dtype."""
    return NR_VECTORS * VECTOR_BYTES // np.dtype(dtype).itemsize


# ---------------------------------------------------------------- intrinsics

@intrinsic
def _tile(typingctx, a, a_off, lda, w, w_off, K, c, c_off, ldc, mr, nv, npan):
    """c[c_off + r*ldc + q*NR + j] = sum_k a[a_off + r*lda + k] * w[w_off + q*K*NR + k*NR + j]
    for r < mr, q < npan panels, j < NR = nv vectors (all arrays C-contiguous, offsets in
    elements). The mr*npan*nv accumulator vectors live in registers for the whole k loop.
    Several panels at once give one or two rows enough independent accumulators to hide the
    FMA latency (one row and one panel: 2 chains on AVX2, a quarter of the FMA throughput)."""
    if not all(isinstance(v, types.IntegerLiteral) for v in (mr, nv, npan)):
        return None
    MR, NV, NP = mr.literal_value, nv.literal_value, npan.literal_value

    def codegen(context, builder, signature, args):
        av, a_offv, ldav, wv, w_offv, Kv, cv, c_offv, ldcv, _, _, _ = args
        sa, _, _, sw, _, _, sc = signature.args[:7]
        a_ptr = context.make_array(sa)(context, builder, av).data
        w_ptr = context.make_array(sw)(context, builder, wv).data
        c_ptr = context.make_array(sc)(context, builder, cv).data
        ety = context.get_data_type(sa.dtype)
        L = VECTOR_BYTES // (sa.dtype.bitwidth // 8)
        vty = ir.VectorType(ety, L)
        vptr = vty.as_pointer()
        i64 = ir.IntType(64)
        zero = ir.Constant(vty, [ir.Constant(ety, 0.0)] * L)
        NW = NP * NV                                   # accumulator vectors per row
        accs = [[cgutils.alloca_once(builder, vty) for _ in range(NW)] for _ in range(MR)]
        for row in accs:
            for acc in row:
                builder.store(zero, acc)
        nr = ir.Constant(i64, NV * L)
        pstride = builder.mul(Kv, nr)                  # elements from one panel to the next
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]),
            f"llvm.fma.v{L}f{sa.dtype.bitwidth}")
        bmask = ir.Constant(ir.VectorType(ir.IntType(32), L), [0] * L)
        with cgutils.for_range(builder, Kv) as loop:
            k = loop.index
            wk = builder.gep(w_ptr, [builder.add(w_offv, builder.mul(k, nr))])
            wvec = []
            for q in range(NP):
                wq = builder.gep(wk, [builder.mul(ir.Constant(i64, q), pstride)]) if q else wk
                wvec += [builder.load(builder.bitcast(builder.gep(wq, [ir.Constant(i64, v * L)]),
                                                      vptr), align=1) for v in range(NV)]
            for r in range(MR):
                aidx = builder.add(builder.add(a_offv, builder.mul(ir.Constant(i64, r), ldav)), k)
                x = builder.load(builder.gep(a_ptr, [aidx]))
                xb = builder.shuffle_vector(builder.insert_element(ir.Constant(vty, None), x,
                                                                   ir.Constant(i64, 0)),
                                            ir.Constant(vty, None), bmask)
                for v in range(NW):
                    builder.store(builder.call(fma, [xb, wvec[v], builder.load(accs[r][v])]),
                                  accs[r][v])
        for r in range(MR):
            crow = builder.add(c_offv, builder.mul(ir.Constant(i64, r), ldcv))
            for v in range(NW):
                dst = builder.gep(c_ptr, [builder.add(crow, ir.Constant(i64, v * L))])
                builder.store(builder.load(accs[r][v]), builder.bitcast(dst, vptr), align=1)
        return context.get_dummy_value()

    return types.none(*[a, a_off, lda, w, w_off, K, c, c_off, ldc, mr, nv, npan]), codegen


def pack_panels(w):
    """W (K, N) -> Wp (P, K, NR) with ``Wp[p, k, j] = W[k, p*NR + j]``, zero beyond N."""
    K, N = w.shape
    NR = panel_width(w.dtype)
    P = -(-N // NR)
    wp = np.zeros((P, K, NR), w.dtype)
    _pack_into(w, wp)
    return wp


@njit
def _pack_into(w, wp):
    """wp[p, k, j] = w[k, p*NR + j] for the columns of w (one compiled pass; wp zeroed)."""
    K, N = w.shape
    NR = wp.shape[2]
    for p in range(wp.shape[0]):
        lo = p * NR
        n = min(NR, N - lo)
        dst = wp[p]
        for k in range(K):
            for j in range(n):
                dst[k, j] = w[k, lo + j]


PANEL_BYTES = NR_VECTORS * VECTOR_BYTES       # one panel row: NR elements of any dtype


@njit
def pack_panels_T(a):
    """a (N, K) -> Wp = pack_panels(a.T) (P, K, NR), compiled: ``gemm_rows(x, .., Wp, c)`` then
    gives ``x @ a.T``, and ``gemm_packed(b, Wp, out)`` gives ``b @ a.T`` (for a few rows a,
    e.g. the states of a short sequence, ``out`` is the transposed ``a @ b.T`` of a product
    with b in its own row-major layout). Reads a row by row."""
    N, K = a.shape
    NR = PANEL_BYTES // a.itemsize
    wp = np.zeros(((N + NR - 1) // NR, K, NR), a.dtype)
    for p in range(wp.shape[0]):
        lo = p * NR
        dst = wp[p]
        for j in range(min(NR, N - lo)):
            src = a[lo + j]
            for k in range(K):
                dst[k, j] = src[k]
    return wp


def unpack_panels(wp, N):
    """The inverse of ``pack_panels``: Wp (P, K, NR) -> W (K, N)."""
    P, K, NR = wp.shape
    return np.ascontiguousarray(wp.transpose(1, 0, 2).reshape(K, P * NR)[:, :N])


NV = NR_VECTORS
# Panels per tile for one row and for two rows: 4 * NV and 4 * NV accumulator vectors (8 on
# AVX2, two FMA pipes of 4 cycles' latency), within the register file with their weights.
PANELS_1, PANELS_2 = 4, 2


@njit
def gemm_rows(a, r0, m, wp, c, flip=False):
    """c[0:m, 0:P*NR] = a[r0:r0+m] @ W for Wp = pack_panels(W) (a, c C-contiguous; 1 <= m <=
    MR_MAX; c's columns beyond W's N get zeros). ``flip``: the panels in reverse order (the
    same bits). Callers that run over one Wp again and again alternate it: a Wp about the size
    of the cache then starts each pass on the panels the last pass ended with, still cached,
    where the same order every time would find each panel evicted just before its turn."""
    K = a.shape[1]
    ldc = c.shape[1]
    NR = wp.shape[2]
    a_off = r0 * K
    P = wp.shape[0]
    # one or two rows: several panels per tile (groups of PANELS_1, PANELS_2), so that enough
    # independent accumulators hide the FMA latency; then the remaining panels one by one
    group = PANELS_1 if m == 1 else (PANELS_2 if m == 2 else 1)
    G = P // group if group > 1 else 0                     # the groups of several panels
    units = G + P - G * group
    for u in range(units):
        v = units - 1 - u if flip else u
        if v < G:
            w_off = v * group * K * NR
            c_off = v * group * NR
            if m == 1:
                _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 1, NV, PANELS_1)
            else:
                _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 2, NV, PANELS_2)
            continue
        p = G * group + v - G
        w_off = p * K * NR
        c_off = p * NR
        if m == 6:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 6, NV, 1)
        elif m == 5:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 5, NV, 1)
        elif m == 4:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 4, NV, 1)
        elif m == 3:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 3, NV, 1)
        elif m == 2:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 2, NV, 1)
        else:
            _tile(a, a_off, K, wp, w_off, K, c, c_off, ldc, 1, NV, 1)


if DISABLED:       # the intrinsic cannot run as Python: the same product in NumPy
    def gemm_rows(a, r0, m, wp, c, flip=False):  # noqa: F811
        P, K, NR = wp.shape
        c[:m, :P * NR] = a[r0:r0 + m] @ wp.transpose(1, 0, 2).reshape(K, P * NR)


@njit
def gemm_packed(a, wp, out):
    """out (M, N) = a (M, K) @ W for Wp = pack_panels(W), serially, MR_MAX rows at a time
    (a C-contiguous): the products around a small problem's time loop, where one thread's
    register-blocked product beats a BLAS call and its setup."""
    M = a.shape[0]
    N = out.shape[1]
    tile = np.empty((MR_MAX, wp.shape[0] * wp.shape[2]), a.dtype)
    nb = (M + MR_MAX - 1) // MR_MAX
    for i in range(nb):
        r0 = i * M // nb
        m = (i + 1) * M // nb - r0
        gemm_rows(a, r0, m, wp, tile, i % 2 == 1)
        for r in range(m):
            o = out[r0 + r]
            t = tile[r]
            for n in range(N):
                o[n] = t[n]


@parallel_or_serial(lambda *args: args[-1] == 1)
def gemm_packed_cols(a, wp, out, threads):
    """out (M, N) = a (M, K) @ W for Wp = pack_panels(W) as ``gemm_packed``, with the panels
    (blocks of columns) split over ``threads`` threads: each thread keeps its share of Wp in
    its own cache for all rows of a. Every element is summed as in ``gemm_packed`` (the same
    bits for any number of threads); ``threads`` = 1 runs serially, with no parallel
    region."""
    M = a.shape[0]
    N = out.shape[1]
    P, _, NR = wp.shape
    nt = min(threads, P)
    nb = (M + MR_MAX - 1) // MR_MAX
    for j in prange(nt):
        p0 = j * P // nt
        p1 = (j + 1) * P // nt
        w = wp[p0:p1]                                      # this thread's panels
        c0 = p0 * NR
        c1 = min(p1 * NR, N)
        tile = np.empty((MR_MAX, (p1 - p0) * NR), a.dtype)
        for i in range(nb):
            r0 = i * M // nb
            m = (i + 1) * M // nb - r0
            gemm_rows(a, r0, m, w, tile, i % 2 == 1)
            for r in range(m):
                o = out[r0 + r, c0:c1]
                t = tile[r]
                for n in range(c1 - c0):
                    o[n] = t[n]
