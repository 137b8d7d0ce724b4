// PEFT adapter reading and writing. nlohmann::json is used with exceptions off and
// std::regex errors are caught here, so nothing throws out of this module.
#include "adapters/peft.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include "adapters/safetensors.h"
#include "base/log.h"

namespace strata::adapters {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Parses "base_model.model.model.layers.12.self_attn.q_proj.lora_A.weight".
struct TensorKey {
    int layer = -1;
    WeightRole role = WeightRole::kOther;
    char which = 0;  // 'A' or 'B'
};

Result<TensorKey> parse_key(const std::string& name) {
    static const std::string kPrefix = "base_model.model.model.layers.";
    if (name.find("lora_embedding_") != std::string::npos)
        return unsupported("{}: embedding LoRA is not supported", name);
    if (name.find("lora_magnitude_vector") != std::string::npos)
        return unsupported("{}: DoRA magnitude vectors are not supported", name);
    if (name.rfind(kPrefix, 0) != 0) return unsupported("{}: not a LoRA tensor of a decoder layer", name);
    size_t p = kPrefix.size(), q = name.find('.', p);
    if (q == std::string::npos || q == p || q - p > 6) return invalid_input("{}: bad layer index", name);
    TensorKey k;
    for (size_t i = p; i < q; ++i)
        if (name[i] < '0' || name[i] > '9') return invalid_input("{}: bad layer index", name);
    k.layer = std::stoi(name.substr(p, q - p));
    const std::string rest = name.substr(q + 1);
    for (WeightRole r : kRoles) {
        const std::string mp = peft_module_path(r);
        if (rest == mp + ".lora_A.weight") { k.role = r; k.which = 'A'; return k; }
        if (rest == mp + ".lora_B.weight") { k.role = r; k.which = 'B'; return k; }
        if (rest == mp + ".lora_B.bias") return unsupported("{}: lora_bias is not supported", name);
    }
    return unsupported("{}: unsupported LoRA tensor (known: lora_A/lora_B of q/k/v/o/gate/up/down_proj)", name);
}

// `(.*\.)?(K)$` for a key K whose only metacharacters are '.' (any character) and "\." (a
// dot): K matches a suffix of the module that starts the name or follows a '.'. Real
// configs use such keys (module paths and suffixes); no regex engine needed.
bool match_dotted_key(const std::string& key, const std::string& module) {
    std::vector<std::pair<char, bool>> k;  // (char, is wildcard)
    for (size_t i = 0; i < key.size(); ++i) {
        if (key[i] == '\\' && i + 1 < key.size() && key[i + 1] == '.') k.push_back({'.', false}), ++i;
        else k.push_back({key[i], key[i] == '.'});
    }
    if (k.size() > module.size()) return false;
    const size_t start = module.size() - k.size();
    if (start > 0 && module[start - 1] != '.') return false;  // K has a fixed length
    for (size_t i = 0; i < k.size(); ++i)
        if (!k[i].second && module[start + i] != k[i].first) return false;
    return true;
}

// Keys with other regex syntax go to std::regex, whose compiler and backtracking matcher
// recurse and backtrack without limit (a deeply nested key overflows the stack, nested
// repetition hangs, a{100000} compiles for seconds): bound the key first. Two repetition
// operators, counts up to 64 and four alternatives keep the automaton small and the match
// polynomial for module names of a few dozen characters.
Status check_regex_key(const std::string& key, const std::string& what) {
    constexpr size_t kMaxKey = 128;
    if (key.size() > kMaxKey)
        return invalid_input("{}: pattern key of {} bytes is longer than the {} byte limit", what, key.size(), kMaxKey);
    int depth = 0, max_depth = 0, reps = 0, alts = 0;
    for (size_t i = 0; i < key.size(); ++i) {
        const char c = key[i];
        if (c == '\\') {
            ++i;
            continue;
        }
        if (c == '(') max_depth = std::max(max_depth, ++depth);
        if (c == ')') --depth;
        if (c == '|') ++alts;
        if (c == '{') {  // x{n}, x{n,}, x{n,m}: the compiled automaton has a state per repetition
            size_t n = 0;  // the largest count inside the braces
            for (size_t j = i + 1, v = 0; j < key.size() && key[j] != '}'; ++j) {
                v = key[j] >= '0' && key[j] <= '9' ? std::min<size_t>(v * 10 + size_t(key[j] - '0'), 1000) : 0;
                n = std::max(n, v);
            }
            if (n > 64)
                return invalid_input("{}: pattern key \"{}\": repetition counts above 64 are not supported", what, key);
        }
        if (c == '*' || c == '+' || c == '?' || c == '{') {
            ++reps;
            if (i > 0 && key[i - 1] == ')' && c != '?')
                return invalid_input("{}: pattern key \"{}\": repeated groups are not supported", what, key);
        }
    }
    if (max_depth > 4 || reps > 2 || alts > 4)
        return invalid_input("{}: pattern key \"{}\" is too complex (at most 4 nested groups, 2 repetition "
                             "operators and 4 alternatives)", what, key);
    return ok_status();
}

// PEFT's get_pattern_key: the first key K whose `(.*\.)?(K)$` matches the module name.
Result<const json*> match_pattern(const json& pat, const std::string& module, const std::string& what) {
    if (!pat.is_object()) return static_cast<const json*>(nullptr);
    for (auto it = pat.begin(); it != pat.end(); ++it) {
        const std::string& key = it.key();
        bool plain = true;
        for (size_t i = 0; i < key.size() && plain; ++i) {
            if (key[i] == '\\' && i + 1 < key.size() && key[i + 1] == '.') ++i;
            else plain = std::string_view("\\^$|?*+()[]{}").find(key[i]) == std::string_view::npos;
        }
        if (plain) {
            if (match_dotted_key(key, module)) return &it.value();
            continue;
        }
        STRATA_TRY(check_regex_key(key, what));
        try {
            if (std::regex_match(module, std::regex("(.*\\.)?(" + key + ")$"))) return &it.value();
        } catch (const std::regex_error&) {
            return invalid_input("{}: pattern key \"{}\" is not a valid regular expression", what, key);
        }
    }
    return static_cast<const json*>(nullptr);
}

bool truthy(const json& c, const char* k) { return c.contains(k) && c[k].is_boolean() && c[k].get<bool>(); }

}  // namespace

