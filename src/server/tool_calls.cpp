#include "server/tool_calls.h"

#include <fmt/format.h>

namespace strata::server {

using json = nlohmann::json;

namespace {

using ojson = nlohmann::ordered_json;

ojson call_schema(const ToolDef& t) {
    ojson params = t.parameters.empty() ? ojson{{"type", "object"}} : t.parameters;
    return {{"type", "object"},
            {"properties", {{"name", {{"const", t.name}}}, {"arguments", params}}},
            {"required", {"name", "arguments"}},
            {"additionalProperties", false}};
}

}  // namespace

std::string tools_system_text(const std::vector<ToolDef>& tools, ToolChoice choice, const std::string& name) {
    if (tools.empty() || choice == ToolChoice::kNone) return "";
    ojson list = ojson::array();
    for (const ToolDef& t : tools) {
        if (choice == ToolChoice::kNamed && t.name != name) continue;
        ojson f = {{"name", t.name}, {"parameters", t.parameters}};
        if (!t.description.empty()) f["description"] = t.description;
        list.push_back(f);
    }
    std::string s = "You can call these functions:\n" + list.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
    if (choice == ToolChoice::kAuto)
        s += "Answer with one JSON object: {\"tool_call\": {\"name\": <function name>, \"arguments\": {...}}} to "
             "call a function, or {\"response\": <your answer>} to answer directly.";
    else
        s += "Answer with one JSON object: {\"tool_call\": {\"name\": <function name>, \"arguments\": {...}}}.";
    return s;
}

ojson tool_answer_schema(const std::vector<ToolDef>& tools, ToolChoice choice, const std::string& name) {
    if (tools.empty() || choice == ToolChoice::kNone) return nullptr;
    ojson calls = ojson::array();
    for (const ToolDef& t : tools)
        if (choice != ToolChoice::kNamed || t.name == name) calls.push_back(call_schema(t));
    ojson call = calls.size() == 1 ? calls[0] : ojson{{"anyOf", calls}};
    ojson call_obj = {{"type", "object"},
                     {"properties", {{"tool_call", call}}},
                     {"required", {"tool_call"}},
                     {"additionalProperties", false}};
    if (choice != ToolChoice::kAuto) return call_obj;
    ojson text_obj = {{"type", "object"},
                     {"properties", {{"response", {{"type", "string"}}}}},
                     {"required", {"response"}},
                     {"additionalProperties", false}};
    return {{"anyOf", {call_obj, text_obj}}};
}

ToolAnswer parse_tool_answer(const std::string& text) {
    ToolAnswer a;
    json j = json::parse(text, nullptr, false);
    if (j.is_object()) {
        if (auto c = j.find("tool_call"); c != j.end() && c->is_object() && c->contains("name") &&
                                          (*c)["name"].is_string()) {
            a.is_call = a.parsed = true;
            a.name = (*c)["name"].get<std::string>();
            a.arguments = c->contains("arguments") ? (*c)["arguments"].dump(-1, ' ', false, json::error_handler_t::replace)
                                                   : "{}";
            return a;
        }
        if (auto r = j.find("response"); r != j.end() && r->is_string()) {
            a.parsed = true;
            a.content = r->get<std::string>();
            return a;
        }
    }
    a.content = text;  // not the expected object (e.g. cut by max_tokens): returned as text
    return a;
}

std::string render_tool_calls(const json& tool_calls, std::string* err) {
    if (!tool_calls.is_array()) {
        *err = "'tool_calls' must be an array";
        return "";
    }
    std::string out;
    for (size_t i = 0; i < tool_calls.size(); ++i) {
        const json& c = tool_calls[i];
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
            !c["function"].contains("name") || !c["function"]["name"].is_string()) {
            *err = fmt::format("'tool_calls[{}]' must be {{\"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}", i);
            return "";
        }
        json args = json::object();
        if (auto a = c["function"].find("arguments"); a != c["function"].end() && !a->is_null()) {
            if (!a->is_string()) {
                *err = fmt::format("'tool_calls[{}].function.arguments' must be a string of JSON", i);
                return "";
            }
            args = json::parse(a->get<std::string>(), nullptr, false);
            if (args.is_discarded()) args = a->get<std::string>();
        }
        if (!out.empty()) out += "\n";
        out += json{{"tool_call", {{"name", c["function"]["name"]}, {"arguments", args}}}}.dump(
            -1, ' ', false, json::error_handler_t::replace);
    }
    return out;
}

std::string render_tool_result(const std::string& tool_call_id, const std::string& content) {
    json r = {{"tool_response", {{"content", content}}}};
    if (!tool_call_id.empty()) r["tool_response"]["tool_call_id"] = tool_call_id;
    return r.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace strata::server
