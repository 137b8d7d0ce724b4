// The compiled grammar (Grammar) and its text format; grammar.h is the public entry point.
//
// The text format is GBNF-like:
//   root   ::= "{" ws pair ( "," ws pair )* "}"    # comments run to the end of the line
//   pair   ::= [a-z]+ ws ":" ws ( "true" | "false" )
//   ws     ::= [ \t\n]{0,4}
// Literals "..." are byte strings; classes [a-z] [^"\\] and `.` match one UTF-8 encoded code
// point. Escapes (in literals and classes): \n \r \t \\ \" \' \[ \] \- \^ \/, \xNN, \uNNNN and
// \UNNNNNNNN (code points, written as UTF-8). Postfix operators: ? * + {m} {m,} {m,n}. A rule
// ends where the next `name ::=` starts; the start rule is `root`.
//
// parse_grammar() lowers everything to a flat form that grammar_matcher.h runs as a pushdown
// automaton over bytes: each alternative is a run of elements (a byte set or a rule
// reference) closed by an end marker. Groups and repetitions become helper rules; a class
// with non-ASCII members becomes a helper rule whose alternatives are UTF-8 byte sequences.
// Left recursion is rejected. The JSON Schema front end is json_schema.h; the token-level
// sampler is grammar_sampler.h. Design notes: docs/design.md ("Grammar-constrained sampling").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace strata::sampling {

class Grammar {
public:
    enum class Op : uint8_t { kEnd, kBytes, kRef };
    struct Elem {
        Op op;
        uint32_t arg;  // kBytes: index into byte_sets; kRef: rule id; kEnd: unused
    };
    using ByteSet = std::array<uint64_t, 4>;  // bit b set: byte b matches

    // Flat program: elems holds every alternative of every rule, each ended by kEnd.
    // Rule r's alternatives start at alt_starts[rule_alts[r].first .. rule_alts[r].second).
    const std::vector<Elem>& elems() const { return elems_; }
    const std::vector<uint32_t>& alt_starts() const { return alt_starts_; }
    std::pair<uint32_t, uint32_t> rule_alts(uint32_t rule) const { return rule_alts_[rule]; }
    bool byte_matches(uint32_t set, uint8_t b) const {
        return (byte_sets_[set][b >> 6] >> (b & 63)) & 1u;
    }
    const ByteSet& byte_set(uint32_t set) const { return byte_sets_[set]; }
    uint32_t root() const { return root_; }
    size_t n_rules() const { return rule_alts_.size(); }
    const std::string& rule_name(uint32_t rule) const { return rule_names_[rule]; }

private:
    friend class GrammarBuilder;
    std::vector<Elem> elems_;
    std::vector<uint32_t> alt_starts_;
    std::vector<std::pair<uint32_t, uint32_t>> rule_alts_;
    std::vector<ByteSet> byte_sets_;
    std::vector<std::string> rule_names_;  // user rules keep their names; helpers get "<rule>~n"
    uint32_t root_ = 0;
};

// Errors name the line and the rule: "grammar: line 3: rule 'pair': unknown rule 'valu'".
Result<std::shared_ptr<const Grammar>> parse_grammar(std::string_view text);

}  // namespace strata::sampling