std::string peft_module_name(int layer, WeightRole r) {
    return "model.layers." + std::to_string(layer) + "." + peft_module_path(r);
}

Result<LoraAdapter> parse_peft(const std::string& config_json, const StFile& st, const ModelShape& shape,
                               const std::string& what) {
    const std::string cfg_name = what + "/adapter_config.json";
    json c = json::parse(config_json, nullptr, false);
    if (c.is_discarded() || !c.is_object()) return invalid_input("{}: not a JSON object", cfg_name);
    const std::string pt = c.contains("peft_type") && c["peft_type"].is_string() ? c["peft_type"].get<std::string>() : "";
    if (pt != "LORA") return unsupported("{}: peft_type \"{}\" is not supported (only LORA)", cfg_name, pt);
    if (truthy(c, "use_dora")) return unsupported("{}: use_dora is set; DoRA adapters cannot be merged as LoRA", cfg_name);
    if (truthy(c, "lora_bias")) return unsupported("{}: lora_bias is set; LoRA biases are not supported", cfg_name);
    if (truthy(c, "fan_in_fan_out")) return unsupported("{}: fan_in_fan_out (Conv1D layout) is not supported", cfg_name);
    if (c.contains("target_parameters") && !c["target_parameters"].is_null() && !c["target_parameters"].empty())
        return unsupported("{}: target_parameters is not supported", cfg_name);
    if (c.contains("modules_to_save") && !c["modules_to_save"].is_null() && !c["modules_to_save"].empty())
        return unsupported("{}: modules_to_save is not supported (full module copies cannot be merged as LoRA)",
                           cfg_name);
    if (c.contains("bias") && c["bias"].is_string() && c["bias"] != "none")
        log_warn("{}: bias \"{}\" is ignored (only the LoRA matrices are used)", cfg_name, c["bias"].get<std::string>());
    if (!c.contains("r") || !c["r"].is_number_integer() || c["r"].get<int64_t>() < 1)
        return invalid_input("{}: r must be a positive integer", cfg_name);
    if (!c.contains("lora_alpha") || !c["lora_alpha"].is_number())
        return invalid_input("{}: lora_alpha must be a number", cfg_name);
    const int64_t r_default = c["r"].get<int64_t>();
    const double alpha_default = c["lora_alpha"].get<double>();
    const bool rslora = truthy(c, "use_rslora");
    const json rank_pat = c.value("rank_pattern", json::object()), alpha_pat = c.value("alpha_pattern", json::object());

    LoraAdapter ad;
    ad.source = what;
    if (c.contains("base_model_name_or_path") && c["base_model_name_or_path"].is_string())
        ad.base_model = c["base_model_name_or_path"].get<std::string>();
    std::map<std::pair<int, int>, std::pair<const StTensor*, const StTensor*>> pairs;  // (layer, role) -> (A, B)
    std::map<std::pair<int, int>, std::string> stem;
    for (auto& [name, t] : st.tensors) {
        auto k = parse_key(name);
        if (!k) return k.error().with_context(what);
        if (t.data.empty() && !t.shape.empty())
            return unsupported("{}: {}: dtype {} is not a float type", what, name, t.dtype);
        auto& slot = pairs[{k->layer, role_index(k->role)}];
        (k->which == 'A' ? slot.first : slot.second) = &t;
        stem[{k->layer, role_index(k->role)}] = name.substr(0, name.size() - std::string(".lora_A.weight").size());
    }
    for (auto& [key, ab] : pairs) {
        const WeightRole role = kRoles[key.second];
        const std::string& nm = stem[key];
        if (!ab.first) return invalid_input("{}: {}.lora_B.weight has no matching lora_A", what, nm);
        if (!ab.second) return invalid_input("{}: {}.lora_A.weight has no matching lora_B", what, nm);
        const StTensor &A = *ab.first, &B = *ab.second;
        if (A.shape.size() != 2 || B.shape.size() != 2)
            return invalid_input("{}: {}: lora_A and lora_B must be 2-D", what, nm);
        LoraModule m;
        m.layer = key.first;
        m.role = role;
        m.rank = A.shape[0];
        m.d_in = A.shape[1];
        m.d_out = B.shape[0];
        if (m.layer >= shape.n_layer)
            return invalid_input("{}: {}: layer {} out of range (the base model has {} layers)", what, nm, m.layer,
                                 shape.n_layer);
        if (B.shape[1] != m.rank)
            return invalid_input("{}: {}: lora_A has rank {} but lora_B is [{}, {}]", what, nm, m.rank, B.shape[0],
                                 B.shape[1]);
        if (m.d_in != shape.d_in(role) || m.d_out != shape.d_out(role))
            return invalid_input("{}: {}: adapter is {}x{} (out x in), base weight is {}x{}", what, nm, m.d_out, m.d_in,
                                 shape.d_out(role), shape.d_in(role));
        const std::string module = peft_module_name(m.layer, role);
        auto rp = match_pattern(rank_pat, module, cfg_name);
        if (!rp) return rp.error();
        auto apat = match_pattern(alpha_pat, module, cfg_name);
        if (!apat) return apat.error();
        const int64_t r_cfg = *rp && (**rp).is_number_integer() ? (**rp).get<int64_t>() : r_default;
        const double alpha = *apat && (**apat).is_number() ? (**apat).get<double>() : alpha_default;
        if (r_cfg != m.rank)
            return invalid_input("{}: {}: lora_A has rank {} but adapter_config.json says r = {}", what, nm, m.rank,
                                 r_cfg);
        m.scale = float(rslora ? alpha / std::sqrt(double(m.rank)) : alpha / double(m.rank));
        m.a = A.data;
        m.b = B.data;
        if (int64_t h = permuted_heads(shape, role)) permute_rows_hf_to_gguf(m.b, m.d_out, m.rank, h);
        ad.modules.push_back(std::move(m));
    }
    if (ad.modules.empty()) return invalid_input("{}: no LoRA tensors", what);
    ad.sort();
    STRATA_TRY(check_against(ad, shape).with_context(what));
    return ad;
}

