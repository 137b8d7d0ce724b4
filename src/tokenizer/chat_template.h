// Chat prompt formatting. No Jinja interpreter: a model's tokenizer.chat_template is
// recognized by its distinctive markers and rendered by one of a few named formats written
// out in C++ (chatml, gemma, llama3, qwen3), each with the byte ranges that are template
// text, so message content never becomes control tokens. Unknown templates fall back to
// ChatML with a warning. Tokenizing the result is tokenizer.h's job.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace strata {

struct Vocab;

struct ChatMessage {
    std::string role;     // "system", "user", "assistant", "tool"
    std::string content;  // plain text: never a source of control tokens
};

// The formats we render; their names (chat_template_by_name, --chat-template) are stable.
enum class ChatFormat : uint8_t {
    kChatml,  // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2.5)
    kGemma,   // <start_of_turn>user\n...<end_of_turn>\n, assistant -> "model", system folded
    kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
    kQwen3,   // ChatML with Qwen3's <think> handling
};

struct ChatTemplate {
    // chatml / qwen3: emitted when the first message is not a system message. From the
    // model's Jinja text (SmolLM2's "You are a helpful AI assistant named SmolLM, ...").
    std::string default_system;
    ChatFormat format = ChatFormat::kChatml;
};

std::string_view chat_template_name(ChatFormat f);
// "chatml, gemma, llama3, qwen3": the known names, for help text and errors.
std::string_view chat_template_names();
// A named format without a default system message; an unknown name is an error that lists
// the known ones.
Result<ChatTemplate> chat_template_by_name(std::string_view name);

// Derives the template from the GGUF's tokenizer.chat_template text (empty: ChatML).
ChatTemplate chat_template_from_jinja(const std::string& jinja);
// The template for a model: from its Jinja text when the file has one; otherwise gemma when
// the vocab has <start_of_turn> (Gemma 3 base models ship no template), else ChatML.
ChatTemplate chat_template_for(const Vocab& vocab);

// A rendered prompt and the byte ranges [begin, end) of it that the template itself wrote
// (role markers, separators, the model's default system text). Tokenizer::encode(text,
// add_special, markup) matches control tokens only there, so message content can never
// become control tokens (docs/serving.md, "Prompt injection"). The text carries no BOS:
// encode with add_special = true where the vocab adds one (Gemma, Llama 3).
struct RenderedPrompt {
    std::string text;
    std::vector<std::pair<size_t, size_t>> markup;
};

// Renders messages; add_generation_prompt appends the assistant turn's opening
// ("<|im_start|>assistant\n" for ChatML).
RenderedPrompt render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                           bool add_generation_prompt);
// The rendered text alone (CLI chat, where the user at the terminal owns the whole prompt).
std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt);

}  // namespace strata
