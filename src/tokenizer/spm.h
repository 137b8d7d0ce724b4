// SentencePiece-style tokenization (tokenizer.ggml.model = "llama": Gemma, Llama 1/2,
// Mistral v1) of one raw text fragment, as llama.cpp's llm_tokenizer_spm
// (src/llama-vocab.cpp): spaces escaped to U+2581, the text cut into UTF-8 units, adjacent
// units merged greedily by the score of the token they form, leftovers spelled with
// <0xXX> byte tokens. The special-token partition, BOS/EOS and the space-prefix rule live
// in tokenizer.cpp, which owns the tables this file reads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/string_map.h"

namespace strata::spm {

using TokenId = int32_t;

// Vocab lookups the merge loop needs; the Tokenizer owns what the pointers point to.
struct Tables {
    const StringMap<TokenId>* token_to_id = nullptr;  // token text -> id, all token types
    const std::vector<float>* scores = nullptr;       // by id; higher merges first
    // Byte fallback per byte value: the "<0xXX>" token, else the one-byte token, else the
    // unknown token; -1 drops the byte (llama.cpp throws there, we never do).
    std::array<TokenId, 256> byte_token{};
};

struct Symbol {
    int32_t prev, next;  // neighbours in the live chain, -1 at the ends
    uint32_t off, n;     // bytes of the escaped text; n == 0 once merged into the left
};

struct Bigram {
    float score;  // of the token left+right forms
    int32_t left, right;
    uint32_t size;  // left.n + right.n when pushed; stale once that changes
};

// Per-call buffers, so encoding stays const and thread-safe without locks.
struct Scratch {
    std::string escaped;
    std::vector<Symbol> syms;
    std::vector<Bigram> heap;  // a binary heap, best bigram on top
};

// *out = (space_prefix ? "▁" : "") + text with every ' ' replaced by U+2581 ("▁"), as
// llama.cpp's llama_escape_whitespace after its optional leading ' '.
void escape_whitespace(std::string_view text, bool space_prefix, std::string* out);

// Appends the ids of one escaped fragment.
void encode(std::string_view escaped, const Tables& t, Scratch* s, std::vector<TokenId>* out);

// Decoded bytes of a normal token: U+2581 -> ' ' (llama_unescape_whitespace).
std::string unescape_whitespace(std::string_view text);

// The byte a byte-type token stands for: hex digits at [3, 5) of "<0xXX>", read the way
// llama.cpp's token_to_byte does (strtol: stops at the first non-hex character).
uint8_t byte_of_token(std::string_view text);

}  // namespace strata::spm