Result<LoraAdapter> read_peft(const std::string& path, const ModelShape& shape) {
    std::error_code ec;
    fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    const fs::path cfg = dir / "adapter_config.json";
    const fs::path st = fs::path(path).extension() == ".safetensors" ? fs::path(path) : dir / "adapter_model.safetensors";
    std::ifstream f(cfg);
    if (!f) return not_found("{}: cannot open", cfg.string());
    std::stringstream ss;
    ss << f.rdbuf();
    auto t = read_safetensors(st.string());
    if (!t) return t.error();
    return parse_peft(ss.str(), *t, shape, dir.string());
}

Status write_peft(const std::string& dir, const LoraAdapter& ad, const ModelShape& shape, bool f16) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return io_error("{}: cannot create directory: {}", dir, ec.message());
    bool uniform = !ad.modules.empty();
    for (const auto& m : ad.modules)
        uniform = uniform && m.rank == ad.modules[0].rank && m.scale == ad.modules[0].scale;
    const int64_t r_out = ad.max_rank();
    json rank_pat = json::object(), alpha_pat = json::object();
    StFile st;
    st.metadata["format"] = "pt";
    std::set<std::string> targets;
    for (const auto& m : ad.modules) {
        std::vector<float> b = m.b;
        if (!uniform)
            for (float& v : b) v *= m.scale;
        if (int64_t h = permuted_heads(shape, m.role)) permute_rows_gguf_to_hf(b, m.d_out, m.rank, h);
        const std::string stem = "base_model.model." + peft_module_name(m.layer, m.role);
        st.tensors[stem + ".lora_A.weight"] = {"F32", {m.rank, m.d_in}, m.a};
        st.tensors[stem + ".lora_B.weight"] = {"F32", {m.d_out, m.rank}, std::move(b)};
        const std::string mp = peft_module_path(m.role);
        targets.insert(mp.substr(mp.find('.') + 1));
        if (!uniform && m.rank != r_out) {
            rank_pat[peft_module_name(m.layer, m.role)] = m.rank;
            alpha_pat[peft_module_name(m.layer, m.role)] = m.rank;
        }
    }
    const double alpha = uniform ? double(ad.modules[0].scale) * double(r_out) : double(r_out);
    json c = {{"peft_type", "LORA"},       {"task_type", "CAUSAL_LM"},   {"r", r_out},
              {"lora_alpha", alpha},       {"use_rslora", false},        {"use_dora", false},
              {"bias", "none"},            {"fan_in_fan_out", false},    {"lora_dropout", 0.0},
              {"rank_pattern", rank_pat},  {"alpha_pattern", alpha_pat}, {"target_modules", targets},
              {"base_model_name_or_path", ad.base_model}, {"inference_mode", true}};
    std::ofstream o(fs::path(dir) / "adapter_config.json");
    if (!o) return io_error("{}/adapter_config.json: cannot create", dir);
    o << c.dump(2) << "\n";
    if (!o) return io_error("{}/adapter_config.json: write failed", dir);
    return write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), st, f16);
}

}  // namespace strata::adapters
