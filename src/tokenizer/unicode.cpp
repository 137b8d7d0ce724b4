// UTF-8 decoding, ICU-backed character classes, the GPT-2 byte map and the GPT-2 /
// smollm / qwen2 pre-tokenizers. The matchers mirror llama.cpp's
// unicode_regex_split_custom_gpt2 and _qwen2 (src/unicode.cpp) branch for branch, because
// the "regex" semantics that matter (which space joins which word, where a whitespace run
// is cut) are defined by that code, not by a regex engine. See unicode.h for the contracts.
#include "tokenizer/unicode.h"

#include <array>

#include <unicode/uchar.h>

namespace strata::unicode {

size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cpt) {
    const uint8_t b0 = uint8_t(s[pos]);
    if (b0 < 0x80) {
        *cpt = b0;
        return 1;
    }
    size_t n = 0;
    uint32_t c = 0;
    uint32_t min = 0;  // smallest value that needs n bytes; smaller ones are overlong
    if ((b0 & 0xE0) == 0xC0) {
        n = 2, c = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 3, c = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 4, c = b0 & 0x07, min = 0x10000;
    } else {
        *cpt = kInvalidByte + b0;
        return 1;
    }
    if (pos + n > s.size()) {
        *cpt = kInvalidByte + b0;
        return 1;
    }
    for (size_t i = 1; i < n; ++i) {
        const uint8_t b = uint8_t(s[pos + i]);
        if ((b & 0xC0) != 0x80) {
            *cpt = kInvalidByte + b0;
            return 1;
        }
        c = (c << 6) | (b & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *cpt = kInvalidByte + b0;
        return 1;
    }
    *cpt = c;
    return n;
}

void append_utf8(std::string* out, uint32_t cpt) {
    if (cpt < 0x80) {
        out->push_back(char(cpt));
    } else if (cpt < 0x800) {
        out->push_back(char(0xC0 | (cpt >> 6)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    } else if (cpt < 0x10000) {
        out->push_back(char(0xE0 | (cpt >> 12)));
        out->push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    } else {
        out->push_back(char(0xF0 | (cpt >> 18)));
        out->push_back(char(0x80 | ((cpt >> 12) & 0x3F)));
        out->push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cpt & 0x3F)));
    }
}

namespace {

uint8_t icu_flags(uint32_t cpt) {
    if (cpt > 0x10FFFF) return 0;  // invalid byte: classified like U+FFFD (So)
    const auto c = UChar32(cpt);
    if (u_isUWhiteSpace(c)) return kWhitespace;
    switch (u_charType(c)) {
        case U_UPPERCASE_LETTER:
        case U_LOWERCASE_LETTER:
        case U_TITLECASE_LETTER:
        case U_MODIFIER_LETTER:
        case U_OTHER_LETTER:
            return kLetter;
        case U_DECIMAL_DIGIT_NUMBER:
        case U_LETTER_NUMBER:
        case U_OTHER_NUMBER:
            return kNumber;
        default:
            return 0;
    }
}

// ASCII dominates real text; a table avoids the ICU call for it.
const std::array<uint8_t, 128>& ascii_flags() {
    static const std::array<uint8_t, 128> table = [] {
        std::array<uint8_t, 128> t{};
        for (uint32_t c = 0; c < 128; ++c) t[c] = icu_flags(c);
        return t;
    }();
    return table;
}

struct ByteMap {
    std::array<uint32_t, 256> to_cpt{};
    std::array<std::string, 256> to_utf8;
    std::array<int16_t, 0x144> from_cpt{};  // every mapped code point is below U+0144
};

const ByteMap& byte_map() {
    static const ByteMap map = [] {
        ByteMap m;
        m.from_cpt.fill(-1);
        uint32_t next = 0x100;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                                   (b >= 0xAE && b <= 0xFF);
            const uint32_t cpt = printable ? b : next++;
            m.to_cpt[b] = cpt;
            append_utf8(&m.to_utf8[b], cpt);
            m.from_cpt[cpt] = int16_t(b);
        }
        return m;
    }();
    return map;
}

// Flags value meaning "outside the current piece"; no real code point carries it.
constexpr uint8_t kEnd = 8;
constexpr uint32_t kNoCpt = 0xFFFFFFFF;

