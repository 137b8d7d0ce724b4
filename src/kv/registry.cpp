// The list of built-in KV methods (help order), name lookup, shared shape checks and
// KvCache assembly. New methods add one line to register_builtin_methods(); there is no
// static self-registration (static libraries drop unreferenced objects).
#include <fmt/format.h>

#include <functional>

#include "kv/codecs/codecs.h"
#include "kv/kv_cache.h"
#include "kv/row_cache.h"

namespace strata::kv {

namespace {

using Factory = std::function<std::unique_ptr<Method>()>;

const std::vector<std::pair<std::string, Factory>>& register_builtin_methods() {
    static const std::vector<std::pair<std::string, Factory>> list = {
        {"fp16", make_fp16_method},
        {"fp32", make_fp32_method},
        {"q8_0", make_q8_0_method},
        {"q4_1", make_q4_1_method},
        {"q4_0", make_q4_0_method},
        {"kivi4", make_kivi4_method},
        {"kivi2", make_kivi2_method},
        {"kivi4_g32_r128", [] { return make_kivi_fifo_method(4); }},
        {"kivi2_g32_r128", [] { return make_kivi_fifo_method(2); }},
        {"hk2", make_hk2_method},
        {"varn2", make_varn2_method},
        {"kvarn_k4v4", [] { return make_kvarn_method(4, 4); }},
        {"kvarn_k4v2", [] { return make_kvarn_method(4, 2); }},
        {"kvarn_k3v3", [] { return make_kvarn_method(3, 3); }},
        {"kvarn_k2v2", [] { return make_kvarn_method(2, 2); }},
        {"turboquant4", [] { return make_turboquant_method(4, false); }},
        {"turboquant3", [] { return make_turboquant_method(3, false); }},
        {"turboquant4_b2", [] { return make_turboquant_method(4, true); }},
        {"turboquant3_b2", [] { return make_turboquant_method(3, true); }},
        {"tq_mse3", [] { return make_tq_paper_method(3, false); }},
        {"tq_prod3", [] { return make_tq_paper_method(3, true); }},
    };
    return list;
}

}  // namespace

std::unique_ptr<RowCodec> Method::row_codec(int) const { return nullptr; }

std::vector<std::string> kv_method_names() {
    std::vector<std::string> v;
    for (auto& [n, f] : register_builtin_methods()) v.push_back(n);
    return v;
}

Result<std::unique_ptr<Method>> make_kv_method(std::string_view name) {
    for (auto& [n, f] : register_builtin_methods())
        if (n == name) return f();
    return invalid_input("unknown KV method \"{}\" (known: {})", name, fmt::join(kv_method_names(), ", "));
}

Status check_gqa(std::string_view m, const CacheShape& s) {
    if (s.head_dim <= 0 || s.n_head_kv <= 0 || s.n_head <= 0 || s.n_head % s.n_head_kv)
        return unsupported("kv {}: needs n_head a multiple of n_head_kv and head_dim > 0 (model has {}, {}, {})", m,
                           s.n_head, s.n_head_kv, s.head_dim);
    return ok_status();
}

Status check_block32(std::string_view m, const CacheShape& s) {
    STRATA_TRY(check_gqa(m, s));
    if (s.head_dim % 32)
        return unsupported("kv {}: head_dim {} is not a multiple of 32 (the format's block size)", m, s.head_dim);
    return ok_status();
}

Status check_pow2(std::string_view m, const CacheShape& s) {
    STRATA_TRY(check_gqa(m, s));
    if (s.head_dim < 8 || s.head_dim > 256 || (s.head_dim & (s.head_dim - 1)))
        return unsupported("kv {}: head_dim {} is not a power of two in 8..256 (Hadamard size / code packing)", m,
                           s.head_dim);
    return ok_status();
}

Result<std::unique_ptr<KvCache>> KvCache::create(const KvSpec& spec, const CacheShape& shape, size_t budget_bytes) {
    std::unique_ptr<KvCache> c(new KvCache);
    c->budget_ = std::make_unique<ByteBudget>(budget_bytes);
    auto mk = make_kv_method(spec.k);
    if (!mk) return mk.error();
    STRATA_TRY((*mk)->check(shape));
    std::shared_ptr<const RowCodec> kc, vc;
    if (spec.v != spec.k) {
        auto mv = make_kv_method(spec.v);
        if (!mv) return mv.error();
        STRATA_TRY((*mv)->check(shape));
        kc = (*mk)->row_codec(shape.head_dim);
        vc = (*mv)->row_codec(shape.head_dim);
        if (!kc || !vc)
            return invalid_input("K and V formats differ (\"{}\", \"{}\") but \"{}\" stores K and V together; "
                                 "only per-token formats (fp32, fp16, q8_0, q4_1, q4_0) can be mixed",
                                 spec.k, spec.v, kc ? spec.v : spec.k);
    }
    for (int l = 0; l < shape.n_layer; ++l) {
        auto layer = kc ? make_row_cache(shape, *c->budget_, kc, vc) : (*mk)->make_layer(shape, l, *c->budget_);
        if (!layer) return layer.error();
        c->layers_.push_back(std::move(*layer));
    }
    return c;
}

void KvCache::truncate(int64_t n) {
    for (auto& l : layers_) l->truncate(n);
}

size_t KvCache::bytes() const {
    size_t b = 0;
    for (auto& l : layers_) b += l->bytes();
    return b;
}

}  // namespace strata::kv
