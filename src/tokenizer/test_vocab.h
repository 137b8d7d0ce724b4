// Test helper shared by test binaries that need a real vocabulary: the repository path of a
// file, the default model's tokenizer (a missing default model is a failure in those tests,
// not a skip: `make model` fetches it) and Gemma 3 270M's (skipped when absent).
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace strata::test {

// STRATA_SOURCE_DIR is the src/ folder (the CMake helper passes it) or the repository root.
inline std::string repo_path(const std::string& rel) {
    std::string root = STRATA_SOURCE_DIR;
    if (!std::ifstream(root + "/README.md").good()) root += "/..";
    return root + "/" + rel;
}

// The tokenizer of a GGUF under the repository root, or null with *error naming the problem.
inline std::unique_ptr<Tokenizer> load_tokenizer(const std::string& rel, const char* fetch_hint,
                                                 std::string* error) {
    const std::string path = repo_path(rel);
    auto file = gguf::File::open(path);
    if (!file) {
        *error = path + ": " + file.error().message() + " (" + fetch_hint + ")";
        return nullptr;
    }
    auto tok = Tokenizer::from_gguf(**file);
    if (!tok) {
        *error = tok.error().message();
        return nullptr;
    }
    return std::move(*tok);
}

// The default model's tokenizer, or null with *error naming the problem.
inline std::unique_ptr<Tokenizer> load_default_tokenizer(std::string* error) {
    return load_tokenizer("models/SmolLM2-135M-Instruct.Q4_1.gguf",
                          "fetch the default model with `make model`", error);
}

// Gemma 3 270M (SentencePiece vocab, issue #15). Tests that need it skip when the file is
// absent: `make models` fetches it, and `make test` depends on that.
inline constexpr const char* kGemma3Path = "models/gemma-3-270m-q4_k_m.gguf";
inline bool gemma3_present() { return std::ifstream(repo_path(kGemma3Path)).good(); }
inline std::unique_ptr<Tokenizer> load_gemma3_tokenizer(std::string* error) {
    return load_tokenizer(kGemma3Path, "fetch it with `make models`", error);
}

}  // namespace strata::test
