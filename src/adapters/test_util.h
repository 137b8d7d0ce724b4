// Fixtures shared by the adapter tests: a tiny llama-like model shape and random LoRA
// modules. Test-only; included from *_test.cpp.
#pragma once

#include <random>

#include "adapters/linalg.h"
#include "adapters/lora.h"

namespace strata::adapters::testing {

// 2 layers, hidden 8, ffn 12, 2 query heads and 1 KV head of size 4.
inline ModelShape small_shape() {
    ModelShape s;
    s.n_layer = 2;
    s.n_embd = 8;
    s.n_ff = 12;
    s.n_head = 2;
    s.n_head_kv = 1;
    s.head_dim = 4;
    return s;
}

// A (r x d_in) and B (d_out x r) with unit-normal entries from `seed`.
inline LoraModule random_lora(int64_t d_out, int64_t d_in, int64_t r, uint64_t seed, float scale = 1.f) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    LoraModule l;
    l.d_out = d_out;
    l.d_in = d_in;
    l.rank = r;
    l.scale = scale;
    for (int64_t i = 0; i < r * d_in; ++i) l.a.push_back(n(g));
    for (int64_t i = 0; i < d_out * r; ++i) l.b.push_back(n(g));
    return l;
}

// The dense d_out x d_in update of rank-r factors (as a merge returns them).
inline std::vector<float> dense_of(const Factors& f, int64_t d_out, int64_t d_in) {
    LoraModule m;
    m.d_out = d_out;
    m.d_in = d_in;
    m.rank = f.rank;
    m.a = f.a;
    m.b = f.b;
    return dense_delta(m);
}

}  // namespace strata::adapters::testing
