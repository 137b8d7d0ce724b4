// Tokenizer built from GGUF metadata (shared/specs/gguf-and-llama.md §4): GPT-2 byte-level
// BPE with the model's declared pre-tokenizer (tokenizer.ggml.model = "gpt2": SmolLM2,
// Qwen3) or SentencePiece with byte fallback ("llama": Gemma 3), special tokens matched
// whole, BOS/EOS per metadata. Chat templates live in chat_template.h; Unicode classes and
// pre-tokenizers in unicode.h; the SentencePiece merge loop in spm.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"

namespace strata::gguf { class File; }

namespace strata {

using TokenId = int32_t;

enum class TokenType : int32_t {
    kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
    kByte = 6,
};

struct Vocab {
    std::string model;  // tokenizer.ggml.model: "gpt2" (BPE) or "llama" (SentencePiece)
    std::string pre;    // tokenizer.ggml.pre, e.g. "smollm", "qwen2"; ignored for "llama"
    std::vector<std::string> tokens;     // by id; BPE: byte-level mapped text, SPM: ' ' as U+2581
    std::vector<TokenType> types;        // by id
    std::vector<std::string> merges;     // BPE only: "left right", rank = index
    std::vector<float> scores;           // SPM only, by id (empty: all 0, as llama.cpp)
    TokenId bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;  // -1: not set
    TokenId eom = -1;  // end of message (tool call), optional
    bool add_bos = false, add_eos = false;
    // SPM: a raw fragment at the start or after a special token gets a leading space, and
    // decode() drops one leading space. from_gguf applies llama.cpp's default (true for
    // "llama", false otherwise) unless tokenizer.ggml.add_space_prefix says otherwise.
    bool add_space_prefix = false;
    std::string chat_template;  // raw Jinja text from the file (may be empty)
};

class Tokenizer {
public:
    // Validates the vocab (sizes agree, special ids in range, merges well formed,
    // pre-tokenizer known) and builds lookup tables.
    static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);
    static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);

    // parse_special: match control/user-defined token strings whole (used for templated
    // prompts); off for untrusted user content. add_bos/add_eos follow the metadata when
    // add_special is true.
    std::vector<TokenId> encode(std::string_view text, bool add_special = false,
                                bool parse_special = true) const;
    // A templated prompt: control tokens are matched only where they lie wholly inside one
    // of `markup` (byte ranges [begin, end) the chat template wrote); everywhere else, i.e.
    // in message content, their text is tokenized as plain text.
    std::vector<TokenId> encode(std::string_view text, bool add_special,
                                const std::vector<std::pair<size_t, size_t>>& markup) const;
    // Raw bytes of one token (control and unknown tokens render as their text only when
    // render_special).
    std::string token_to_piece(TokenId id, bool render_special = true) const;
    // The pieces joined, as llama.cpp's llama_detokenize(remove_special = false): with
    // add_space_prefix, one leading space of the first piece is dropped.
    std::string decode(const std::vector<TokenId>& ids, bool render_special = true) const;

    const Vocab& vocab() const { return vocab_; }
    int32_t n_vocab() const { return int32_t(vocab_.tokens.size()); }
    bool is_eog(TokenId id) const;  // end-of-generation: eos, eot, and <|endoftext|>-like ids
    TokenId bos() const { return vocab_.bos; }
    TokenId eos() const { return vocab_.eos; }

    ~Tokenizer();

private:
    Tokenizer() = default;
    std::vector<TokenId> encode_impl(std::string_view text, bool add_special, bool parse_special,
                                     const std::vector<std::pair<size_t, size_t>>* markup) const;
    struct Impl;
    Vocab vocab_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace strata
