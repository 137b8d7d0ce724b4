// Chat prompt formatting. SmolLM2 ships a ChatML Jinja template; we implement ChatML
// directly (with the model's default system prompt when the template carries one) rather
// than a Jinja interpreter. Unknown templates fall back to ChatML with a warning.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace strata {

struct ChatMessage {
    std::string role;     // "system", "user", "assistant", "tool"
    std::string content;  // plain text: never a source of control tokens
};

struct ChatTemplate {
    std::string default_system;  // emitted when the first message is not a system message
};

// Derives the template from the GGUF's tokenizer.chat_template text.
ChatTemplate chat_template_from_jinja(const std::string& jinja);

// A rendered prompt and the byte ranges [begin, end) of it that the template itself wrote
// (role markers, separators, the model's default system text). Tokenizer::encode(text,
// add_special, markup) matches control tokens only there, so message content can never
// become control tokens (docs/serving.md, "Prompt injection").
struct RenderedPrompt {
    std::string text;
    std::vector<std::pair<size_t, size_t>> markup;
};

// Renders messages; add_generation_prompt appends "<|im_start|>assistant\n".
RenderedPrompt render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                           bool add_generation_prompt);
// The rendered text alone (CLI chat, where the user at the terminal owns the whole prompt).
std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt);

}  // namespace strata
