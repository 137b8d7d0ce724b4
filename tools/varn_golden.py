#!/usr/bin/env python3
"""Independent FP64 reference of KVarN's VarN + RTN (spec kvarn.md §2.4-2.6), written from
the spec text, not from the C++ code. Writes src/kv/testdata/varn_golden.json: small random
tiles (one with outlier rows/columns) with the scales, codes and RTN parameters that
src/kv/varn_test.cpp must reproduce.
Usage: .venv/bin/python tools/varn_golden.py [OUT]"""
import json
import sys

import numpy as np


def sd(v, axis):
    # unbiased (n-1), two-pass
    return np.std(v, axis=axis, ddof=1)


def imb(y):
    sdc = sd(y, 0)
    sdr = sd(y, 1)
    return sdc.max() / max(sdc.min(), 1e-8) + sdr.max() / max(sdr.min(), 1e-8)


def varn(x, iters):
    r, c = x.shape
    lc = np.zeros(c)
    lr = np.zeros(r)
    best = imb(x)
    sc = np.ones(c)
    sr = np.ones(r)
    for _ in range(iters):
        y = x * np.exp(-lc[None, :] - lr[:, None])
        lc = np.clip(lc + np.log(np.clip(sd(y, 0), 1e-3, 1e3)), -0.3, 10.0)
        y = x * np.exp(-lc[None, :] - lr[:, None])
        lr = np.clip(lr + np.log(np.clip(sd(y, 1), 1e-3, 1e3)), -0.3, 10.0)
        y = x * np.exp(-lc[None, :] - lr[:, None])
        v = imb(y)
        if v <= best:
            best, sc, sr = v, np.exp(lc), np.exp(lr)
    return sc, sr, best


def rtn(b, bits):
    qmax = 2**bits - 1
    lo = b.min(axis=1)
    hi = b.max(axis=1)
    d = np.maximum((hi - lo) / qmax, 1e-10)
    codes = np.clip(np.round((b - lo[:, None]) / d[:, None]), 0, qmax)  # half to even
    return codes.astype(int), lo, d


def case(name, x, iters, bits):
    x = x.astype(np.float32).astype(np.float64)
    sc, sr, best = varn(x, iters)
    b = x / (sc[None, :] * sr[:, None])
    codes, lo, d = rtn(b, bits)
    return {"name": name, "rows": x.shape[0], "cols": x.shape[1], "iterations": iters, "bits": bits,
            "x": x.ravel().tolist(), "sc": sc.tolist(), "sr": sr.tolist(), "imbalance": best,
            "codes": codes.ravel().tolist(), "lo": lo.tolist(), "d": d.tolist()}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "src/kv/testdata/varn_golden.json"
    rng = np.random.default_rng(20260603)
    plain = rng.standard_normal((16, 32))
    outl = rng.standard_normal((16, 32)) * 0.5
    outl[3, :] *= 25.0   # an outlier channel
    outl[:, 7] *= 8.0    # a loud token
    wide = rng.standard_normal((8, 64)) * np.exp(rng.standard_normal((1, 64)))
    cases = [case("plain", plain, 16, 2), case("outliers", outl, 16, 2), case("wide", wide, 8, 4)]
    with open(out, "w") as f:
        json.dump(cases, f)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
