// Chat prompt formats (shared/specs/gguf-and-llama.md §5) and what we read from a model's
// Jinja template: which format it is (by markers, as llama.cpp's llm_chat_detect_template
// does) and, for ChatML, a literal default system message such as SmolLM2's "You are a
// helpful AI assistant named SmolLM, trained by Hugging Face". There is no Jinja
// interpreter here; tokenization of the rendered prompt is tokenizer.cpp's job.
//
// Where a format comes from:
//   chatml  the ChatML Jinja of SmolLM2 / Qwen2.5: every message as written.
//   gemma   llama.cpp's built-in LLM_CHAT_TEMPLATE_GEMMA: "assistant" is "model"; system
//           messages are trimmed and folded into the next non-model turn, followed by a blank
//           line (Gemma 3's Jinja folds a leading system message the same way, untrimmed);
//           content is trimmed (Jinja's |trim). No BOS: the tokenizer adds it (add_bos).
//   llama3  llama.cpp's built-in LLM_CHAT_TEMPLATE_LLAMA_3: role headers, trimmed content,
//           no "Cutting Knowledge Date" system block (Meta's Jinja adds one) and no BOS.
//   qwen3   Qwen3's Jinja (Qwen/Qwen3-0.6B) with its defaults, i.e. enable_thinking not set:
//           thinking stays on, so the generation prompt is a bare "<|im_start|>assistant\n"
//           (no empty <think></think> block); assistant turns before the last user query
//           lose their <think>...</think> part; the ones after it (the turn in progress, with
//           tool calls) keep it as "<think>\n...\n</think>\n\n"; consecutive tool results
//           share one user turn as <tool_response> blocks. Roles the Jinja would drop are
//           rendered ChatML-style instead of losing their content.
#include "tokenizer/chat_template.h"

#include <array>
#include <string_view>

#include "base/log.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

constexpr std::string_view kSystemOpen = "<|im_start|>system";
constexpr std::string_view kEnd = "<|im_end|>";

// Undoes the escapes of a Jinja string literal (\n, \t, \r, \\, \', \").
std::string unescape_jinja(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out.push_back(s[i]);
            continue;
        }
        const char c = s[++i];
        switch (c) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case '\\': case '\'': case '"': out.push_back(c); break;
            default: out.push_back('\\'), out.push_back(c); break;
        }
    }
    return out;
}

// True if the literal's closing quote or a Jinja tag occurs in s, i.e. s is not plain text
// inside one string literal (as in '<|im_start|>system\n' + messages[0]['content']).
bool leaves_literal(std::string_view s, char quote) {
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\') {
            ++i;
            continue;
        }
        if (quote ? s[i] == quote : (s[i] == '\'' || s[i] == '"')) return true;
    }
    return s.find("{{") != std::string_view::npos || s.find("{%") != std::string_view::npos;
}

constexpr std::array<std::pair<std::string_view, ChatFormat>, 4> kFormats = {{
    {"chatml", ChatFormat::kChatml},
    {"gemma", ChatFormat::kGemma},
    {"llama3", ChatFormat::kLlama3},
    {"qwen3", ChatFormat::kQwen3},
}};

bool contains(std::string_view s, std::string_view what) {
    return s.find(what) != std::string_view::npos;
}

// llama.cpp's trim (llama-chat.cpp): ASCII whitespace at both ends.
std::string_view trim(std::string_view s) {
    auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

std::string_view strip_newlines_left(std::string_view s) {
    while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
    return s;
}
std::string_view strip_newlines_right(std::string_view s) {
    while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    return s;
}

// Appends template text (recorded as markup) and message content (not) to a prompt.
struct Writer {
    RenderedPrompt r;
    void markup(std::string_view s) {
        if (s.empty()) return;
        r.markup.emplace_back(r.text.size(), r.text.size() + s.size());
        r.text += s;
    }
    void content(std::string_view s) { r.text += s; }
};

void render_chatml(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs, Writer& w) {
    // As the SmolLM2 template: the default system block is emitted inside the message loop,
    // so a conversation without messages gets none. Its text comes from the model file.
    if (!msgs.empty() && msgs[0].role != "system" && !tmpl.default_system.empty())
        w.markup("<|im_start|>system\n" + tmpl.default_system + "<|im_end|>\n");
    for (const ChatMessage& m : msgs) {
        w.markup("<|im_start|>" + m.role + "\n");
        w.content(m.content);
        w.markup("<|im_end|>\n");
    }
}

void render_gemma(const std::vector<ChatMessage>& msgs, Writer& w) {
    std::string system;  // system text waiting for the next non-model turn
    for (const ChatMessage& m : msgs) {
        if (m.role == "system") {
            system += trim(m.content);
            continue;
        }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        w.markup("<start_of_turn>" + role + "\n");
        if (!system.empty() && role != "model") {
            w.content(system);
            w.markup("\n\n");
            system.clear();
        }
        w.content(trim(m.content));
        w.markup("<end_of_turn>\n");
    }
}

void render_llama3(const std::vector<ChatMessage>& msgs, Writer& w) {
    for (const ChatMessage& m : msgs) {
        w.markup("<|start_header_id|>" + m.role + "<|end_header_id|>\n\n");
        w.content(trim(m.content));
        w.markup("<|eot_id|>");
    }
}

void render_qwen3(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs, Writer& w) {
    if (!msgs.empty() && msgs[0].role != "system" && !tmpl.default_system.empty())
        w.markup("<|im_start|>system\n" + tmpl.default_system + "<|im_end|>\n");
    // The last user message that is not a wrapped tool result; assistant turns after it
    // are the turn in progress.
    size_t last_query = msgs.empty() ? 0 : msgs.size() - 1;
    for (size_t i = msgs.size(); i-- > 0;) {
        const std::string_view c = msgs[i].content;
        const bool tool_result = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
        if (msgs[i].role == "user" && !tool_result) {
            last_query = i;
            break;
        }
    }
    for (size_t i = 0; i < msgs.size(); ++i) {
        const ChatMessage& m = msgs[i];
        const bool last = i + 1 == msgs.size();
        if (m.role == "assistant") {
            std::string_view content = m.content, reasoning;
            if (const size_t end = content.find("</think>"); end != std::string_view::npos) {
                // Jinja: reasoning = content.split('</think>')[0].rstrip('\n')
                //                    .split('<think>')[-1].lstrip('\n');
                //        content = content.split('</think>')[-1].lstrip('\n')
                reasoning = strip_newlines_right(content.substr(0, end));
                if (const size_t open = reasoning.rfind("<think>"); open != std::string_view::npos)
                    reasoning = reasoning.substr(open + 7);
                reasoning = strip_newlines_left(reasoning);
                content = strip_newlines_left(content.substr(content.rfind("</think>") + 8));
            }
            if (i > last_query && (last || !reasoning.empty())) {
                w.markup("<|im_start|>assistant\n<think>\n");
                w.content(strip_newlines_right(strip_newlines_left(reasoning)));
                w.markup("\n</think>\n\n");
                w.content(strip_newlines_left(content));
            } else {
                w.markup("<|im_start|>assistant\n");
                w.content(content);
            }
            w.markup("<|im_end|>\n");
        } else if (m.role == "tool") {
            if (i == 0 || msgs[i - 1].role != "tool") w.markup("<|im_start|>user");
            w.markup("\n<tool_response>\n");
            w.content(m.content);
            w.markup("\n</tool_response>");
            if (last || msgs[i + 1].role != "tool") w.markup("<|im_end|>\n");
        } else {  // user, system (first or not), and any other role
            w.markup("<|im_start|>" + m.role + "\n");
            w.content(m.content);
            w.markup("<|im_end|>\n");
        }
    }
}

}  // namespace