// One fragment decoded once: code points, their flags, and byte offsets (n + 1 entries).
struct Decoded {
    std::vector<uint32_t> cpts;
    std::vector<uint8_t> flags;
    std::vector<size_t> offs;
};

void decode_all(std::string_view text, Decoded* d) {
    d->cpts.reserve(text.size());
    d->flags.reserve(text.size());
    d->offs.reserve(text.size() + 1);
    const auto& ascii = ascii_flags();
    for (size_t pos = 0; pos < text.size();) {
        uint32_t cpt = 0;
        const size_t n = decode_utf8(text, pos, &cpt);
        d->cpts.push_back(cpt);
        d->flags.push_back(cpt < 128 ? ascii[cpt] : icu_flags(cpt));
        d->offs.push_back(pos);
        pos += n;
    }
    d->offs.push_back(text.size());
}

// The GPT-2 matcher over code points [ini, end) of d; emits byte spans.
void split_gpt2(const Decoded& d, size_t ini, size_t end, std::vector<Span>* out) {
    auto flags_at = [&](size_t p) -> uint8_t { return p < end ? d.flags[p] : kEnd; };
    auto cpt_at = [&](size_t p) -> uint32_t { return p < end ? d.cpts[p] : kNoCpt; };
    size_t prev = ini;
    auto emit = [&](size_t e) {
        if (e > prev) out->push_back({d.offs[prev], d.offs[e]});
        prev = e;
    };
    constexpr uint8_t kNotOther = kLetter | kNumber | kWhitespace | kEnd;
    for (size_t pos = ini; pos < end;) {
        const uint32_t cpt = d.cpts[pos];
        // 's|'t|'re|'ve|'m|'ll|'d  (ASCII apostrophe, lowercase only)
        if (cpt == '\'' && pos + 1 < end) {
            const uint32_t c1 = cpt_at(pos + 1);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                pos += 2;
                emit(pos);
                continue;
            }
            if (pos + 2 < end) {
                const uint32_t c2 = cpt_at(pos + 2);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
                    (c1 == 'l' && c2 == 'l')) {
                    pos += 3;
                    emit(pos);
                    continue;
                }
            }
        }
        // Only U+0020 may lead a word; its class is that of the next code point.
        const uint8_t f2 = cpt == ' ' ? flags_at(pos + 1) : d.flags[pos];
        if (f2 & kLetter) {  //  ?\p{L}+
            pos += (cpt == ' ');
            while (flags_at(pos) & kLetter) ++pos;
            emit(pos);
            continue;
        }
        if (f2 & kNumber) {  //  ?\p{N}+
            pos += (cpt == ' ');
            while (flags_at(pos) & kNumber) ++pos;
            emit(pos);
            continue;
        }
        if (!(f2 & kNotOther)) {  //  ?[^\s\p{L}\p{N}]+
            pos += (cpt == ' ');
            while (!(flags_at(pos) & kNotOther)) ++pos;
            emit(pos);
            continue;
        }
        size_t n_ws = 0;
        while (flags_at(pos + n_ws) & kWhitespace) ++n_ws;
        if (n_ws > 1 && pos + n_ws < end) {  // \s+(?!\S): leave the last one for the word
            pos += n_ws - 1;
            emit(pos);
            continue;
        }
        if (n_ws > 0) {  // \s+
            pos += n_ws;
            emit(pos);
            continue;
        }
        emit(++pos);  // no alternative matched (not reachable for valid flags)
    }
}

// Simple lowercase mapping (llama.cpp's unicode_tolower); only ASCII letters can map onto
// the contraction letters, but ICU decides rather than an assumption.
uint32_t to_lower(uint32_t cpt) {
    if (cpt < 128) return (cpt >= 'A' && cpt <= 'Z') ? cpt + 32 : cpt;
    return cpt > 0x10FFFF ? cpt : uint32_t(u_tolower(UChar32(cpt)));
}

