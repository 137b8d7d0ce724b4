// Entry-wise pieces shared by TIES, DARE and DARE-TIES (shared/specs/tada.md §3.4-3.6):
// magnitude trimming, DARE's random drop with rescaling, and sign election + disjoint sum.
// All work on dense float32 updates [d_out][d_in] with the LoRA scale already included.
#pragma once

#include <cstdint>
#include <vector>

namespace strata::adapters {

// Keeps the k = floor(density * n) entries of largest |value| (ties broken by lower index,
// so the result is deterministic) and zeroes the rest.
void trim_top_k(std::vector<float>& t, double density);

// DARE: keeps each entry with probability `density` (one counter-based splitmix64 draw per
// entry, so a fixed seed gives a bit-identical mask), then rescales survivors
// by 1/density or, with l1, so the L1 norm matches the original (mergekit's
// rescaled_masked_tensor, eps 1e-7). density >= 1 returns t unchanged.
void dare_drop(std::vector<float>& t, double density, uint64_t seed, bool l1);
std::vector<uint8_t> dare_mask(int64_t n, double density, uint64_t seed);

// Sign election and disjoint merge over weighted tensors tw[i] (already multiplied by
// their weights): gamma = +1 where sum_i tw[i] >= 0 (or, for PEFT, where the sum over the
// unweighted `sign_src` is >= 0), mask_i = sign(tw[i]) == gamma (zero never matches).
// divisor: 0 = none (dare_ties), 1 = sum of weights over agreeing entries (mergekit ties),
// 2 = count of agreeing entries (PEFT ties); a zero divisor becomes 1.
enum class Divisor { kNone, kWeightSum, kCount };
std::vector<float> disjoint_merge(const std::vector<std::vector<float>>& tw, const std::vector<double>& w,
                                  const std::vector<std::vector<float>>* sign_src, Divisor div);

}  // namespace strata::adapters