std::string_view chat_template_name(ChatFormat f) {
    for (const auto& [name, format] : kFormats)
        if (format == f) return name;
    return "chatml";
}

std::string_view chat_template_names() {
    static const std::string names = [] {
        std::string s;
        for (const auto& [name, format] : kFormats) s += (s.empty() ? "" : ", ") + std::string(name);
        return s;
    }();
    return names;
}

Result<ChatTemplate> chat_template_by_name(std::string_view name) {
    for (const auto& [n, format] : kFormats)
        if (n == name) return ChatTemplate{{}, format};
    return invalid_input("unknown chat template \"{}\" (known: {})", name, chat_template_names());
}

ChatTemplate chat_template_from_jinja(const std::string& jinja) {
    ChatTemplate t;
    if (jinja.empty()) return t;
    const std::string_view j = jinja;
    // Markers in llama.cpp's detection order (llm_chat_detect_template); Qwen3 is the
    // ChatML template that splits reasoning at </think> in its multi-step tool loop.
    if (contains(j, "<|im_start|>")) {
        if (contains(j, "multi_step_tool") && contains(j, "</think>")) t.format = ChatFormat::kQwen3;
    } else if (contains(j, "<start_of_turn>")) {
        t.format = ChatFormat::kGemma;
        return t;
    } else if (contains(j, "<|start_header_id|>") && contains(j, "<|end_header_id|>")) {
        t.format = ChatFormat::kLlama3;
        return t;
    } else {
        log_warn("chat template is not one we know (known: {}); formatting prompts as ChatML",
                 chat_template_names());
        return t;
    }
    // Look for a literal '<|im_start|>system<newline>TEXT<|im_end|>' inside one string.
    for (size_t at = j.find(kSystemOpen); at != std::string_view::npos;
         at = j.find(kSystemOpen, at + 1)) {
        size_t body = at + kSystemOpen.size();
        if (j.substr(body, 1) == "\n") body += 1;
        else if (j.substr(body, 2) == "\\n") body += 2;
        else continue;
        const size_t end = j.find(kEnd, body);
        if (end == std::string_view::npos) break;
        const char before = at > 0 ? j[at - 1] : 0;
        const char quote = (before == '\'' || before == '"') ? before : 0;
        const std::string_view text = j.substr(body, end - body);
        if (text.empty() || leaves_literal(text, quote)) continue;
        t.default_system = unescape_jinja(text);
        break;
    }
    return t;
}

ChatTemplate chat_template_for(const Vocab& vocab) {
    if (!vocab.chat_template.empty()) return chat_template_from_jinja(vocab.chat_template);
    for (const std::string& tok : vocab.tokens)
        if (tok == "<start_of_turn>") return ChatTemplate{{}, ChatFormat::kGemma};
    return ChatTemplate{};
}

RenderedPrompt render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                           bool add_generation_prompt) {
    Writer w;
    switch (tmpl.format) {
        case ChatFormat::kChatml:
            render_chatml(tmpl, msgs, w);
            if (add_generation_prompt) w.markup("<|im_start|>assistant\n");
            break;
        case ChatFormat::kGemma:
            render_gemma(msgs, w);
            if (add_generation_prompt) w.markup("<start_of_turn>model\n");
            break;
        case ChatFormat::kLlama3:
            render_llama3(msgs, w);
            if (add_generation_prompt) w.markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
            break;
        case ChatFormat::kQwen3:
            render_qwen3(tmpl, msgs, w);
            if (add_generation_prompt) w.markup("<|im_start|>assistant\n");
            break;
    }
    return std::move(w.r);
}

std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt) {
    return render_chat(tmpl, msgs, add_generation_prompt).text;
}

}  // namespace strata
