// Field-by-field validation of /v1/chat/completions and /v1/completions bodies.
#include "server/openai.h"

#include <fmt/format.h>

#include <cmath>
#include <string_view>

namespace strata::server {

nlohmann::json ApiError::to_json() const {
    nlohmann::json e = {{"message", message}, {"type", type}, {"code", nullptr}};
    e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
    return {{"error", e}};
}

namespace {

ApiError bad(const std::string& param, const std::string& msg) { return ApiError{400, msg, param}; }

// Reads an optional number field into *out with a range check.
template <typename T>
std::optional<ApiError> num(const nlohmann::json& j, const char* key, T* out, double lo, double hi) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) return bad(key, fmt::format("'{}' must be a number", key));
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi)) return bad(key, fmt::format("'{}' must be in [{}, {}] (got {})", key, lo, hi, v));
    *out = T(v);
    return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion(const std::string& body, bool chat, CompletionRequest* out) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return bad("", "request body is not valid JSON");
    if (!j.is_object()) return bad("", "request body must be a JSON object");
    CompletionRequest r;
    r.chat = chat;
    if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
        if (!it->is_string()) return bad("model", "'model' must be a string");
        r.model = it->get<std::string>();
    }
    if (chat) {
        auto it = j.find("messages");
        if (it == j.end()) return bad("messages", "'messages' is required");
        if (!it->is_array() || it->empty()) return bad("messages", "'messages' must be a non-empty array");
        for (size_t i = 0; i < it->size(); ++i) {
            const auto& m = (*it)[i];
            const std::string p = fmt::format("messages[{}]", i);
            if (!m.is_object()) return bad(p, fmt::format("'{}' must be an object", p));
            auto role = m.find("role");
            if (role == m.end() || !role->is_string()) return bad(p + ".role", fmt::format("'{}.role' must be a string", p));
            const std::string rs = role->get<std::string>();
            if (rs != "system" && rs != "user" && rs != "assistant" && rs != "developer")
                return bad(p + ".role", fmt::format("'{}.role' must be system, user or assistant (got '{}')", p, rs));
            auto content = m.find("content");
            std::string text;
            if (content == m.end() || content->is_null()) {
                text = "";
            } else if (content->is_string()) {
                text = content->get<std::string>();
            } else if (content->is_array()) {  // [{"type":"text","text":...}]
                for (const auto& part : *content) {
                    // Not part.value("type", ""): it throws when "type" is not a string.
                    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
                        !part.contains("text") || !part["text"].is_string())
                        return bad(p + ".content", "only text content parts are supported");
                    text += part["text"].get<std::string>();
                }
            } else {
                return bad(p + ".content", fmt::format("'{}.content' must be a string or an array of text parts", p));
            }
            r.messages.push_back({rs == "developer" ? "system" : rs, text});
        }
    } else {
        auto it = j.find("prompt");
        if (it == j.end()) return bad("prompt", "'prompt' is required");
        if (it->is_string()) {
            r.prompt = it->get<std::string>();
        } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
            r.prompt = (*it)[0].get<std::string>();
        } else {
            return bad("prompt", "'prompt' must be a string (batched prompts are not supported)");
        }
        if (r.prompt.empty()) return bad("prompt", "'prompt' must not be empty");
    }
    const char* mt_key = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (auto it = j.find(mt_key); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) return bad(mt_key, fmt::format("'{}' must be an integer", mt_key));
        // An unsigned value above INT64_MAX would wrap negative through get<int64_t>().
        const int64_t v = it->is_number_unsigned() ? int64_t(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
                                                   : it->get<int64_t>();
        if (v <= 0) return bad(mt_key, fmt::format("'{}' must be positive (got {})", mt_key, v));
        r.max_tokens = int32_t(std::min<int64_t>(v, 1 << 20));
    }
    r.sampling.temperature = 1.0f;  // OpenAI defaults
    r.sampling.top_p = 1.0f;
    r.sampling.top_k = 0;
    r.sampling.min_p = 0.0f;
    if (auto e = num(j, "temperature", &r.sampling.temperature, 0.0, 2.0)) return e;
    if (auto e = num(j, "top_p", &r.sampling.top_p, 0.0, 1.0)) return e;
    if (r.sampling.top_p <= 0) return bad("top_p", "'top_p' must be greater than 0");
    if (auto e = num(j, "top_k", &r.sampling.top_k, 0.0, 1e6)) return e;
    if (auto e = num(j, "min_p", &r.sampling.min_p, 0.0, 1.0)) return e;
    if (auto e = num(j, "repetition_penalty", &r.sampling.repeat_penalty, 0.01, 100.0)) return e;
    if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) return bad("seed", "'seed' must be an integer");
        r.sampling.seed = uint64_t(it->get<int64_t>()) & 0xFFFFFFFFFFFFull;
    }
    if (auto it = j.find("n"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() != 1) return bad("n", "only n = 1 is supported");
    }
    if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
        if (it->is_string()) {
            r.stop.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            if (it->size() > 4) return bad("stop", "'stop' takes at most 4 sequences");
            for (const auto& s : *it) {
                if (!s.is_string()) return bad("stop", "'stop' must be a string or an array of strings");
                r.stop.push_back(s.get<std::string>());
            }
        } else {
            return bad("stop", "'stop' must be a string or an array of strings");
        }
        for (const auto& s : r.stop)
            if (s.empty()) return bad("stop", "stop sequences must not be empty");
    }
    if (auto it = j.find("stream"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) return bad("stream", "'stream' must be a boolean");
        r.stream = it->get<bool>();
    }
    if (auto it = j.find("ignore_eos"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) return bad("ignore_eos", "'ignore_eos' must be a boolean");
        r.ignore_eos = it->get<bool>();
    }
    for (const char* field : {"lora", "fv"}) {
        auto it = j.find(field);
        if (it == j.end() || it->is_null()) continue;
        if (!it->is_array()) return bad(field, fmt::format("'{}' must be an array of {{\"id\", \"scale\"}} objects", field));
        if (it->size() > 64) return bad(field, fmt::format("'{}' has more than 64 entries", field));
        std::vector<HookRef> refs;
        for (size_t i = 0; i < it->size(); ++i) {
            const nlohmann::json& e = (*it)[i];
            const std::string name = fmt::format("{}[{}]", field, i);
            if (!e.is_object()) return bad(name, fmt::format("'{}' must be an object with \"id\" and \"scale\"", name));
            auto id = e.find("id");
            if (id == e.end() || !id->is_number_integer() || id->get<int64_t>() < 0)
                return bad(name + ".id", fmt::format("'{}.id' must be a non-negative integer", name));
            HookRef ref{id->get<int64_t>(), 1.f};
            if (auto sc = e.find("scale"); sc != e.end() && !sc->is_null()) {
                if (!sc->is_number() || !std::isfinite(sc->get<double>()) || std::fabs(sc->get<double>()) > 1e4)
                    return bad(name + ".scale", fmt::format("'{}.scale' must be a finite number", name));
                ref.scale = float(sc->get<double>());
            }
            for (const HookRef& r2 : refs)
                if (r2.id == ref.id) return bad(name + ".id", fmt::format("'{}.id' {} is listed twice", name, ref.id));
            refs.push_back(ref);
        }
        (std::string_view(field) == "lora" ? r.lora : r.fv) = std::move(refs);
    }
    if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return bad("stream_options", "'stream_options' must be an object");
        if (auto iu = it->find("include_usage"); iu != it->end() && !iu->is_null()) {
            if (!iu->is_boolean()) return bad("stream_options.include_usage", "'include_usage' must be a boolean");
            r.include_usage = iu->get<bool>();
        }
    }
    *out = std::move(r);
    return std::nullopt;
}

}  // namespace strata::server
