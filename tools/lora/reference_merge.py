#!/usr/bin/env python3
"""Independent numpy reference for the merge methods (shared/specs/tada.md §2.5-2.6, §3.2-3.6).

Writes tests/fixtures/lora/reference_merge.json: two small random LoRA pairs (task T, domain D)
and the dense merged update dM for linear, task_arithmetic, ties (mergekit and PEFT semantics),
dare_ties at density 1 (deterministic) and TaDA with fixed gates. Written from the spec text
with numpy's full SVD (not the QR route the C++ code uses), so it checks the C++ independently.
adapters/merge/merge_test.cpp compares against it.
"""
import json, os
import numpy as np

rng = np.random.default_rng(7)
d_out, d_in, r = 6, 5, 2
A_T, B_T = rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r))
A_D, B_D = rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r))
# Make one direction of D oppose T so TaDA's conflict rule fires.
B_D[:, 0] = -B_T[:, 0] * 0.8
A_D[0] = A_T[0]
s_T, s_D = 2.0, 1.5
dT, dD = s_T * B_T @ A_T, s_D * B_D @ A_D
out = {}


def trim(t, density):
    k = int(np.floor(density * t.size))
    flat = np.abs(t).ravel()
    order = sorted(range(t.size), key=lambda i: (-flat[i], i))[:k]
    m = np.zeros(t.size, bool); m[order] = True
    return np.where(m.reshape(t.shape), t, 0.0)


def disjoint(tw, w, sign_src, div):
    elect = sum(sign_src) if sign_src is not None else sum(tw)
    gamma = np.where(elect >= 0, 1, -1)
    num = np.zeros_like(tw[0]); den = np.zeros_like(tw[0])
    for t, wi in zip(tw, w):
        m = np.sign(t) == gamma
        num += t * m
        den += (1.0 if div == "count" else wi) * m
    if div is None: return num
    den[den == 0] = 1
    return num / den


w = [1.0, 2.0]
out["linear"] = (w[0] * dT + w[1] * dD) / sum(w)
out["task_arithmetic_l0.5"] = 0.5 * (w[0] * dT + w[1] * dD)
tT, tD = trim(dT, 0.4), trim(dD, 0.4)
out["ties_d0.4"] = disjoint([w[0] * tT, w[1] * tD], w, None, "weights")
out["ties_peft_d0.4"] = disjoint([w[0] * tT, w[1] * tD], w, [tT, tD], "count")
out["dare_ties_d1"] = disjoint([w[0] * dT, w[1] * dD], w, None, None)

# TaDA with gates g_T = 0.7, g_D = 0.3, kappa = 0.2, lambda = 1.5, no truncation.
gT, gD, kappa, lam = 0.7, 0.3, 0.2, 1.5
UT, ST, VTt = np.linalg.svd(dT); UT, ST, VT = UT[:, :r], ST[:r], VTt[:r].T
UD, SD, VDt = np.linalg.svd(dD); UD, SD, VD = UD[:, :r], SD[:r], VDt[:r].T
a, b = gT * ST, gD * SD
C = (UT.T @ UD) * (VT.T @ VD)
dropT, dropD = np.zeros(r, bool), np.zeros(r, bool)
for i in range(r):
    for j in range(r):
        if C[i, j] <= -kappa:
            if a[i] < b[j] or (a[i] == b[j] and gT <= gD): dropT[i] = True
            else: dropD[j] = True
M = sum(a[i] * np.outer(UT[:, i], VT[:, i]) for i in range(r) if not dropT[i]) + \
    sum(b[j] * np.outer(UD[:, j], VD[:, j]) for j in range(r) if not dropD[j])
out["tada_g0.7_k0.2_l1.5"] = lam * M
out["tada_dropped"] = int(dropT.sum() + dropD.sum())

fix = {"d_out": d_out, "d_in": d_in, "rank": r, "s_T": s_T, "s_D": s_D, "A_T": A_T.tolist(), "B_T": B_T.tolist(),
       "A_D": A_D.tolist(), "B_D": B_D.tolist(),
       "expected": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}}
path = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/lora/reference_merge.json")
json.dump(fix, open(path, "w"), indent=1)
print("wrote", os.path.normpath(path), "tada dropped", out["tada_dropped"])
