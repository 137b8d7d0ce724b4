// generate(): prefill + decode loop with streaming and timings.
#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <span>

namespace strata::engine {

std::string take_complete_utf8(std::string& buf) {
    // Find the start of the last (possibly incomplete) sequence.
    size_t n = buf.size();
    size_t i = n;
    int back = 0;
    while (i > 0 && back < 4) {
        --i;
        ++back;
        const unsigned char c = static_cast<unsigned char>(buf[i]);
        if ((c & 0xC0) != 0x80) {  // lead byte or ASCII
            size_t need = 1;
            if ((c & 0xE0) == 0xC0) need = 2;
            else if ((c & 0xF0) == 0xE0) need = 3;
            else if ((c & 0xF8) == 0xF0) need = 4;
            if (n - i < need) {  // incomplete: hold back from i
                std::string out = buf.substr(0, i);
                buf.erase(0, i);
                return out;
            }
            break;
        }
    }
    std::string out;
    out.swap(buf);
    return out;
}

Result<GenerateStats> generate(model::Context& ctx, const Tokenizer& tok, sampling::Chain& sampler,
                               const std::vector<int32_t>& prompt, const GenerateParams& params,
                               const TokenCallback& on_token, std::vector<int32_t>* out_tokens) {
    using clock = std::chrono::steady_clock;
    GenerateStats st;
    if (prompt.empty()) return invalid_input("prompt is empty");
    if (ctx.n_past() + int64_t(prompt.size()) > ctx.n_ctx())
        return out_of_range("prompt of {} tokens does not fit in the context ({} of {} positions free)",
                            prompt.size(), ctx.n_ctx() - ctx.n_past(), ctx.n_ctx());
    st.n_prompt = int64_t(prompt.size());
    for (int32_t t : prompt) sampler.accept(t);
    sampler.begin_generation();  // presence/frequency penalties count the reply only

    auto t0 = clock::now();
    // Prompt batches of at most 512 tokens, as llama.cpp forms them (its default
    // n_ubatch): the 8-bit mode reproduces llama.cpp per batch shape, and the f32 mode's
    // results do not depend on how the prompt is cut.
    constexpr size_t kPromptBatch = 512;
    const std::span<const int32_t> all(prompt);
    std::span<const float> last;
    for (size_t i = 0; i < all.size(); i += kPromptBatch) {
        auto r = ctx.eval(all.subspan(i, std::min(kPromptBatch, all.size() - i)));
        if (!r) return r.error();
        last = *r;
    }
    st.prefill_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();

    std::string pending;
    auto t1 = clock::now();
    std::span<const float> cur = last;
    st.stop_reason = "length";
    for (int32_t i = 0; params.n_predict < 0 || i < params.n_predict; ++i) {
        const int32_t t = sampler.sample(cur);
        sampler.accept(t);
        if (params.stop_at_eog && tok.is_eog(t)) {
            st.stop_reason = "eog";
            break;
        }
        ++st.n_generated;
        if (out_tokens) out_tokens->push_back(t);
        pending += tok.token_to_piece(t, params.render_special);
        const std::string text = take_complete_utf8(pending);
        if (on_token && !on_token(t, text)) {
            st.stop_reason = "stopped";
            break;
        }
        if (params.n_predict >= 0 && i + 1 >= params.n_predict) break;
        if (ctx.n_past() + 1 > ctx.n_ctx()) {
            st.stop_reason = "context";
            break;
        }
        auto next = ctx.eval(std::span<const int32_t>(&t, 1));
        if (!next) return next.error();
        cur = *next;
    }
    if (!pending.empty() && on_token) on_token(-1, pending);
    st.decode_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    return st;
}

}  // namespace strata::engine
