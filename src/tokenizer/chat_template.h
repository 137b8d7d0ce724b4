// Chat prompt formatting. SmolLM2 ships a ChatML Jinja template; we implement ChatML
// directly (with the model's default system prompt when the template carries one) rather
// than a Jinja interpreter. Unknown templates fall back to ChatML with a warning.
#pragma once

#include <string>
#include <vector>

namespace strata {

struct ChatMessage {
    std::string role;     // "system", "user", "assistant"
    std::string content;
};

struct ChatTemplate {
    std::string default_system;  // emitted when the first message is not a system message
};

// Derives the template from the GGUF's tokenizer.chat_template text.
ChatTemplate chat_template_from_jinja(const std::string& jinja);

// Renders messages; add_generation_prompt appends "<|im_start|>assistant\n".
std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt);

}  // namespace strata
