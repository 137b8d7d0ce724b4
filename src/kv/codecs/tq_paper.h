// TurboQuant as its paper defines it (arXiv 2504.19874, Alg. 1 and 2; spec §4.4 "paper
// algorithm"): tq_mse3 and tq_prod3. Not the vLLM variant of turboquant.cpp. Per token and
// KV head, K and V alike (the spec gives no K/V split for the paper variants; both are
// quantized the same way, every token, every layer, no FP window):
//  - n = |x|, u = x/n, y = Π u with Π a fixed random rotation (QR of an i.i.d. N(0,1)
//    D×D matrix, Haar; seeded, shared by all layers and heads).
//  - TQ_mse, b bits: every y[i] is replaced by the nearest of 2^b Lloyd–Max centroids for
//    the exact coordinate law of a random unit vector (tq_paper_codebook(D, b)).
//    x^ = n·Πᵀ c[idx]. Row: b·D/8 bytes of codes (3-bit: 2+1 bit planes) + FP16 n.
//  - TQ_prod, b bits: TQ_mse with b−1 bits, r = u − Πᵀ c[idx], γ = |r|, z = sign(S r) (one
//    bit per coordinate, sign(0) = +1) with S a fixed i.i.d. N(0,1) D×D matrix;
//    x^ = n·(Πᵀ c[idx] + (√(π/2)/D)·γ·Sᵀ z): unbiased inner products over the draw of S.
//    Row: (b−1)·D/8 bytes of codes + D/8 bytes of signs + FP16 n + FP16 γ.
// Fused attention never rebuilds x^: the query is mapped once per step to qp = [Π q,
// (√(π/2)/D)·S q], a score is n·(qp[0:D]·c[idx] + γ·qp[D:2D]·z); values accumulate
// w·n·c[idx] and w·n·γ·(√(π/2)/D)·z in those two frames and finish() maps the sum back
// with Πᵀ and Sᵀ once per query head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace strata::kv {

struct TqPaperTables;

// Lloyd–Max centroids (ascending, exactly symmetric) of 2^bits levels for one coordinate of
// a uniformly random unit vector in R^D, density ∝ (1 - y^2)^((D-3)/2) on [-1, 1]: solved
// on the positive half (first moments in closed form, masses by Simpson's rule) from the
// Gaussian levels / sqrt(D) until no centroid moves by 1e-13.
std::vector<float> tq_paper_codebook(int D, int bits);

class TqPaperCodec {
public:
    static constexpr uint64_t kRotationSeed = 0x7475726230717561ull;  // fixed: Π
    static constexpr uint64_t kQjlSeed = 0x716a6c736b657463ull;       // fixed: S
    // bits: total bits per coordinate (prod: b−1 for the codebook + 1 for the QJL sign).
    TqPaperCodec(int head_dim, int bits, bool prod, uint64_t rotation_seed = kRotationSeed,
                 uint64_t qjl_seed = kQjlSeed);
    int head_dim() const { return D_; }
    bool prod() const { return prod_; }
    size_t row_bytes() const { return row_bytes_; }
    // Floats of a prepared query and of a value accumulator (D for mse, 2D for prod).
    int query_floats() const { return prod_ ? 2 * D_ : D_; }
    // The scalar codebook in use (2^b, or 2^(b−1) for prod), ascending.
    const std::vector<float>& codebook() const;

    void encode(const float* x, uint8_t* row) const;
    void decode(const uint8_t* row, float* x) const;
    // qp[0..query_floats()) from a query q[0..D).
    void prepare_query(const float* q, float* qp) const;
    // out[j·ld] = q_j · decode(row) for g prepared queries qp[j·query_floats() ..].
    void scores(const uint8_t* row, const float* qp, int g, float* out, size_t ld) const;
    // acc[j·query_floats() ..] += w[j·ld] · decode(row), in the prepared frames.
    void accumulate(const uint8_t* row, const float* w, size_t ld, int g, float* acc) const;
    // out[0..D) = the model-frame vector of one accumulator.
    void finish(const float* acc, float* out) const;

private:
    // Centroid values y[D], signs z[D] (±1, prod only), n, γ of one row.
    void unpack(const uint8_t* row, float* y, float* z, float& n, float& gamma) const;
    int D_, bits_, cb_bits_;
    bool prod_;
    size_t codes_bytes_, row_bytes_;
    std::shared_ptr<const TqPaperTables> t_;
};

}  // namespace strata::kv
