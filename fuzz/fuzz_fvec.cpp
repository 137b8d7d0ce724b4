// FVEC v1 function-vector blobs (fv::parse_fvec, shared/specs/function-vectors.md §5.1):
// header, flags, sizes and enums, task name, aggregated/distributed entries, values, CRC32.
// Input: one control byte, then the blob. Control bit 0 set: the harness rewrites the blob's
// last 4 bytes with the right CRC32 first, so mutations reach the checks after the CRC; clear:
// the blob is parsed as is (CRC mismatches included). Invariants: a parsed blob serializes
// and re-parses to the same header and entries, and check_model accepts its own identity.
#include <cstring>
#include <vector>

#include "fuzz.h"
#include "fv/fvec.h"

namespace {

using namespace strata;

}  // namespace

STRATA_FUZZ_TARGET(fvec) {
    if (size < 1) return 0;
    std::vector<uint8_t> blob(data + 1, data + size);
    if ((data[0] & 1) && blob.size() >= 4) {
        const uint32_t c = fv::crc32({blob.data(), blob.size() - 4});
        std::memcpy(blob.data() + blob.size() - 4, &c, 4);
    }
    auto f = fv::parse_fvec({blob.data(), blob.size()});
    if (!f) {
        STRATA_FUZZ_CHECK(!f.error().message().empty(), "error without a message");
        return 0;
    }
    fv::ModelIdentity id;
    id.hash = f->model_hash;
    id.hidden_size = f->hidden_size, id.n_layers = f->n_layers, id.n_heads = f->n_heads, id.head_dim = f->head_dim;
    STRATA_FUZZ_CHECK(fv::check_model(*f, id).ok(), "check_model rejects the blob's own identity");
    id.n_layers += 1;
    STRATA_FUZZ_CHECK(!fv::check_model(*f, id).ok(), "check_model accepts a different layer count");

    fv::FunctionVector copy = *f;
    auto bytes = fv::serialize_fvec(copy);
    STRATA_FUZZ_CHECK(bool(bytes), bytes ? "" : bytes.error().message());
    auto back = fv::parse_fvec({bytes->data(), bytes->size()});
    STRATA_FUZZ_CHECK(bool(back), back ? "" : back.error().message());
    STRATA_FUZZ_CHECK(back->distributed == f->distributed && back->hidden_size == f->hidden_size &&
                          back->n_layers == f->n_layers && back->n_heads == f->n_heads &&
                          back->head_dim == f->head_dim && back->dtype == f->dtype &&
                          back->policy == f->policy && back->hook_point == f->hook_point &&
                          back->task == f->task && back->model_hash == f->model_hash &&
                          back->has_scores == f->has_scores && std::memcmp(&back->scale, &f->scale, 4) == 0,
                      "header changed in the round trip");
    STRATA_FUZZ_CHECK(back->entries.size() == f->entries.size(), "entry count changed in the round trip");
    for (size_t i = 0; i < f->entries.size(); ++i) {
        const auto &a = f->entries[i], &b = back->entries[i];
        STRATA_FUZZ_CHECK(a.layer == b.layer && a.head == b.head && a.values.size() == b.values.size() &&
                              std::memcmp(&a.score, &b.score, 4) == 0,
                          "entry changed in the round trip");
        // Values were decoded from dtype and are re-encoded to it: the same bits come back.
        STRATA_FUZZ_CHECK(a.values.empty() || std::memcmp(a.values.data(), b.values.data(), 4 * a.values.size()) == 0,
                          "values changed in the round trip");
    }
    return 0;
}
