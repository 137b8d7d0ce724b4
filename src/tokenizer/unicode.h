// Unicode pieces of the byte-level BPE tokenizer (shared/specs/gguf-and-llama.md §4.2):
// lenient UTF-8 decoding, the three character classes the pre-tokenizers need
// (\p{L}, \p{N}, White_Space, taken from ICU), the GPT-2 byte <-> code point map, and the
// pre-tokenizers themselves (gpt2, smollm, qwen2), which cut text into byte ranges exactly
// like llama.cpp's hand-written matchers. BPE merging and vocab lookup live in tokenizer.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::unicode {

// An invalid UTF-8 byte b decodes to kInvalidByte + b: outside Unicode, so it can never be
// confused with a real code point, and the original byte is kept (round trip of any bytes).
// llama.cpp substitutes U+FFFD instead; we classify such a byte like U+FFFD (a symbol) so
// only the bytes differ, never the piece boundaries. (tokenizer.cpp still substitutes
// U+FFFD for the invalid bytes a vocab has no symbol for.)
inline constexpr uint32_t kInvalidByte = 0x110000;

// Decodes the code point starting at s[pos] (pos < s.size()) into *cpt and returns the
// number of bytes used (1..4). Overlong forms, surrogates, values above U+10FFFF and
// truncated sequences are invalid: only their first byte is consumed.
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cpt);

// Appends the UTF-8 form of a valid code point (cpt <= 0x10FFFF).
void append_utf8(std::string* out, uint32_t cpt);

// Character classes as bit flags; a code point that is none of these (punctuation,
// symbols, marks, controls, unassigned, invalid bytes) has flags 0.
enum CptFlag : uint8_t {
    kLetter = 1,      // general category L* (Lu Ll Lt Lm Lo), regex \p{L}
    kNumber = 2,      // general category N* (Nd Nl No), regex \p{N}
    kWhitespace = 4,  // Unicode White_Space property (llama.cpp's unicode_set_whitespace)
};
uint8_t cpt_flags(uint32_t cpt);
inline bool is_letter(uint32_t cpt) { return cpt_flags(cpt) & kLetter; }
inline bool is_number(uint32_t cpt) { return cpt_flags(cpt) & kNumber; }
inline bool is_whitespace(uint32_t cpt) { return cpt_flags(cpt) & kWhitespace; }

// GPT-2 byte map: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in increasing byte order (space -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
uint32_t byte_to_cpt(uint8_t b);
const std::string& byte_to_utf8(uint8_t b);  // UTF-8 of byte_to_cpt(b)
int cpt_to_byte(uint32_t cpt);               // inverse map; -1 when cpt is not in the map

// A piece of pre-tokenized text: byte offsets [begin, end) into the input.
struct Span {
    size_t begin = 0;
    size_t end = 0;
};

// The byte-level BPE pre-tokenizers (tokenizer.ggml.pre) we implement:
//   kGpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   kSmollm: every \p{N} code point cut out as its own piece first, then kGpt2 inside each
//            remaining piece (llama.cpp applies its regex list in sequence)
//   kQwen2:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//            \s*[\r\n]+|\s+(?!\S)|\s+   (Qwen2/2.5/3's tokenizer.json pattern)
// each applied left to right as llama.cpp's hand-written matchers do.
enum class PreTokenizer : uint8_t { kGpt2, kSmollm, kQwen2 };

// Appends the pieces, in order and covering all of text, to *out.
void pretokenize(std::string_view text, PreTokenizer pre, std::vector<Span>* out);

}  // namespace strata::unicode
