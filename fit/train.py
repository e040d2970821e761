"""Fit the hash projection of SPEC §2 (and the ``hsoftmax`` shift table of §3) to data.

Pure NumPy. :func:`fit_hash` learns integer ``W`` (b, d) and ``theta`` (b,) from sample
query and key vectors (the w-bit integers the core will see), optionally a separate query
hash ``Wq``, ``thetaq`` and a ``shifts`` table, and :func:`save_weights` writes them as the
``.npz`` that ``CoreConfig.create(weights=...)`` loads.

Methods
-------
``random``
    The baseline: a seeded Gaussian projection quantized to the weight width, θ = 0
    (sign random projections, SimHash). Needs no data beyond the shape.
``itq``
    PCA + iterative quantization (Gong & Lazebnik, 2011) on the pooled queries and keys:
    the rotation of the principal components that makes the projections closest to ±1,
    extended to b > d with a (d, b) rotation with orthonormal rows; then the weights are
    quantized and each threshold is set at the median of its bit's projection, so every bit
    splits the data in half.
``ranking``
    Fits the codes to the attention ranking itself, as EcoFormer's kernelized hashing does
    (Liu et al., 2022), but directly: starting from ITQ, a query hash (Wq, θq) and a key hash
    (W, θ) and a temperature g are trained by Adam so that softmax(-g·H(q, k)/b) over the
    keys of a window matches softmax(logit_scale · q·k), the attention being approximated
    (cross-entropy, relaxed codes tanh(β·(Wx - θ)) with β annealed towards hard signs).
    The last third of the steps trains through the weight quantizer (straight-through
    estimator), so the integer weights are what was optimised. With sample values the loss
    adds ``out_weight`` (default 4) times the mean of 1 - cosine between the resulting and
    the exact attention outputs; ``noise`` adds Gaussian noise to the standardised inputs
    at each step (a regulariser, off by default).

Integer weights
---------------
A weight width of ``weight_bits`` gives integers in ±(2^(weight_bits-1) - 1): ternary
{-1, 0, +1} for 2 bits (the default, the hardware then adds or subtracts inputs, no
multiplier), -7..7 for 4 bits (each weight becomes at most two shifted additions, CSD).
Each row is scaled on its own (the sign of W·x - θ does not change when a row and its
threshold are scaled together), with the scale that best preserves the row's direction.
Thresholds are integers in the units of the integer projection.

The shift table
---------------
With ``logit_scale`` given, :func:`fit_hash` also fits the ``hsoftmax`` table s[h] (b+1,)
for the final codes: the non-decreasing integers in 0..smax that minimise the same
cross-entropy (weights 2^(s[b]-s[h]) of SPEC §3). The table replaces the ``--temperature``
formula, so one core per attention head gets its own temperature. With sample values
(``shift_fit="cosine"``, the default then) the table is refined by the same integer
moves for the mean cosine between its outputs and the exact outputs on the sample (the
metric of bench/FIDELITY.md). ``g`` (a float, not saved) is the matching temperature of
exp(-g·H/b) for the cross-entropy.

Quantizing float activations
----------------------------
The core takes w-bit integers. Scale each head's queries, keys and values on its own:
``s = max|x| / (2^(w-1) - 1)`` over a calibration set (per head and per tensor), then
``x_int = clip(round(x / s), -2^(w-1), 2^(w-1) - 1)``. The attention logit of the model,
q·k/sqrt(d), is then ``logit_scale · q_int·k_int`` with ``logit_scale = s_q·s_k/sqrt(d)``,
which :func:`fit_hash` needs to know the target ranking; outputs come back as integers in the
value scale: ``out_float ≈ s_v · out_int``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

__all__ = ["METHODS", "fit_hash", "fit_default", "save_weights", "quantize_weights",
           "quantization_loss", "fit_shifts", "shift_table", "window_data", "hash_bits", "attention_ce"]

METHODS = ("random", "itq", "ranking")
SPEC_KEYS = ("W", "theta", "Wq", "thetaq", "shifts")
MAX_SHIFT = 32
#: queries sampled for the shift-table fit (its statistics are per-query histograms)
SHIFT_FIT_QUERIES = 4096


# --------------------------------------------------------------------------- data

def window_data(queries, keys, seq_len=None):
    """Queries and keys as float arrays (windows, n, d).

    3-D input is taken as given windows. 2-D input of equal length is cut into consecutive
    windows of ``seq_len`` rows (queries attend to the keys of their own window, as in
    self-attention; a last short window is kept when it has at least 2 rows). 2-D input of
    different lengths is one window of all keys, each query attending to all of them. A
    list (or tuple) of 2-D arrays gives the windows explicitly, each with its own length
    (e.g. one sentence each): window i pairs queries[i] with keys[i]."""
    if isinstance(queries, (list, tuple)) and isinstance(keys, (list, tuple)):
        qs = [np.asarray(x) for x in queries]
        ks = [np.asarray(x) for x in keys]
        if len(qs) != len(ks) or not qs or \
                any(a.ndim != 2 or a.shape[1] != qs[0].shape[1] or len(a) == 0
                    for a in qs + ks):
            raise ValueError("lists of windows must pair as many non-empty (n_i, d) query "
                             "and key arrays of one d; got "
                             f"{[a.shape for a in qs]} and {[a.shape for a in ks]}")
        return [a.astype(np.float64) for a in qs], [a.astype(np.float64) for a in ks]
    q = np.asarray(queries)
    k = np.asarray(keys)
    if q.ndim not in (2, 3) or k.ndim not in (2, 3):
        raise ValueError(f"queries and keys must be 2-D (n, d) or 3-D (windows, n, d); got "
                         f"{q.shape} and {k.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys differ in d: {q.shape[-1]} != {k.shape[-1]}")
    if q.ndim == 3 or k.ndim == 3:
        if q.ndim != 3 or k.ndim != 3 or q.shape[0] != k.shape[0]:
            raise ValueError(f"3-D queries and keys must both be (windows, n, d) with the "
                             f"same number of windows; got {q.shape} and {k.shape}")
        return [q[i].astype(np.float64) for i in range(len(q))], \
            [k[i].astype(np.float64) for i in range(len(k))]
    if len(q) == len(k):
        L = len(q) if not seq_len else int(seq_len)
        qs, ks = [], []
        for s in range(0, len(q), L):
            if len(q[s:s + L]) >= 2 or s == 0:
                qs.append(q[s:s + L].astype(np.float64))
                ks.append(k[s:s + L].astype(np.float64))
        return qs, ks
    return [q.astype(np.float64)], [k.astype(np.float64)]


def _stack_windows(qs, ks):
    """Pad windows to one length: (nw, n, d) arrays and a key mask (nw, n)."""
    nq = max(len(x) for x in qs)
    nk = max(len(x) for x in ks)
    d = qs[0].shape[1]
    Q = np.zeros((len(qs), nq, d))
    K = np.zeros((len(ks), nk, d))
    qmask = np.zeros((len(qs), nq), dtype=bool)
    kmask = np.zeros((len(ks), nk), dtype=bool)
    for i, (q, k) in enumerate(zip(qs, ks)):
        Q[i, :len(q)] = q
        K[i, :len(k)] = k
        qmask[i, :len(q)] = True
        kmask[i, :len(k)] = True
    return Q, K, qmask, kmask


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


# --------------------------------------------------------------------------- quantization

def weight_limit(weight_bits):
    """Largest |entry| of a weight of ``weight_bits`` signed bits (symmetric range)."""
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer)) \
            or not 2 <= int(weight_bits) <= 16:
        raise ValueError(f"weight_bits = {weight_bits!r} is not allowed: an integer from 2 "
                         "to 16")
    return (1 << (int(weight_bits) - 1)) - 1


def quantize_weights(W, weight_bits):
    """Integer rows of ±(2^(weight_bits-1) - 1) that keep the direction of each float row.

    Returns (W_int, scale) with W ≈ scale[:, None] * W_int. For each row the scale is
    searched over a grid so that the cosine between the row and its rounded version is
    largest (ternary rows become the best subset of sign entries)."""
    W = np.asarray(W, dtype=np.float64)
    lim = weight_limit(weight_bits)
    amax = np.abs(W).max(axis=1)                                  # (b,)
    safe = np.where(amax > 0, amax, 1.0)
    # candidate scales amax/m, m from lim/2.5 to 2.5 lim (small m clips to the sign)
    grid = np.linspace(0.4, 2.5, 43) * lim                         # (G,)
    R = np.clip(np.rint(W[None] / (safe[None, :, None] / grid[:, None, None])), -lim, lim)
    dots = (R * W[None]).sum(axis=2)                               # (G, b)
    rr = (R * R).sum(axis=2)
    cosine = np.where(rr > 0, dots / np.sqrt(np.maximum(rr, 1e-300)), -np.inf)
    best = np.argmax(cosine, axis=0)                               # first best m per row
    Wi = R[best, np.arange(W.shape[0])].astype(np.int64)
    rrb = rr[best, np.arange(W.shape[0])]
    scale = np.where(rrb > 0, dots[best, np.arange(W.shape[0])] / np.maximum(rrb, 1), 1.0)
    dead = (amax == 0) | (rrb == 0)
    Wi[dead] = 0
    Wi[dead, 0] = 1                 # a zero row hashes nothing; any fixed bit will do
    scale[dead] = 1.0
    return Wi, scale


def _quantize_ste(W, weight_bits):
    """Forward value of the weight quantizer (scale * integer) for straight-through use."""
    Wi, s = quantize_weights(W, weight_bits)
    return Wi * s[:, None]


def quantization_loss(X, W, theta=None):
    """Mean over bits of min_a E[(sign(y) - a·y)^2] / E[sign(y)^2] = 1 - E|y|^2 / E[y^2] with
    y = X W^T - θ: how far the projections are from ±(a constant); 0 for perfectly binary
    projections. Scale-free, so float and integer projections compare. ITQ minimises it."""
    X = np.asarray(X, dtype=np.float64)
    y = X @ np.asarray(W, dtype=np.float64).T
    if theta is not None:
        y = y - np.asarray(theta, dtype=np.float64)
    m1 = np.abs(y).mean(axis=0)
    m2 = (y * y).mean(axis=0)
    ok = m2 > 0
    return float(np.mean(1 - m1[ok] ** 2 / m2[ok])) if ok.any() else 1.0


def hash_bits(X, W, theta):
    """Code bits (n, b) of SPEC §2: (W x >= θ), in exact integers."""
    y = np.asarray(X, dtype=np.int64) @ np.asarray(W, dtype=np.int64).T
    return (y >= np.asarray(theta, dtype=np.int64)).astype(np.uint8)


def _median_thresholds(X, W):
    """Integer θ at the median of each bit's integer projection (ties rounded up so that
    about half the samples give 1)."""
    y = np.asarray(X, dtype=np.int64) @ np.asarray(W, dtype=np.int64).T
    return np.ceil(np.median(y, axis=0)).astype(np.int64)


# --------------------------------------------------------------------------- methods

def _random_projection(b, d, rng):
    return rng.standard_normal((b, d))


def _pca(X):
    mu = X.mean(axis=0)
    C = np.cov((X - mu).T) if len(X) > 1 else np.eye(X.shape[1])
    C = np.atleast_2d(C)
    evals, evecs = np.linalg.eigh(C)
    order = np.argsort(evals)[::-1]
    return mu, evals[order], evecs[:, order]


def _random_orthonormal_rows(m, b, rng):
    """(m, b) with orthonormal rows (m <= b) or orthonormal columns (m > b)."""
    A = rng.standard_normal((max(m, b), max(m, b)))
    Qm, _ = np.linalg.qr(A)
    return Qm[:m, :b]


def itq_rotation(V, b, rng, iters=50):
    """ITQ: R (m, b) minimising ||sign(V R) - V R||_F, with orthonormal rows when b >= m
    (Procrustes step by SVD), from a random start."""
    m = V.shape[1]
    R = _random_orthonormal_rows(m, b, rng)
    for _ in range(iters):
        B = np.where(V @ R >= 0, 1.0, -1.0)
        U, _, Vt = np.linalg.svd(V.T @ B, full_matrices=False)
        R = U @ Vt                      # (m, min(m,b)) @ (min(m,b), b)
    return R


def _itq_float(X, b, rng, whiten=False):
    """Float ITQ projection W (b, d) and the data mean, in the units of X. ``whiten``
    scales the principal components to unit variance first (the ranking fit starts there,
    so that every direction starts with an equal share)."""
    mu, evals, P = _pca(X)
    d = X.shape[1]
    m = min(b, d)
    P = P[:, :m]
    if whiten:
        P = P / np.sqrt(np.maximum(evals[:m], 1e-12))
    V = (X - mu) @ P                  # principal components (not whitened in plain ITQ)
    R = itq_rotation(V, b, rng)
    W = (P @ R).T                     # y = V R = (X - mu) P R
    return W, mu


# --------------------------------------------------------------------------- ranking fit

def attention_ce(p_target, logits, kmask):
    """Mean cross-entropy of softmax(logits) against p_target over real keys."""
    lg = np.where(kmask[:, None, :], logits, -np.inf)
    lg = lg - lg.max(axis=-1, keepdims=True)
    logp = lg - np.log(np.exp(lg).sum(axis=-1, keepdims=True))
    logp = np.where(kmask[:, None, :], logp, 0.0)
    return float(-(p_target * logp).sum(axis=-1).mean())


class _Adam:
    def __init__(self, params, lr):
        self.p = params
        self.lr = lr
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads, lr=None):
        self.t += 1
        lr = self.lr if lr is None else lr
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9 ** self.t)
            vh = self.v[k] / (1 - 0.999 ** self.t)
            self.p[k] -= lr * mh / (np.sqrt(vh) + 1e-8)


def _ranking_fit(Q, K, qmask, kmask, P, b, Winit, tinit, weight_bits, iters, lr, log, rng,
                 batch=12, Vals=None, out_weight=0.0, hard_tail=False, noise=0.0):
    """Adam on the cross-entropy of softmax(g·(u_q·u_k)/(2b)) (= softmax(-g·H/b) up to a
    per-query constant) against P, with u = tanh(β (W x - θ)), inputs standardised."""
    params = {"Wq": Winit.copy(), "tq": tinit.copy(), "Wk": Winit.copy(),
              "tk": tinit.copy(), "lg": np.array(math.log(8.0))}
    opt = _Adam(params, lr)
    qat_from = int(iters * 2 / 3)
    Qa, Ka, qma, kma, Pa, Va = Q, K, qmask, kmask, P, Vals
    use_out = Vals is not None and out_weight > 0
    if use_out:
        Ra = P @ Vals                                # exact outputs (nw, nq, dv)
    for it in range(iters):
        if len(Qa) > batch:                          # a random mini-batch of windows
            sel = np.sort(rng.choice(len(Qa), batch, replace=False))
            Q, K, qmask, kmask, P = Qa[sel], Ka[sel], qma[sel], kma[sel], Pa[sel]
            if use_out:
                Vb, R = Va[sel], Ra[sel]
        elif use_out:
            Vb, R = Va, Ra
        if noise > 0:                                # Gaussian input noise: regularises
            Q = Q + noise * rng.standard_normal(Q.shape)
            K = K + noise * rng.standard_normal(K.shape)
        qm = qmask[..., None].astype(np.float64)
        nqueries = qmask.sum()
        neg = np.where(kmask[:, None, :], 0.0, -1e9)
        frac = it / max(1, iters - 1)
        beta = 1.0 * (8.0 ** frac)                  # 1 -> 8: relaxed -> nearly hard codes
        if it >= qat_from:
            Wq_f = _quantize_ste(params["Wq"], weight_bits)
            Wk_f = _quantize_ste(params["Wk"], weight_bits)
            # rescale so the straight-through forward keeps the float rows' norms
            Wq_f *= (np.linalg.norm(params["Wq"], axis=1) /
                     np.maximum(np.linalg.norm(Wq_f, axis=1), 1e-12))[:, None]
            Wk_f *= (np.linalg.norm(params["Wk"], axis=1) /
                     np.maximum(np.linalg.norm(Wk_f, axis=1), 1e-12))[:, None]
        else:
            Wq_f, Wk_f = params["Wq"], params["Wk"]
        aq = Q @ Wq_f.T - params["tq"]              # (nw, nq, b)
        ak = K @ Wk_f.T - params["tk"]              # (nw, nk, b)
        uq = np.tanh(beta * aq)
        uk = np.tanh(beta * ak)
        dq = beta * (1 - uq * uq)                    # d u / d a of the relaxation
        dk = beta * (1 - uk * uk)
        if hard_tail and it >= qat_from:             # straight-through: hard codes forward
            uq = np.where(aq >= 0, 1.0, -1.0)
            uk = np.where(ak >= 0, 1.0, -1.0)
        g = math.exp(float(params["lg"]))
        A = uq @ np.ascontiguousarray(uk.transpose(0, 2, 1))   # (nw, nq, nk) in [-b, b]
        logits = g * A / (2 * b) + neg
        Phat = _softmax(logits)
        dlog = (Phat - P) * qm / nqueries           # d CE / d logits
        if use_out:                                  # + out_weight * mean(1 - cos(o, r))
            O = Phat @ Vb
            no = np.linalg.norm(O, axis=-1, keepdims=True) + 1e-12
            nr = np.linalg.norm(R, axis=-1, keepdims=True) + 1e-12
            c = (O * R).sum(-1, keepdims=True) / (no * nr)
            dO = -(R / (no * nr) - c * O / no ** 2) * qm * (out_weight / nqueries)
            dP = dO @ np.ascontiguousarray(Vb.transpose(0, 2, 1))
            dlog = dlog + Phat * (dP - (dP * Phat).sum(-1, keepdims=True))
        dA = dlog * (g / (2 * b))
        dg = float((dlog * A).sum() / (2 * b)) * g  # d/d log g
        duq = dA @ uk
        duk = np.ascontiguousarray(dA.transpose(0, 2, 1)) @ uq
        daq = duq * dq
        dak = duk * dk
        grads = {"Wq": daq.reshape(-1, b).T @ Q.reshape(-1, Q.shape[2]),
                 "tq": -daq.sum(axis=(0, 1)),
                 "Wk": dak.reshape(-1, b).T @ K.reshape(-1, K.shape[2]),
                 "tk": -dak.sum(axis=(0, 1)),
                 "lg": np.array(dg)}
        opt.step(grads, lr * (0.5 * (1 + math.cos(math.pi * frac)) * 0.9 + 0.1))
        params["lg"] = np.clip(params["lg"], math.log(0.5), math.log(64.0))
        if log and (it % max(1, iters // 8) == 0 or it == iters - 1):
            ce = float(-(P * np.log(np.maximum(Phat, 1e-300))).sum(-1)[qmask].mean())
            log(f"  step {it:4d}: cross-entropy {ce:.4f}, g {g:.2f}, beta {beta:.2f}")
    return params


# --------------------------------------------------------------------------- shift table

def shift_table(g, b, smax=16):
    """The SPEC §3 formula: s[h] = min(smax, floor(g*h*log2(e)/b + 1/2))."""
    return np.array([min(smax, math.floor(g * h * math.log2(math.e) / b + 0.5))
                     for h in range(b + 1)], dtype=np.int64)


def _hist_stats(Hs, Ps, kmasks, b):
    """Per query: key counts cnt[h] and target mass M[h] at each distance h."""
    cnt, mass = [], []
    for H, P, km in zip(Hs, Ps, kmasks):
        nq = H.shape[0]
        Hm = np.where(km[None, :], H, b + 1)          # padded keys go to an overflow bin
        idx = Hm + (b + 2) * np.arange(nq)[:, None]
        c = np.bincount(idx.ravel(), minlength=nq * (b + 2)).reshape(nq, b + 2)[:, :b + 1]
        m = np.bincount(idx.ravel(), weights=P.ravel(),
                        minlength=nq * (b + 2)).reshape(nq, b + 2)[:, :b + 1]
        cnt.append(c)
        mass.append(m)
    return np.concatenate(cnt).astype(np.float64), np.concatenate(mass)


def _table_ce(s, cnt, mass):
    """Cross-entropy (nats) of weights 2^-s[h] given per-query counts and target mass."""
    ln2 = math.log(2)
    lw = -s * ln2                                     # log weight per bin
    mx = lw.max()
    logZ = np.log((cnt * np.exp(lw - mx)).sum(axis=1)) + mx
    return float(((mass * (-lw)).sum(axis=1) + logZ * mass.sum(axis=1)).mean())


def fit_shifts(cnt, mass, b, smax=MAX_SHIFT, g_hint=None):
    """Non-decreasing integer table s[0..b] in 0..smax (s[0] = 0) minimising the
    cross-entropy of weights 2^(s[b]-s[h]); returns (table, g) where g is the best
    temperature of float exp(-g·h/b) for the same statistics.

    Starts from the best table of the SPEC formula over a grid of g, then improves it by
    coordinate descent over runs of entries (each move keeps the table monotone)."""
    gs = np.exp(np.linspace(math.log(0.25), math.log(64.0), 97))
    # exact float exp(-g h / b): the reference temperature
    h = np.arange(b + 1)
    ce_exp = [_table_ce(g * h / b / math.log(2), cnt, mass) for g in gs]
    g_best = float(gs[int(np.argmin(ce_exp))])
    lo, hi = g_best / 1.25, g_best * 1.25
    for gg in np.linspace(lo, hi, 25):
        c = _table_ce(gg * h / b / math.log(2), cnt, mass)
        if c < min(ce_exp):
            ce_exp.append(c)
            g_best = float(gg)
    best_s, best = None, math.inf
    for g in gs:
        s = shift_table(g, b, smax).astype(np.float64)
        c = _table_ce(s, cnt, mass)
        if c < best:
            best, best_s = c, s
    s = best_s.copy()
    for _ in range(4):
        improved = False
        for i in range(1, b + 1):
            for delta in (-1, 1):
                t = s.copy()
                # move entry i and every later entry that would break monotonicity: a shift
                # of the tail (delta=+1 raises i..b, keeping s[b] <= smax)
                t[i:] += delta
                if t[i] < t[i - 1] or t.max() > smax or t.min() < 0:
                    t = s.copy()
                    t[i] += delta
                    if t[i] < t[i - 1] or (i < b and t[i] > t[i + 1]) or t[i] > smax:
                        continue
                c = _table_ce(t, cnt, mass)
                if c < best - 1e-12:
                    best, s, improved = c, t, True
        if not improved:
            break
    return s.astype(np.int64), g_best


def _value_stats(Hs, Vs, rows, b):
    """Per sampled query: the sum of the values of its keys at each distance h,
    (len(rows), b+1, dv); ``rows`` are (window, query) pairs."""
    dv = Vs[0].shape[1]
    out = np.zeros((len(rows), b + 1, dv))
    by_w = {}
    for i, (w, q) in enumerate(rows):
        by_w.setdefault(w, []).append((i, q))
    for w, lst in by_w.items():
        idx = np.array([i for i, _ in lst])
        qs = np.array([q for _, q in lst])
        H = Hs[w][qs]                                   # (m, nk)
        flat = (H + (b + 1) * np.arange(len(qs))[:, None]).ravel()
        V = Vs[w]
        for j in range(dv):
            out[idx, :, j] = np.bincount(flat, weights=np.broadcast_to(
                V[:, j], H.shape).ravel(), minlength=len(qs) * (b + 1)).reshape(-1, b + 1)
    return out


def _table_cos(s, vsum, ref):
    """Mean cosine between the outputs of weights 2^-s[h] (the normalisation does not
    change a cosine) and the reference outputs."""
    w = np.exp2(-(s - s.min()))
    O = np.einsum("h,qhd->qd", w, vsum)
    no = np.linalg.norm(O, axis=1)
    nr = np.linalg.norm(ref, axis=1)
    c = (O * ref).sum(axis=1) / np.maximum(no * nr, 1e-30)
    return float(np.where((no == 0) | (nr == 0), 0.0, c).mean())


def refine_shifts(s, vsum, ref, smax=MAX_SHIFT, rounds=4):
    """Integer coordinate ascent of the output cosine over non-decreasing tables in
    0..smax with s[0] = 0, from the table ``s`` (the same moves as :func:`fit_shifts`).

    A move changes the weights of one entry or of a tail of entries, so each candidate's
    outputs are the current outputs plus one (nq, d) correction (the tail sums are carried
    along the sweep): O(nq·d) per candidate instead of O(nq·b·d)."""
    s = np.asarray(s, dtype=np.float64).copy()
    b = len(s) - 1
    ref = np.asarray(ref, dtype=np.float64)
    nr = np.linalg.norm(ref, axis=1)

    def cos(O):
        no = np.linalg.norm(O, axis=1)
        c = (O * ref).sum(axis=1) / np.maximum(no * nr, 1e-30)
        return float(np.where((no == 0) | (nr == 0), 0.0, c).mean())

    for _ in range(rounds):
        w = np.exp2(-(s - s.min()))                  # s[0] is the minimum and never moves
        O = np.einsum("h,qhd->qd", w, vsum)
        best = cos(O)
        tail = O.copy()                              # sum over h >= i of w[h] vsum[:, h]
        improved = False
        for i in range(1, b + 1):
            tail -= w[i - 1] * vsum[:, i - 1]
            for delta in (-1, 1):
                f = 2.0 ** -delta
                if s[i] + delta >= s[i - 1] and s[b] + delta <= smax:    # move the tail
                    O_new, dw = O + (f - 1.0) * tail, None
                elif s[i] + delta >= s[i - 1] and s[i] + delta <= smax and \
                        (i == b or s[i] + delta <= s[i + 1]):           # move entry i
                    dw = w[i] * (f - 1.0)
                    O_new = O + dw * vsum[:, i]
                else:
                    continue
                c = cos(O_new)
                if c > best + 1e-12:
                    best, O, improved = c, O_new, True
                    if dw is None:
                        s[i:] += delta
                        w[i:] *= f
                        tail *= f
                    else:
                        s[i] += delta
                        w[i] += dw
                        tail += dw * vsum[:, i]
        if not improved:
            break
    return s.astype(np.int64)


# --------------------------------------------------------------------------- entry point

def fit_hash(queries, keys, b, method="ranking", weight_bits=2, seed=0, *, logit_scale=None,
             seq_len=None, asymmetric=None, shifts=None, smax=MAX_SHIFT, iters=300, lr=0.05,
             values=None, out_weight=4.0, noise=0.0, shift_fit=None, hard_tail=False,
             shift_queries=SHIFT_FIT_QUERIES, log=None):
    """Fit a hash of b bits to sample ``queries`` and ``keys`` (integer arrays (n, d) or
    (windows, n, d), or lists of (n_i, d) windows; see :func:`window_data`).

    ``method``: ``random``, ``itq`` or ``ranking`` (module docstring). ``weight_bits``: width
    of the integer weights (2 = ternary). ``seed`` makes the result deterministic.
    ``logit_scale``: the attention being approximated is softmax(logit_scale · q·k) over
    the keys of each window; needed by ``ranking`` and for the shift table.
    ``asymmetric``: a separate query hash (default: True for ``ranking`` only).
    ``shifts``: fit the ``hsoftmax`` table (default: when ``logit_scale`` is given).
    ``iters``, ``lr``: Adam steps and learning rate of the ranking fit. ``values``: sample
    values (the layout of ``keys``); with them the ranking fit also matches the attention
    outputs (weight ``out_weight`` of the term 1 - cosine against the cross-entropy) and the
    shift table is refined for the output cosine. ``noise``: standard deviation of the
    Gaussian noise added to the standardised queries and keys at each ranking step (a
    regulariser against a small sample: 0.3 helps on MiniLM, see bench/FIDELITY.md, but it
    blurs fine distinctions when a head's keys are tightly clustered; default 0, off). ``shift_fit``: ``"cosine"`` (the default with
    ``values``) refines the cross-entropy table for the mean output cosine on the sample,
    ``"ce"`` keeps the cross-entropy table. ``shift_queries``: the shift table is fitted on a
    seeded sample of at most this many queries (default 4096; more queries cost time but
    over-fit the table less: the bench uses 16384).

    Returns a dict of int64 arrays ``W``, ``theta`` and, where fitted, ``Wq``, ``thetaq``,
    ``shifts``; plus the float ``g`` (0-d, the temperature of exp(-g·H/b) that best fits,
    when ``logit_scale`` is given) which :func:`save_weights` does not write.
    """
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is not allowed: one of {', '.join(METHODS)}")
    lim = weight_limit(weight_bits)
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= 1024:
        raise ValueError(f"b = {b!r} is not allowed: an integer from 1 to 1024")
    for name, arr in (("queries", queries), ("keys", keys)):
        for a in (arr if isinstance(arr, (list, tuple)) else [arr]):
            a = np.asarray(a)
            if a.dtype.kind not in "iu":
                raise ValueError(f"{name} must be integers (quantized activations); got "
                                 f"dtype {a.dtype}")
            if a.size == 0:
                raise ValueError(f"{name} is empty")
    if logit_scale is not None and not (math.isfinite(logit_scale) and logit_scale > 0):
        raise ValueError(f"logit_scale = {logit_scale!r} is not allowed: a positive number")
    if method == "ranking" and logit_scale is None:
        raise ValueError("the ranking method needs logit_scale: the attention logit is "
                         "logit_scale · q·k (s_q·s_k/sqrt(d) for per-tensor scales s)")
    if asymmetric is None:
        asymmetric = method == "ranking"
    if shifts is None:
        shifts = logit_scale is not None
    if shifts and logit_scale is None:
        raise ValueError("fitting the shift table needs logit_scale")
    smax = int(smax)
    if not 0 <= smax <= MAX_SHIFT:
        raise ValueError(f"smax = {smax} is not allowed: an integer from 0 to {MAX_SHIFT}")
    for name, x in (("out_weight", out_weight), ("noise", noise), ("lr", lr)):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) \
                or not math.isfinite(x) or x < 0 or (name == "lr" and x == 0):
            raise ValueError(f"{name} = {x!r} is not allowed: a finite number "
                             f"{'> 0' if name == 'lr' else '>= 0'}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters = {iters!r} is not allowed: a positive integer")
    if isinstance(shift_queries, bool) or not isinstance(shift_queries, (int, np.integer)) \
            or shift_queries < 1:
        raise ValueError(f"shift_queries = {shift_queries!r} is not allowed: a positive "
                         "integer")
    if shift_fit is None:
        shift_fit = "cosine" if values is not None else "ce"
    if shift_fit not in ("ce", "cosine"):
        raise ValueError(f"shift_fit = {shift_fit!r} is not allowed: 'ce' or 'cosine'")
    if shift_fit == "cosine" and values is None:
        raise ValueError("shift_fit = 'cosine' needs values (the outputs it matches)")
    rng = np.random.default_rng(seed)
    qs, ks = window_data(queries, keys, seq_len)
    d = qs[0].shape[1]
    Xq = np.concatenate(qs)
    Xk = np.concatenate(ks)
    X = np.concatenate([Xq, Xk])
    out = {}

    if method == "random":
        Wi, _ = quantize_weights(_random_projection(b, d, rng), weight_bits)
        out["W"], out["theta"] = Wi, np.zeros(b, dtype=np.int64)
        if asymmetric:
            out["Wq"], out["thetaq"] = Wi.copy(), np.zeros(b, dtype=np.int64)
    else:
        sigma = float(X.std()) or 1.0
        Wf, mu = _itq_float(X / sigma, b, rng, whiten=method == "ranking")
        if method == "itq":
            Wi, _ = quantize_weights(Wf, weight_bits)
            if asymmetric:
                out["W"], out["theta"] = Wi, _median_thresholds(Xk, Wi)
                out["Wq"], out["thetaq"] = Wi.copy(), _median_thresholds(Xq, Wi)
            else:
                out["W"], out["theta"] = Wi, _median_thresholds(X, Wi)
        else:
            Q, K, qmask, kmask = _stack_windows(qs, ks)
            S = np.einsum("wqd,wkd->wqk", Q, K) * logit_scale
            P = _softmax(np.where(kmask[:, None, :], S, -np.inf))
            P = np.where(qmask[..., None], P, 0.0)
            # start: ITQ with unit-variance bits
            Wn = Wf / np.maximum(np.linalg.norm(Wf, axis=1, keepdims=True), 1e-12)
            y = (X / sigma) @ Wn.T
            t0 = np.median(y, axis=0)
            Wn = Wn / y.std(axis=0)[:, None]
            t0 = t0 / y.std(axis=0)
            Vals = None
            if values is not None:
                _, vs = window_data(values, values, seq_len)
                Vals, _, _, _ = _stack_windows(vs, vs)
            params = _ranking_fit(Q / sigma, K / sigma, qmask, kmask, P, b, Wn, t0,
                                  weight_bits, iters, lr, log, rng, Vals=Vals,
                                  out_weight=out_weight, hard_tail=hard_tail,
                                  noise=float(noise))
            for wkey, tkey, pw, pt in (("W", "theta", "Wk", "tk"),
                                       ("Wq", "thetaq", "Wq", "tq")):
                if wkey == "Wq" and not asymmetric:
                    continue
                Wi, scale = quantize_weights(params[pw], weight_bits)
                # θ in integer-projection units: (W/σ)·x ≈ scale/σ · W_int·x >= θ_f
                out[wkey] = Wi
                out[tkey] = np.ceil(params[pt] * sigma / scale - 1e-9).astype(np.int64)
            if not asymmetric:
                pass
    assert np.abs(out["W"]).max() <= lim

    if shifts:
        Ws, ts = out["W"], out["theta"]
        Wq, tq = out.get("Wq", Ws), out.get("thetaq", ts)
        Hs, Ps, kms = [], [], []
        vws = window_data(values, values, seq_len)[1] if shift_fit == "cosine" else None
        for q, k in zip(qs, ks):
            cq = hash_bits(q.astype(np.int64), Wq, tq)
            ck = hash_bits(k.astype(np.int64), Ws, ts)
            H = (cq[:, None, :] != ck[None, :, :]).sum(axis=2)
            Hs.append(H)
            Ps.append(_softmax(q @ k.T * logit_scale))
            kms.append(np.ones(len(k), dtype=bool))
        cnt, mass = _hist_stats(Hs, Ps, kms, b)
        pick = np.arange(len(cnt))
        if len(cnt) > shift_queries:                  # a seeded sample keeps the fit quick
            pick = np.sort(rng.choice(len(cnt), int(shift_queries), replace=False))
            cnt, mass = cnt[pick], mass[pick]
        table, g = fit_shifts(cnt, mass, b, smax)
        if vws is not None:
            starts = np.cumsum([0] + [len(H) for H in Hs])
            wi = np.searchsorted(starts, pick, side="right") - 1
            rows = list(zip(wi.tolist(), (pick - starts[wi]).tolist()))
            vsum = _value_stats(Hs, vws, rows, b)
            ref = np.stack([Ps[w][q] @ vws[w] for w, q in rows])
            table = refine_shifts(table, vsum, ref, smax)
        out["shifts"] = table
        out["g"] = np.array(g)
    return out


def fit_default(name):
    """Default of keyword ``name`` of :func:`fit_hash` (for command-line defaults and
    reports, so that the value is written once)."""
    return inspect.signature(fit_hash).parameters[name].default


def save_weights(path, arrays):
    """Write the SPEC §2 arrays of ``arrays`` (W, theta and, where present, Wq, thetaq,
    shifts) as int64 to an uncompressed ``.npz`` (no pickle)."""
    keep = {k: np.asarray(arrays[k], dtype=np.int64) for k in SPEC_KEYS if k in arrays}
    for k in ("W", "theta"):
        if k not in keep:
            raise ValueError(f"the weights need an array {k!r}")
    with open(path, "wb") as f:
        np.savez(f, **keep)
    return path
