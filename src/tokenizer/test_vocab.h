// Test helper shared by test binaries that need the real SmolLM2 vocabulary: the repository
// path of a file and the default model's tokenizer. A missing model is a failure in those
// tests, not a skip (`make model` fetches it).
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

// The default model's tokenizer, or null with *error naming the problem.
inline std::unique_ptr<Tokenizer> load_default_tokenizer(std::string* error) {
    const std::string path = repo_path("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    auto file = gguf::File::open(path);
    if (!file) {
        *error = path + ": " + file.error().message() + " (fetch the default model with `make model`)";
        return nullptr;
    }
    auto tok = Tokenizer::from_gguf(**file);
    if (!tok) {
        *error = tok.error().message();
        return nullptr;
    }
    return std::move(*tok);
}

}  // namespace strata::test
