// SentencePiece merge loop (see spm.h). Follows llama.cpp's llm_tokenizer_spm_session
// step for step, because its ids are what the model was run with in llama.cpp:
//   1. cut the escaped text into units by the UTF-8 lead byte (an invalid or truncated
//      sequence is still one unit, as unicode_len_utf8 decides);
//   2. seed a max-heap with every adjacent pair whose concatenation is a token, keyed by
//      that token's score, ties to the leftmost pair;
//   3. pop, skip stale pairs, merge, and push the new pairs on both sides;
//   4. emit each surviving unit's token, or its bytes as byte tokens.
// llama.cpp's step 4 ("resegment") first looks the text up in a table of the pairs it
// merged. That lookup can only be reached by a unit that was never merged (a merged unit is
// always a token), and such a unit is one UTF-8 unit, which no pair of units can spell: a
// pair starting with the same lead byte is at least one unit plus another. So it always
// misses, and we go straight to the byte fallback.
#include "tokenizer/spm.h"

#include <algorithm>
#include <cstdlib>

namespace strata::spm {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Bytes in the UTF-8 unit a byte starts, by its high nibble (llama.cpp's unicode_len_utf8):
// continuation bytes count as one, 0xF8..0xFF as four.
size_t unit_len(uint8_t b) {
    static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[b >> 4];
}

// std::priority_queue order of llm_bigram_spm::comparator: "less" means lower score, or
// the same score further right; the heap top is the greatest.
struct BigramLess {
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
};

}  // namespace

void escape_whitespace(std::string_view text, bool space_prefix, std::string* out) {
    out->clear();
    out->reserve(text.size() + 8);
    if (space_prefix) out->append(kSpace);
    for (char c : text) {
        if (c == ' ') out->append(kSpace);
        else out->push_back(c);
    }
}

std::string unescape_whitespace(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        if (text.substr(i, kSpace.size()) == kSpace) {
            out.push_back(' ');
            i += kSpace.size();
        } else {
            out.push_back(text[i++]);
        }
    }
    return out;
}

uint8_t byte_of_token(std::string_view text) {
    if (text.size() < 3) return 0;
    const std::string hex(text.substr(3, 2));
    return uint8_t(std::strtol(hex.c_str(), nullptr, 16));
}

void encode(std::string_view text, const Tables& t, Scratch* s, std::vector<TokenId>* out) {
    auto& syms = s->syms;
    syms.clear();
    for (size_t off = 0; off < text.size();) {
        const size_t n = std::min(unit_len(uint8_t(text[off])), text.size() - off);
        const int32_t idx = int32_t(syms.size());
        syms.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, uint32_t(off), uint32_t(n)});
        off += n;
    }
    // Symbols are contiguous in text, so a pair's concatenation is a substring: no copy.
    auto& heap = s->heap;
    heap.clear();
    auto add_bigram = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return false;
        const uint32_t size = syms[size_t(l)].n + syms[size_t(r)].n;
        auto it = t.token_to_id->find(text.substr(syms[size_t(l)].off, size));
        if (it == t.token_to_id->end()) return false;
        heap.push_back({(*t.scores)[size_t(it->second)], l, r, size});
        return true;
    };
    for (int32_t i = 1; i < int32_t(syms.size()); ++i) add_bigram(i - 1, i);
    std::make_heap(heap.begin(), heap.end(), BigramLess());
    auto add_and_push = [&](int32_t l, int32_t r) {
        if (add_bigram(l, r)) std::push_heap(heap.begin(), heap.end(), BigramLess());
    };
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), BigramLess());
        const Bigram b = heap.back();
        heap.pop_back();
        Symbol& left = syms[size_t(b.left)];
        Symbol& right = syms[size_t(b.right)];
        // Stale: a side was merged away, or the right side grew since the push (symbols
        // only grow, so a changed sum never comes back). The pop order among entries with
        // equal (score, left) cannot matter: at most one of them is live.
        if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
        left.n += right.n;
        right.n = 0;
        left.next = right.next;
        if (right.next >= 0) syms[size_t(right.next)].prev = b.left;
        add_and_push(left.prev, b.left);
        add_and_push(b.left, left.next);
    }
    for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[size_t(i)].next) {
        const Symbol& sym = syms[size_t(i)];
        const std::string_view piece = text.substr(sym.off, sym.n);
        auto it = t.token_to_id->find(piece);
        if (it != t.token_to_id->end()) {
            out->push_back(it->second);
            continue;
        }
        for (char c : piece) {
            const TokenId id = t.byte_token[uint8_t(c)];
            if (id >= 0) out->push_back(id);
        }
    }
}

}  // namespace strata::spm
