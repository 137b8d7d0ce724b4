// Where the default model lives: `make model` puts it in <repo>/models/.
#include <filesystem>

#include "engine/generate.h"

#ifndef STRATA_SOURCE_ROOT
#define STRATA_SOURCE_ROOT "."
#endif

namespace strata::engine {

std::string default_model_path() {
    namespace fs = std::filesystem;
    const char* name = "SmolLM2-135M-Instruct.Q4_1.gguf";
    const fs::path local = fs::path("models") / name;
    std::error_code ec;
    if (fs::exists(local, ec)) return local.string();
    return (fs::path(STRATA_SOURCE_ROOT) / "models" / name).string();
}

}  // namespace strata::engine
