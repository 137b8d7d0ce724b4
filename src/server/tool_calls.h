// Tool calling for any chat template (the "generic" format): the tool list is written into
// the system message as plain text and JSON, and the assistant's answer is constrained by a
// grammar to one JSON object -- {"tool_call": {"name": ..., "arguments": {...}}} or, when the
// model may answer in text (tool_choice auto), {"response": "..."}. SmolLM2's template (our
// default model) defines no tool-call markup, so this is the format it gets; the answer is
// parsed back into OpenAI's tool_calls. Tool calls and results in the history are rendered
// the same way, as message text (never control tokens). docs/serving.md, "Tools".
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "server/openai.h"

namespace strata::server {

// The system text that offers `tools` under `choice` (empty for kNone or no tools).
std::string tools_system_text(const std::vector<ToolDef>& tools, ToolChoice choice, const std::string& name);
// The JSON Schema the answer must satisfy (null when tools are off).
nlohmann::ordered_json tool_answer_schema(const std::vector<ToolDef>& tools, ToolChoice choice, const std::string& name);

struct ToolAnswer {
    bool is_call = false;
    std::string content;            // the text answer (not a call)
    std::string name, arguments;    // a call: arguments as JSON text
    bool parsed = false;            // the answer was the expected JSON object
};
ToolAnswer parse_tool_answer(const std::string& text);

// An assistant message's "tool_calls" as history text; *err is set on a malformed array.
std::string render_tool_calls(const nlohmann::json& tool_calls, std::string* err);
// A "tool" message's content as history text.
std::string render_tool_result(const std::string& tool_call_id, const std::string& content);

}  // namespace strata::server
