// Format dispatch for adapter files.
#include "adapters/load.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "adapters/gguf_lora.h"
#include "adapters/peft.h"

namespace strata::adapters {

namespace {
bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}
}  // namespace

Result<LoraSpec> parse_lora_spec(std::string_view arg) {
    LoraSpec s;
    s.path = std::string(arg);
    const size_t c = arg.rfind(':');
    if (c != std::string_view::npos && c + 1 < arg.size()) {
        const std::string num(arg.substr(c + 1));
        char* end = nullptr;
        const double v = std::strtod(num.c_str(), &end);
        if (end && *end == '\0') {
            if (!std::isfinite(v)) return invalid_input("--lora: scale \"{}\" is not a finite number", num);
            s.path = std::string(arg.substr(0, c));
            s.scale = float(v);
        }
    }
    if (s.path.empty()) return invalid_input("--lora: empty file name");
    return s;
}

Result<LoraAdapter> load_adapter(const std::string& path, const ModelShape& shape) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return not_found("{}: cannot open: No such file or directory", path);
    if (ends_with(path, ".gguf")) return read_gguf_lora(path, shape);
    return read_peft(path, shape);
}

Status save_adapter(const std::string& out, const LoraAdapter& ad, const ModelShape& shape, bool f16) {
    if (ends_with(out, ".gguf")) return write_gguf_lora(out, ad, shape, f16);
    STRATA_TRY(write_peft(out, ad, shape, f16));
    return write_gguf_lora((std::filesystem::path(out) / "adapter.gguf").string(), ad, shape, f16);
}

}  // namespace strata::adapters
