// Field-by-field validation of /v1/chat/completions and /v1/completions bodies.
#include "server/openai.h"
#include "server/tool_calls.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
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

bool valid_function_name(const std::string& n) {
    if (n.empty() || n.size() > 64) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
}

// oj: the same body with its key order kept (JSON Schemas list properties in the order the
// answer should have them).
std::optional<ApiError> parse_tools(const nlohmann::json& j, const nlohmann::ordered_json& oj, CompletionRequest* r) {
    if (auto it = j.find("tools"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) return bad("tools", "'tools' must be an array");
        if (it->size() > size_t(kMaxTools)) return bad("tools", fmt::format("'tools' takes at most {} entries", kMaxTools));
        for (size_t i = 0; i < it->size(); ++i) {
            const auto& t = (*it)[i];
            const std::string p = fmt::format("tools[{}]", i);
            if (!t.is_object() || t.value("type", nlohmann::json()) != "function")
                return bad(p, fmt::format("'{}' must be an object with \"type\": \"function\"", p));
            auto f = t.find("function");
            if (f == t.end() || !f->is_object()) return bad(p + ".function", fmt::format("'{}.function' must be an object", p));
            ToolDef d;
            auto name = f->find("name");
            if (name == f->end() || !name->is_string() || !valid_function_name(name->get<std::string>()))
                return bad(p + ".function.name", "function names must match ^[a-zA-Z0-9_-]{1,64}$");
            d.name = name->get<std::string>();
            if (auto de = f->find("description"); de != f->end() && !de->is_null()) {
                if (!de->is_string()) return bad(p + ".function.description", "'description' must be a string");
                d.description = de->get<std::string>();
            }
            if (auto pa = f->find("parameters"); pa != f->end() && !pa->is_null()) {
                if (!pa->is_object()) return bad(p + ".function.parameters", "'parameters' must be a JSON Schema object");
                d.parameters = oj["tools"][i]["function"]["parameters"];
            }
            for (const ToolDef& o : r->tools)
                if (o.name == d.name) return bad(p + ".function.name", fmt::format("function '{}' is listed twice", d.name));
            r->tools.push_back(std::move(d));
        }
    }
    if (auto it = j.find("tool_choice"); it != j.end() && !it->is_null()) {
        if (it->is_string()) {
            const std::string c = it->get<std::string>();
            if (c == "none") r->tool_choice = ToolChoice::kNone;
            else if (c == "auto") r->tool_choice = ToolChoice::kAuto;
            else if (c == "required") r->tool_choice = ToolChoice::kRequired;
            else return bad("tool_choice", "'tool_choice' must be none, auto, required or {\"type\": \"function\", ...}");
        } else if (it->is_object() && it->value("type", nlohmann::json()) == "function" && it->contains("function") &&
                   (*it)["function"].is_object() && (*it)["function"].contains("name") &&
                   (*it)["function"]["name"].is_string()) {
            r->tool_choice = ToolChoice::kNamed;
            r->tool_name = (*it)["function"]["name"].get<std::string>();
            bool found = false;
            for (const ToolDef& d : r->tools) found |= d.name == r->tool_name;
            if (!found) return bad("tool_choice", fmt::format("tool_choice names '{}', which is not in 'tools'", r->tool_name));
        } else {
            return bad("tool_choice", "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
        if (r->tool_choice == ToolChoice::kRequired && r->tools.empty())
            return bad("tool_choice", "tool_choice 'required' needs 'tools'");
    }
    return std::nullopt;
}

std::optional<ApiError> parse_response_format(const nlohmann::json& j, const nlohmann::ordered_json& oj,
                                              CompletionRequest* r) {
    auto it = j.find("response_format");
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
        return bad("response_format", "'response_format' must be an object with a 'type'");
    const std::string type = (*it)["type"].get<std::string>();
    if (type == "text") return std::nullopt;
    if (type == "json_object") {
        r->format = ResponseFormat::kJsonObject;
        return std::nullopt;
    }
    if (type != "json_schema")
        return bad("response_format.type", fmt::format("'response_format.type' must be text, json_object or json_schema (got '{}')", type));
    auto js = it->find("json_schema");
    if (js == it->end() || !js->is_object()) return bad("response_format.json_schema", "'json_schema' must be an object");
    auto name = js->find("name");
    if (name == js->end() || !name->is_string() || !valid_function_name(name->get<std::string>()))
        return bad("response_format.json_schema.name", "'json_schema.name' must match ^[a-zA-Z0-9_-]{1,64}$");
    auto schema = js->find("schema");
    if (schema != js->end() && !schema->is_null() && !schema->is_object())
        return bad("response_format.json_schema.schema", "'json_schema.schema' must be a JSON Schema object");
    r->format = ResponseFormat::kJsonSchema;
    r->schema = (schema == js->end() || schema->is_null()) ? nlohmann::ordered_json::object()
                                                           : oj["response_format"]["json_schema"]["schema"];
    return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_completion(const std::string& body, bool chat, CompletionRequest* out,
                                         int32_t n_vocab) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return bad("", "request body is not valid JSON");
    if (!j.is_object()) return bad("", "request body must be a JSON object");
    CompletionRequest r;
    r.chat = chat;
    // The same body with its key order kept, for the fields that carry JSON Schemas (the
    // answer lists properties in schema order); parsed once, only when one is present.
    const nlohmann::ordered_json oj = (j.contains("tools") || j.contains("response_format"))
                                          ? nlohmann::ordered_json::parse(body, nullptr, false)
                                          : nlohmann::ordered_json::object();
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
            if (rs != "system" && rs != "user" && rs != "assistant" && rs != "developer" && rs != "tool")
                return bad(p + ".role",
                           fmt::format("'{}.role' must be system, developer, user, assistant or tool (got '{}')", p, rs));
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
            if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
                if (rs != "assistant") return bad(p + ".tool_calls", "only assistant messages carry 'tool_calls'");
                std::string err;
                const std::string calls = render_tool_calls(*tc, &err);
                if (!err.empty()) return bad(p + ".tool_calls", err);
                text = text.empty() ? calls : text + "\n" + calls;
            }
            if (rs == "tool") {
                auto id = m.find("tool_call_id");
                if (id != m.end() && !id->is_null() && !id->is_string())
                    return bad(p + ".tool_call_id", "'tool_call_id' must be a string");
                text = render_tool_result(id != m.end() && id->is_string() ? id->get<std::string>() : "", text);
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
        if (auto it2 = j.find("suffix"); it2 != j.end() && !it2->is_null() &&
                                          !(it2->is_string() && it2->get<std::string>().empty()))
            return bad("suffix", "'suffix' is not supported: this server has no fill-in-the-middle template");
        if (auto it2 = j.find("echo"); it2 != j.end() && !it2->is_null()) {
            if (!it2->is_boolean()) return bad("echo", "'echo' must be a boolean");
            r.echo = it2->get<bool>();
        }
        if (auto it2 = j.find("logprobs"); it2 != j.end() && !it2->is_null()) {
            if (!it2->is_number_integer() || it2->get<int64_t>() < 0 || it2->get<int64_t>() > 5)
                return bad("logprobs", "'logprobs' must be an integer in [0, 5]");
            r.logprobs = int32_t(it2->get<int64_t>());
        }
    }
    if (chat) {
        bool want = false;
        if (auto it = j.find("logprobs"); it != j.end() && !it->is_null()) {
            if (!it->is_boolean()) return bad("logprobs", "'logprobs' must be a boolean");
            want = it->get<bool>();
        }
        int32_t top = 0;
        if (auto it = j.find("top_logprobs"); it != j.end() && !it->is_null()) {
            if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxTopLogprobs)
                return bad("top_logprobs", fmt::format("'top_logprobs' must be an integer in [0, {}]", kMaxTopLogprobs));
            if (!want) return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
            top = int32_t(it->get<int64_t>());
        }
        if (want) r.logprobs = top;
        if (auto e = parse_tools(j, oj, &r)) return e;
    }
    if (auto e = parse_response_format(j, oj, &r)) return e;
    if (r.format != ResponseFormat::kText && !r.tools.empty() && r.tool_choice != ToolChoice::kNone)
        return bad("response_format", "'response_format' cannot be combined with 'tools' (use tool_choice none)");
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
        if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > kMaxChoices)
            return bad("n", fmt::format("'n' must be an integer in [1, {}]", kMaxChoices));
        r.n = int(it->get<int64_t>());
    }
    if (auto e = num(j, "presence_penalty", &r.sampling.presence_penalty, -2.0, 2.0)) return e;
    if (auto e = num(j, "frequency_penalty", &r.sampling.frequency_penalty, -2.0, 2.0)) return e;
    if (auto it = j.find("logit_bias"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return bad("logit_bias", "'logit_bias' must be an object of token id -> bias");
        if (it->size() > size_t(kMaxLogitBias))
            return bad("logit_bias", fmt::format("'logit_bias' takes at most {} entries", kMaxLogitBias));
        for (const auto& [key, val] : it->items()) {
            int64_t id = -1;
            const auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
            if (ec != std::errc() || ptr != key.data() + key.size() || id < 0 || id >= n_vocab)
                return bad("logit_bias", fmt::format("'logit_bias' keys must be token ids in [0, {}) (got '{}')", n_vocab, key));
            if (!val.is_number() || !(val.get<double>() >= -100 && val.get<double>() <= 100))
                return bad("logit_bias", fmt::format("'logit_bias' values must be numbers in [-100, 100] (token {})", id));
            r.sampling.logit_bias.emplace_back(int32_t(id), float(val.get<double>()));
        }
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
