// The normalized Sylvester–Hadamard rotation H = H_D / sqrt(D) (spec §2.1): natural order,
// no random signs, symmetric and its own inverse (H·H = I). KVarN, the Hadamard-only
// ablation and TurboQuant's key path rotate every head vector with it; attention runs in
// the rotated frame and the output is rotated back with the same H.
#pragma once

#include <vector>

namespace strata::kv {

// In place: x <- H x, x of length n (a power of two), by the fast Walsh–Hadamard
// butterfly (n log2 n adds) then a multiply by 1/sqrt(n).
void fwht(float* x, int n);
// Dense H (row-major n x n), for tests.
std::vector<double> hadamard_dense(int n);

}  // namespace strata::kv