// The qwen2 matcher over code points [ini, end) of d (llama.cpp's
// unicode_regex_split_custom_qwen2); the alternatives are tried in the pattern's order.
void split_qwen2(const Decoded& d, size_t ini, size_t end, std::vector<Span>* out) {
    auto flags_at = [&](size_t p) -> uint8_t { return p < end ? d.flags[p] : kEnd; };
    auto cpt_at = [&](size_t p) -> uint32_t { return p < end ? d.cpts[p] : kNoCpt; };
    auto is_cr_lf = [](uint32_t c) { return c == '\r' || c == '\n'; };
    size_t prev = ini;
    auto emit = [&](size_t e) {
        if (e > prev) out->push_back({d.offs[prev], d.offs[e]});
        prev = e;
    };
    constexpr uint8_t kClassed = kLetter | kNumber | kWhitespace | kEnd;
    for (size_t pos = ini; pos < end;) {
        const uint32_t cpt = d.cpts[pos];
        const uint8_t f = d.flags[pos];
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (cpt == '\'' && pos + 1 < end) {
            const uint32_t c1 = to_lower(cpt_at(pos + 1));
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                pos += 2;
                emit(pos);
                continue;
            }
            if (pos + 2 < end) {
                const uint32_t c2 = to_lower(cpt_at(pos + 2));
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    pos += 3;
                    emit(pos);
                    continue;
                }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ : any one non-letter lead (space, punctuation, ...)
        if (!is_cr_lf(cpt) && !(f & kNumber) && ((f & kLetter) || (flags_at(pos + 1) & kLetter))) {
            ++pos;
            while (flags_at(pos) & kLetter) ++pos;
            emit(pos);
            continue;
        }
        if (f & kNumber) {  // \p{N}: one digit per piece
            emit(++pos);
            continue;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*  (a space before the end of the piece also lands here)
        const uint8_t f2 = cpt == ' ' ? flags_at(pos + 1) : f;
        if (!(f2 & (kLetter | kNumber | kWhitespace))) {
            pos += (cpt == ' ');
            while (!(flags_at(pos) & kClassed)) ++pos;
            while (is_cr_lf(cpt_at(pos))) ++pos;
            emit(pos);
            continue;
        }
        size_t n_ws = 0, last_cr_lf = 0;
        for (; flags_at(pos + n_ws) & kWhitespace; ++n_ws)
            if (is_cr_lf(d.cpts[pos + n_ws])) last_cr_lf = pos + n_ws + 1;
        if (last_cr_lf > 0) {  // \s*[\r\n]+ : up to the last \r or \n of the run
            pos = last_cr_lf;
            emit(pos);
            continue;
        }
        if (n_ws > 1 && pos + n_ws < end) {  // \s+(?!\S): leave the last one for the word
            pos += n_ws - 1;
            emit(pos);
            continue;
        }
        if (n_ws > 0) {  // \s+
            pos += n_ws;
            emit(pos);
            continue;
        }
        emit(++pos);  // no alternative matched (not reachable for valid flags)
    }
}

}  // namespace

uint8_t cpt_flags(uint32_t cpt) { return cpt < 128 ? ascii_flags()[cpt] : icu_flags(cpt); }

uint32_t byte_to_cpt(uint8_t b) { return byte_map().to_cpt[b]; }
const std::string& byte_to_utf8(uint8_t b) { return byte_map().to_utf8[b]; }
int cpt_to_byte(uint32_t cpt) {
    return cpt < byte_map().from_cpt.size() ? byte_map().from_cpt[cpt] : -1;
}

void pretokenize(std::string_view text, PreTokenizer pre, std::vector<Span>* out) {
    if (text.empty()) return;
    Decoded d;
    decode_all(text, &d);
    const size_t n = d.cpts.size();
    if (pre == PreTokenizer::kQwen2) {
        split_qwen2(d, 0, n, out);
        return;
    }
    if (pre == PreTokenizer::kGpt2) {
        split_gpt2(d, 0, n, out);
        return;
    }
    // Pass A (\p{N}): each number is a piece of its own; the runs between are matched by
    // the GPT-2 pattern independently (llama.cpp applies the regex list in sequence).
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
        if (!(d.flags[i] & kNumber)) continue;
        if (i > start) split_gpt2(d, start, i, out);
        out->push_back({d.offs[i], d.offs[i + 1]});
        start = i + 1;
    }
    if (start < n) split_gpt2(d, start, n, out);
}

}  // namespace strata::unicode
