#!/usr/bin/env python3
"""Writes the block-format fixtures that src/tensor/dtype_test.cpp checks against.

The oracle is the PyPI `gguf` package (gguf.quants): its numpy (de)quantizers are
ports of ggml-quants.c written to be bit-exact with ggml. For every type we store
  tests/fixtures/quant/<TYPE>.bin   raw blocks, n_rows rows of row_len values
  tests/fixtures/quant/<TYPE>.f32   gguf.quants.dequantize() of those bytes, little-endian f32
Rows mix quantized random data (where the package has a quantizer), all-zero rows and
random raw block bytes (fp16 scale fields forced finite, extreme scales included).
Reference quantizer outputs (q8_0, q4_0, q4_1, q8_1) on awkward input rows and fp32 ->
fp16/bf16 conversions are stored as quantize_*.bin / convert_*.{f32,u16}.
manifest.json lists every file. Seeded: re-running gives identical bytes.

Run: .venv/bin/python tools/make_quant_fixtures.py
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

SEED = 20250612
ROW_LEN = 256  # values per row; a multiple of every block size (32 and 256)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "quant")

# Byte offsets of the fp16 fields inside one block (ggml-common.h layouts).
FP16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "IQ4_NL": [0], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}
# Scales that stress the fp16 path: smallest/largest subnormal, largest finite, -0, 1, -2.
EXTREME_HALVES = [0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x8000, 0x3C00, 0xC000]
QUANTIZABLE = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"}
DEQUANT_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                 "IQ4_NL", "Q4_K", "Q5_K", "Q6_K", "Q8_K"]


def finite_halves(rng, n):
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    inf_or_nan = (h & 0x7C00) == 0x7C00
    h[inf_or_nan] ^= 0x4000  # clear the top exponent bit: finite, same sign and mantissa
    return h


def gaussian_row(rng, outliers=False):
    x = rng.standard_normal(ROW_LEN).astype(np.float32)
    if outliers:
        idx = rng.choice(ROW_LEN, size=ROW_LEN // 32, replace=False)
        x[idx] *= np.float32(40.0)
    return x


def raw_scalar_row(rng, name):
    """Random finite bit patterns plus the awkward values of each float format."""
    if name == "F32":
        u = rng.integers(0, 1 << 32, size=ROW_LEN, dtype=np.uint64).astype(np.uint32)
        u[(u & 0x7F800000) == 0x7F800000] ^= 0x40000000
        u[:8] = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000,
                 0x7F7FFFFF, 0x3F800000]
        return u.view(np.uint8)
    if name == "F16":
        h = finite_halves(rng, ROW_LEN)
        h[:10] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x7C00, 0xFC00, 0x7BFF, 0x3C00, 0x3555]
    else:  # BF16: exponent field is bits 14..7
        h = rng.integers(0, 1 << 16, size=ROW_LEN, dtype=np.uint32).astype(np.uint16)
        h[(h & 0x7F80) == 0x7F80] ^= 0x4000
        h[:8] = [0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x7F80, 0xFF80, 0x7F7F]
    return h.view(np.uint8)


def raw_block_row(rng, name, extreme):
    bs, ts = quants.GGML_QUANT_SIZES[QT[name]]
    n_blocks = ROW_LEN // bs
    b = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint16).astype(np.uint8)
    if name == "Q8_K":  # d is an f32 at offset 0: keep it a moderate finite value
        b[:, 0:4] = rng.standard_normal(n_blocks).astype(np.float32).view(np.uint8).reshape(-1, 4)
        return b.reshape(-1)
    for off in FP16_FIELDS[name]:
        if extreme:
            h = np.array([EXTREME_HALVES[(i + off) % len(EXTREME_HALVES)] for i in range(n_blocks)],
                         dtype=np.uint16)
        else:
            h = finite_halves(rng, n_blocks)
        b[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
    return b.reshape(-1)


def q4k_scale_example_row():
    """Spec §8: scales bytes all 0x41 -> sc/mn 1/1 for sub-blocks 0..3, 17/20 for 4..7."""
    b = np.zeros((ROW_LEN // 256, 144), dtype=np.uint8)
    b[:, 0:2] = np.array([0x3C00], dtype=np.uint16).view(np.uint8)  # d = 1
    b[:, 2:4] = np.array([0x3800], dtype=np.uint16).view(np.uint8)  # dmin = 0.5
    b[:, 4:16] = 0x41
    b[:, 16:] = np.arange(128, dtype=np.uint8)
    return b.reshape(-1)


def dequant_rows(rng, name):
    """Returns (rows of raw bytes, description of each row)."""
    qt = QT[name]
    rows, desc = [], []
    if name in QUANTIZABLE:
        for label, x in [("quantized gaussian", gaussian_row(rng)),
                         ("quantized gaussian with x40 outliers", gaussian_row(rng, True)),
                         ("quantized zeros", np.zeros(ROW_LEN, np.float32))]:
            rows.append(np.asarray(quants.quantize(x, qt)).view(np.uint8).reshape(-1))
            desc.append(label)
    else:
        bs, ts = quants.GGML_QUANT_SIZES[qt]
        rows.append(np.zeros(ROW_LEN // bs * ts, np.uint8))
        desc.append("all-zero bytes")
        if name == "Q4_K":
            rows.append(q4k_scale_example_row())
            desc.append("scales all 0x41, d=1, dmin=0.5, qs=0..127 (spec section 8)")
    while len(rows) < 6:
        extreme = len(rows) % 2 == 0
        if name in ("F32", "F16", "BF16"):
            rows.append(raw_scalar_row(rng, name))
            desc.append("random finite bit patterns + zeros, subnormals, inf, max")
        else:
            rows.append(raw_block_row(rng, name, extreme))
            desc.append("random bytes, " + ("extreme fp16 scales (subnormal, +-65504, -0)"
                                            if extreme else "random finite fp16 scales"))
    return rows, desc


def quantizer_inputs(rng):
    """Rows that stress the reference quantizers, with a label each."""
    rows = []
    rows.append(("gaussian", gaussian_row(rng)))
    rows.append(("gaussian with x40 outliers", gaussian_row(rng, True)))
    rows.append(("zeros", np.zeros(ROW_LEN, np.float32)))
    rows.append(("constant 0.3", np.full(ROW_LEN, 0.3, np.float32)))
    # Half-integers with |max| = 127 per block: d = 1 exactly, so x*id lands on .5 ties.
    t = (rng.integers(-126, 126, size=ROW_LEN) + 0.5).astype(np.float32)
    t[::32] = 127.0
    t[1::64] = -127.0
    rows.append(("half-integer ties, block max 127", t))
    rows.append(("tiny values (subnormal fp16 scales)", gaussian_row(rng) * np.float32(1e-5)))
    rows.append(("large values (sigma 1000)", gaussian_row(rng) * np.float32(1000.0)))
    # +a and -a in every block: the first of the two decides the sign of Q4_0's scale.
    u = rng.uniform(-1, 1, ROW_LEN).astype(np.float32)
    u[0::32], u[5::32] = -2.0, 2.0
    u[16::64], u[20::64] = 3.0, -3.0
    rows.append(("uniform with equal-magnitude +-extremes", u))
    return rows


def quantize_q8_1(x):
    """gguf has no Q8_1 quantizer; Q8_1 = Q8_0's d and qs plus s = fp16(d * sum(qs)),
    with d the unrounded f32 scale (ggml-quants.c quantize_row_q8_1_ref)."""
    q8 = np.asarray(quants.quantize(x, QT.Q8_0)).view(np.uint8).reshape(-1, 34)
    blocks = x.reshape(-1, 32)
    d32 = (np.abs(blocks).max(axis=1) / np.float32(127)).astype(np.float32)
    qsum = q8[:, 2:].view(np.int8).astype(np.int32).sum(axis=1)
    s = (qsum.astype(np.float32) * d32).astype(np.float16)
    out = np.zeros((blocks.shape[0], 36), np.uint8)
    out[:, 0:2] = q8[:, 0:2]
    out[:, 2:4] = s.view(np.uint8).reshape(-1, 2)
    out[:, 4:] = q8[:, 2:]
    return out.reshape(-1)


def conversion_inputs(rng):
    """f32 values for fp32 -> fp16/bf16 rounding: all binades of the half range, exact
    halfway points, overflow and underflow edges. No NaN (payload handling differs)."""
    vals = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e10, np.inf, -np.inf,
            2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26, 2.0 ** -14, 1e-30,
            np.finfo(np.float32).tiny, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 3.4e38]
    halves = finite_halves(rng, 512)
    h32 = halves.view(np.float16).astype(np.float32)
    mid = (h32.astype(np.float64) + np.nextafter(halves.view(np.float16), np.float16(np.inf))
           .astype(np.float64)) / 2  # exact halfway points between neighbouring halves
    mid = mid[np.isfinite(mid)].astype(np.float32)
    rand_bits = (rng.integers(0x33000000, 0x47800000, size=900, dtype=np.int64)
                 | (rng.integers(0, 2, size=900, dtype=np.int64) << 31)).astype(np.uint32)
    x = np.concatenate([np.array(vals, np.float32), h32, mid[:300], rand_bits.view(np.float32)])
    bf_bits = rng.integers(0, 1 << 32, size=2048 - len(x), dtype=np.uint64).astype(np.uint32)
    bf_bits[(bf_bits & 0x7F800000) == 0x7F800000] ^= 0x40000000
    return np.concatenate([x, bf_bits.view(np.float32)]).astype(np.float32)


def main():
    rng = np.random.default_rng(SEED)
    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": "tools/make_quant_fixtures.py", "seed": SEED,
                "gguf_version": getattr(gguf, "__version__", None) or _pkg_version("gguf"),
                "numpy_version": np.__version__, "row_len": ROW_LEN,
                "dequant": [], "quantize": {}, "convert": {}}

    for name in DEQUANT_TYPES:
        qt = QT[name]
        rows, desc = dequant_rows(rng, name)
        raw = np.concatenate(rows)
        try:
            ref = np.asarray(quants.dequantize(raw, qt), dtype=np.float32).reshape(-1)
        except NotImplementedError:
            print(f"skip {name}: gguf {manifest['gguf_version']} cannot dequantize it")
            continue
        assert ref.size == len(rows) * ROW_LEN and not np.isnan(ref).any(), name
        raw.tofile(os.path.join(OUT, f"{name}.bin"))
        ref.astype("<f4").tofile(os.path.join(OUT, f"{name}.f32"))
        manifest["dequant"].append({"type": name, "ggml_id": int(qt), "n_values": int(ref.size),
                                    "n_rows": len(rows), "row_len": ROW_LEN,
                                    "bin": f"{name}.bin", "f32": f"{name}.f32", "rows": desc})

    labels, xs = zip(*quantizer_inputs(rng))
    x = np.concatenate(xs).astype(np.float32)
    x.astype("<f4").tofile(os.path.join(OUT, "quantize_input.f32"))
    outs = {"Q8_0": np.asarray(quants.quantize(x, QT.Q8_0)).view(np.uint8).reshape(-1),
            "Q4_0": np.asarray(quants.quantize(x, QT.Q4_0)).view(np.uint8).reshape(-1),
            "Q4_1": np.asarray(quants.quantize(x, QT.Q4_1)).view(np.uint8).reshape(-1),
            "Q8_1": quantize_q8_1(x)}
    for name, b in outs.items():
        b.tofile(os.path.join(OUT, f"quantize_{name}.bin"))
    manifest["quantize"] = {"input": "quantize_input.f32", "n_values": int(x.size),
                            "n_rows": len(xs), "row_len": ROW_LEN, "rows": list(labels),
                            "outputs": {k: f"quantize_{k}.bin" for k in outs},
                            "note": "Q8_1 = gguf Q8_0 quantizer + s = fp16(d_f32 * sum(qs)); "
                                    "gguf has no Q8_1 quantizer"}

    c = conversion_inputs(rng)
    c.astype("<f4").tofile(os.path.join(OUT, "convert_input.f32"))
    with np.errstate(over="ignore"):  # values past 65520 are meant to become inf
        c.astype(np.float16).view("<u2").tofile(os.path.join(OUT, "convert_fp16.u16"))
    np.asarray(quants.quantize(c, QT.BF16)).view("<u2").tofile(os.path.join(OUT, "convert_bf16.u16"))
    manifest["convert"] = {"input": "convert_input.f32", "n_values": int(c.size),
                           "fp16": "convert_fp16.u16 (numpy astype(float16), round to nearest even)",
                           "bf16": "convert_bf16.u16 (gguf.quants BF16 = ggml_compute_fp32_to_bf16)"}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes to {os.path.normpath(OUT)}")
    if total >= 200 * 1024:
        sys.exit("fixtures exceed the 200 KB budget")


def _pkg_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
