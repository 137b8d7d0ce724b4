// Unit tests of the server's pieces below the routes: key comparison, the Prometheus
// histogram, request parsing of the OpenAI fields, and the generic tool-call format.
#include <gtest/gtest.h>

#include "server/metrics.h"
#include "server/openai.h"
#include "server/tool_calls.h"
#include "server/transport.h"

namespace strata::server {
namespace {

TEST(Transport, KeysEqual) {
    EXPECT_TRUE(keys_equal("secret", "secret"));
    EXPECT_TRUE(keys_equal("", ""));
    EXPECT_FALSE(keys_equal("secret", "secreT"));
    EXPECT_FALSE(keys_equal("secret", "secret2"));
    EXPECT_FALSE(keys_equal("secret2", "secret"));
    EXPECT_FALSE(keys_equal("", "x"));
    EXPECT_FALSE(keys_equal(std::string("a\0b", 3), "a"));
}

TEST(Metrics, HistogramIsCumulative) {
    Histogram h({0.1, 1.0});
    for (double v : {0.05, 0.1, 0.5, 2.0, 3.0}) h.observe(v);
    const std::string m = h.render("x_seconds", "help");
    EXPECT_NE(m.find("# TYPE strata_x_seconds histogram"), std::string::npos);
    EXPECT_NE(m.find("strata_x_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos) << m;
    EXPECT_NE(m.find("strata_x_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << m;
    EXPECT_NE(m.find("strata_x_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos) << m;
    EXPECT_NE(m.find("strata_x_seconds_sum 5.65\n"), std::string::npos) << m;
    EXPECT_NE(m.find("strata_x_seconds_count 5\n"), std::string::npos) << m;
}

TEST(Metrics, NoPerRequestPrefixFigures) {
    ServerMetrics m;
    engine::EngineStats s;
    s.prefix_reused_tokens = 123;
    m.count_finish("stop");
    m.count_status(200);
    const std::string text = m.render(s);
    EXPECT_EQ(text.find("prefix"), std::string::npos);
    EXPECT_NE(text.find("strata_requests_by_finish_reason_total{reason=\"stop\"} 1"), std::string::npos);
    EXPECT_NE(text.find("strata_http_responses_total{code=\"200\"} 1"), std::string::npos);
}

CompletionRequest parse_ok(const std::string& body, bool chat = true) {
    CompletionRequest r;
    auto e = parse_completion(body, chat, &r, 1000);
    EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
    return r;
}

std::string parse_err(const std::string& body, bool chat = true) {
    CompletionRequest r;
    auto e = parse_completion(body, chat, &r, 1000);
    EXPECT_TRUE(e.has_value()) << body;
    return e ? e->param + ": " + e->message : "";
}

TEST(OpenAI, NewFields) {
    const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
    auto r = parse_ok("{" + msgs + R"(,"n":3,"logprobs":true,"top_logprobs":4,"presence_penalty":1.5,
        "frequency_penalty":-0.5,"logit_bias":{"7":-100,"12":2.5}})");
    EXPECT_EQ(r.n, 3);
    EXPECT_EQ(r.logprobs, 4);
    EXPECT_EQ(r.max_tokens, 0);  // not given: the room left in the context
    EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 1.5f);
    EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
    ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
    auto c = parse_ok(R"({"prompt":"x","logprobs":2,"echo":true})", false);
    EXPECT_EQ(c.logprobs, 2);
    EXPECT_TRUE(c.echo);
    EXPECT_EQ(parse_ok("{" + msgs + R"(,"logprobs":false})").logprobs, -1);

    EXPECT_NE(parse_err("{" + msgs + R"(,"n":9})").find("'n'"), std::string::npos);
    EXPECT_EQ(parse_err("{" + msgs + R"(,"top_logprobs":2})").rfind("top_logprobs", 0), 0u);
    EXPECT_EQ(parse_err("{" + msgs + R"(,"logit_bias":{"1000":1}})").rfind("logit_bias", 0), 0u);
    EXPECT_EQ(parse_err("{" + msgs + R"(,"logit_bias":{"x":1}})").rfind("logit_bias", 0), 0u);
    EXPECT_EQ(parse_err("{" + msgs + R"(,"logit_bias":{"3":100.5}})").rfind("logit_bias", 0), 0u);
    EXPECT_EQ(parse_err("{" + msgs + R"(,"presence_penalty":2.5})").rfind("presence_penalty", 0), 0u);
    EXPECT_EQ(parse_err(R"({"prompt":"x","suffix":"y"})", false).rfind("suffix", 0), 0u);
    EXPECT_EQ(parse_err(R"({"prompt":"x","logprobs":6})", false).rfind("logprobs", 0), 0u);
}

TEST(OpenAI, ResponseFormatKeepsPropertyOrder) {
    auto r = parse_ok(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",
        "json_schema":{"name":"p","schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}}}}})");
    EXPECT_EQ(r.format, ResponseFormat::kJsonSchema);
    EXPECT_EQ(r.schema["properties"].begin().key(), "zeta");
    EXPECT_EQ(parse_ok(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})").format,
              ResponseFormat::kJsonObject);
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"yaml"}})")
                  .rfind("response_format.type", 0),
              0u);
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",
        "json_schema":{"name":"bad name","schema":{}}}})")
                  .rfind("response_format.json_schema.name", 0),
              0u);
}

