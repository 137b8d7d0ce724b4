// The tokenizer the tokenizer and server targets use: the full SmolLM2 vocabulary (49152
// tokens, merges, special tokens) from the committed tests/fixtures/tiny-llama.gguf, whose
// tokenizer.* metadata is copied from the default model. Loaded once per process.
#pragma once

#include <memory>

#include "fuzz.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace strata::fuzz {

inline const Tokenizer& fixture_tokenizer() {
    static const std::unique_ptr<Tokenizer> tok = [] {
        const std::string path = source_path("tests/fixtures/tiny-llama.gguf");
        auto f = gguf::File::open(path);
        STRATA_FUZZ_CHECK(bool(f), f ? "" : f.error().message());
        auto t = Tokenizer::from_gguf(**f);
        STRATA_FUZZ_CHECK(bool(t), t ? "" : t.error().message());
        return std::move(*t);
    }();
    return *tok;
}

}  // namespace strata::fuzz
