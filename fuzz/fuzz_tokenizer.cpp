// Tokenizer (SmolLM2 byte-level BPE, smollm pre-tokenizer, special-token partition) on
// arbitrary bytes. Input: one flags byte (bit 0: parse_special, bit 1: add_special), then
// the text. Invariants: every id is in the vocabulary; at most one token per input byte
// (plus BOS/EOS, and an invalid byte may become a 3-byte U+FFFD); the round trip
// decode(encode(text)) == text holds, with and without special-token parsing, for every
// text whose bytes all have their GPT-2 byte symbol in the vocabulary; ChatML rendering of
// the text as a message round-trips as well. SmolLM2 lacks the symbols of 04 06 13 14 16 1D
// F1 F2 C0 C1 F5..FF: encode replaces such a byte by U+FFFD when it is invalid UTF-8 and,
// as llama.cpp does, drops it when it is part of a valid character (docs/reliability.md).
#include <algorithm>
#include <array>
#include <string_view>

#include "fuzz.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/unicode.h"
#include "tokenizer_fixture.h"

namespace {

using namespace strata;

bool spellable(const Tokenizer& tok, std::string_view s) {
    static const std::array<bool, 256> ok = [&] {
        std::array<bool, 256> t{};
        const auto& v = tok.vocab().tokens;
        for (int b = 0; b < 256; ++b)
            t[size_t(b)] = std::find(v.begin(), v.end(), unicode::byte_to_utf8(uint8_t(b))) != v.end();
        return t;
    }();
    for (unsigned char c : s)
        if (!ok[c]) return false;
    return true;
}

void check_ids(const Tokenizer& tok, const std::vector<TokenId>& ids, size_t text_bytes) {
    STRATA_FUZZ_CHECK(ids.size() <= 3 * text_bytes + 2, "more tokens than bytes");
    for (TokenId id : ids) STRATA_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), std::to_string(id));
}

}  // namespace

STRATA_FUZZ_TARGET(tokenizer) {
    if (size < 1) return 0;
    const Tokenizer& tok = fuzz::fixture_tokenizer();
    const bool parse_special = data[0] & 1, add_special = data[0] & 2;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    const auto ids = tok.encode(text, add_special, parse_special);
    check_ids(tok, ids, text.size());
    const std::string back = tok.decode(ids, true);
    for (TokenId id : ids) (void)tok.token_to_piece(id, false), (void)tok.is_eog(id);
    (void)tok.decode(ids, false);
    if (spellable(tok, text)) {
        std::string want(text);
        if (add_special && tok.vocab().add_bos) want = tok.token_to_piece(tok.bos()) + want;
        if (add_special && tok.vocab().add_eos) want += tok.token_to_piece(tok.eos());
        STRATA_FUZZ_CHECK(back == want, "decode(encode(text)) != text");

        // The server path: the text as a user message, rendered as ChatML, special tokens on.
        const std::string prompt = apply_chat_template(ChatTemplate{}, {{"user", std::string(text)}}, true);
        const auto pids = tok.encode(prompt, false, true);
        check_ids(tok, pids, prompt.size());
        STRATA_FUZZ_CHECK(tok.decode(pids, true) == prompt, "ChatML prompt does not round-trip");
    }
    return 0;
}