TEST(OpenAI, ToolsAndToolRole) {
    const std::string tools =
        R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
        "properties":{"city":{"type":"string"}}}}}])";
    auto r = parse_ok(R"({"messages":[{"role":"user","content":"w?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"sunny"}],)" + tools + R"(,"tool_choice":"required"})");
    ASSERT_EQ(r.tools.size(), 1u);
    EXPECT_EQ(r.tool_choice, ToolChoice::kRequired);
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[1].content, R"({"tool_call":{"arguments":{"city":"Paris"},"name":"get_weather"}})");
    EXPECT_EQ(r.messages[2].role, "tool");
    EXPECT_EQ(r.messages[2].content, R"({"tool_response":{"content":"sunny","tool_call_id":"c1"}})");
    auto named = parse_ok(R"({"messages":[{"role":"user","content":"w?"}],)" + tools +
                          R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}}})");
    EXPECT_EQ(named.tool_choice, ToolChoice::kNamed);
    EXPECT_EQ(named.tool_name, "get_weather");
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"w?"}],)" + tools +
                        R"(,"tool_choice":{"type":"function","function":{"name":"nope"}}})")
                  .rfind("tool_choice", 0),
              0u);
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"w?"}],"tool_choice":"required"})").rfind("tool_choice", 0),
              0u);
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"w?"}],"tools":[{"type":"function","function":{"name":"a b"}}]})")
                  .rfind("tools[0].function.name", 0),
              0u);
    EXPECT_EQ(parse_err(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})").rfind("messages[0].tool_calls", 0),
              0u);
}

TEST(ToolCalls, AnswerSchemaAndParsing) {
    std::vector<ToolDef> tools(2);
    tools[0].name = "a";
    tools[1].name = "b";
    EXPECT_TRUE(tool_answer_schema(tools, ToolChoice::kNone, "").is_null());
    const auto req = tool_answer_schema(tools, ToolChoice::kRequired, "");
    EXPECT_EQ(req["required"][0], "tool_call");
    EXPECT_EQ(req["properties"]["tool_call"]["anyOf"].size(), 2u);
    const auto named = tool_answer_schema(tools, ToolChoice::kNamed, "b");
    EXPECT_EQ(named["properties"]["tool_call"]["properties"]["name"]["const"], "b");
    EXPECT_EQ(tool_answer_schema(tools, ToolChoice::kAuto, "")["anyOf"].size(), 2u);
    EXPECT_TRUE(tools_system_text(tools, ToolChoice::kNone, "").empty());
    EXPECT_NE(tools_system_text(tools, ToolChoice::kNamed, "b").find("\"b\""), std::string::npos);
    EXPECT_EQ(tools_system_text(tools, ToolChoice::kNamed, "b").find("\"a\""), std::string::npos);

    auto call = parse_tool_answer(R"({"tool_call": {"name": "a", "arguments": {"x": 1}}})");
    EXPECT_TRUE(call.is_call && call.parsed);
    EXPECT_EQ(call.name, "a");
    EXPECT_EQ(call.arguments, R"({"x":1})");
    auto text = parse_tool_answer(R"({"response": "hello"})");
    EXPECT_FALSE(text.is_call);
    EXPECT_EQ(text.content, "hello");
    auto cut = parse_tool_answer(R"({"tool_call": {"na)");
    EXPECT_FALSE(cut.is_call || cut.parsed);
    EXPECT_EQ(cut.content, R"({"tool_call": {"na)");
}

}  // namespace
}  // namespace strata::server
