// Single-sequence generation: prefill a prompt, then sample/decode until a stop
// condition, streaming text through a callback (incomplete UTF-8 held back). Timings are
// measured here so every front end reports the same numbers.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/forward.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace strata::engine {

struct GenerateParams {
    int32_t n_predict = 256;  // -n: tokens to generate at most (-1 = until end or context)
    bool stop_at_eog = true;  // stop at end-of-generation tokens
    bool render_special = false;
};

struct GenerateStats {
    int64_t n_prompt = 0, n_generated = 0;
    double prefill_ms = 0, decode_ms = 0;
    std::string stop_reason;  // "eog", "length", "context"
    double prefill_tps() const { return prefill_ms > 0 ? 1000.0 * double(n_prompt) / prefill_ms : 0; }
    // Decode speed counts the tokens evaluated after the first (the first comes from prefill).
    double decode_tps() const {
        return decode_ms > 0 && n_generated > 1 ? 1000.0 * double(n_generated - 1) / decode_ms : 0;
    }
};

// Returns false from the callback to stop early.
using TokenCallback = std::function<bool(int32_t token, const std::string& text_piece)>;

// Appends `prompt` to ctx (which may already hold earlier turns) and generates.
Result<GenerateStats> generate(model::Context& ctx, const Tokenizer& tok, sampling::Chain& sampler,
                               const std::vector<int32_t>& prompt, const GenerateParams& params,
                               const TokenCallback& on_token, std::vector<int32_t>* out_tokens = nullptr);

// Splits off a trailing incomplete UTF-8 sequence from `buf` (kept for the next piece).
std::string take_complete_utf8(std::string& buf);

// The default model path: models/<default> under the current directory or next to the
// source tree the binary was built from.
std::string default_model_path();

}  // namespace strata::engine
