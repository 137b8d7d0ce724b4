// ChatML prompt formatting (shared/specs/gguf-and-llama.md §5) and the one thing we read
// from the model's Jinja template: a literal default system message such as SmolLM2's
// "You are a helpful AI assistant named SmolLM, trained by Hugging Face". There is no Jinja
// interpreter here; tokenization of the rendered prompt is tokenizer.cpp's job.
#include "tokenizer/chat_template.h"

#include <string_view>

#include "base/log.h"

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

}  // namespace

ChatTemplate chat_template_from_jinja(const std::string& jinja) {
    ChatTemplate t;
    if (jinja.empty()) return t;
    if (jinja.find("<|im_start|>") == std::string::npos)
        log_warn("chat template is not ChatML; formatting prompts as ChatML anyway");
    const std::string_view j = jinja;
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

RenderedPrompt render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                           bool add_generation_prompt) {
    RenderedPrompt r;
    auto markup = [&r](std::string_view s) {
        r.markup.emplace_back(r.text.size(), r.text.size() + s.size());
        r.text += s;
    };
    // As the SmolLM2 template: the default system block is emitted inside the message loop,
    // so a conversation without messages gets none. Its text comes from the model file.
    if (!msgs.empty() && msgs[0].role != "system" && !tmpl.default_system.empty())
        markup("<|im_start|>system\n" + tmpl.default_system + "<|im_end|>\n");
    for (const ChatMessage& m : msgs) {
        markup("<|im_start|>" + m.role + "\n");
        r.text += m.content;
        markup("<|im_end|>\n");
    }
    if (add_generation_prompt) markup("<|im_start|>assistant\n");
    return r;
}

std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt) {
    return render_chat(tmpl, msgs, add_generation_prompt).text;
}

}  // namespace strata
