// Internal to the grammar module: the parse tree that grammar_parser.cpp produces from the
// text and grammar_lower.cpp turns into the flat Grammar program.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "sampling/grammar/grammar_program.h"

namespace strata::sampling::gbnf {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;
inline constexpr uint32_t kRepeatUnbounded = UINT32_MAX;
inline constexpr uint32_t kMaxRepeat = 100000;  // largest finite {m,n} bound we expand

struct Node {
    enum class Kind { kLiteral, kClass, kRef, kGroup, kRepeat };
    Kind kind = Kind::kLiteral;
    int line = 0;
    std::string text;  // kLiteral: the bytes; kRef: the rule name
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kClass: code point ranges
    bool negated = false;                                // kClass
    std::vector<std::vector<Node>> alts;  // kGroup: alternatives; kRepeat: {{operand}}
    uint32_t min = 0, max = 0;            // kRepeat
};

struct RuleAst {
    std::string name;
    int line = 0;
    std::vector<std::vector<Node>> alts;
};

Result<std::vector<RuleAst>> parse_text(std::string_view text);
Result<std::shared_ptr<const Grammar>> lower(const std::vector<RuleAst>& rules);

// A code point set as UTF-8: each sequence is 1-4 byte ranges [lo, hi], one per byte, and
// the set is the union of the sequences' cross products. Surrogates are never included.
using ByteRangeSeq = std::vector<std::pair<uint8_t, uint8_t>>;
std::vector<ByteRangeSeq> utf8_sequences(const std::vector<std::pair<uint32_t, uint32_t>>& ranges);

// Appends the UTF-8 encoding of cp (cp <= kMaxCodePoint).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace strata::sampling::gbnf
