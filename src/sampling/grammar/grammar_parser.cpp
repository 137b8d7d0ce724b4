// Grammar text -> parse tree (grammar_ast.h). A hand-written recursive-descent reader that
// tracks the line and the rule being read, so every error can say where it is. Newlines are
// ordinary white space: a rule body runs until the next `name ::=` or the end of the text.
// Lowering to the flat program lives in grammar_lower.cpp.
#include <cctype>
#include <cstring>

#include "sampling/grammar/grammar_ast.h"

namespace strata::sampling::gbnf {

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

namespace {

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class Parser {
public:
    explicit Parser(std::string_view s) : s_(s) {}

    Result<std::vector<RuleAst>> parse() {
        std::vector<RuleAst> rules;
        skip_space();
        while (!eof()) {
            rule_.clear();
            RuleAst r;
            r.line = line_;
            if (!is_name_char(s_[i_])) return error(fmt::format("expected a rule name, found {}", shown(s_[i_])));
            r.name = scan_name();
            rule_ = r.name;
            skip_space();
            if (s_.substr(i_, 3) != "::=") return error("expected '::=' after the rule name");
            i_ += 3;
            STRATA_TRY(parse_alts(0, r.line, r.alts));
            rules.push_back(std::move(r));
        }
        if (rules.empty()) return invalid_input("grammar: no rules");
        return rules;
    }

private:
    bool eof() const { return i_ >= s_.size(); }

    static std::string shown(char c) {
        if (std::isprint(static_cast<unsigned char>(c))) return fmt::format("'{}'", c);
        return fmt::format("byte 0x{:02X}", uint8_t(c));
    }

    Status error(const std::string& msg) const {
        if (rule_.empty()) return invalid_input("grammar: line {}: {}", line_, msg);
        return invalid_input("grammar: line {}: rule '{}': {}", line_, rule_, msg);
    }

    // Spaces, tabs, newlines and # comments.
    void skip_space() {
        while (!eof()) {
            const char c = s_[i_];
            if (c == '#') {
                while (!eof() && s_[i_] != '\n') ++i_;
            } else if (c == '\n') {
                ++line_;
                ++i_;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                ++i_;
            } else {
                break;
            }
        }
    }

    std::string scan_name() {
        const size_t b = i_;
        while (!eof() && is_name_char(s_[i_])) ++i_;
        return std::string(s_.substr(b, i_ - b));
    }

    // True when the text at i_ is `name ::=` (the start of the next rule).
    bool at_rule_start() {
        const size_t save_i = i_;
        const int save_line = line_;
        bool yes = false;
        if (!eof() && is_name_char(s_[i_])) {
            scan_name();
            skip_space();
            yes = s_.substr(i_, 3) == "::=";
        }
        i_ = save_i;
        line_ = save_line;
        return yes;
    }

    Status parse_alts(int depth, int open_line, std::vector<std::vector<Node>>& alts) {
        alts.emplace_back();
        for (;;) {
            skip_space();
            if (eof() || (depth > 0 && at_rule_start())) {
                if (depth > 0)
                    return error(fmt::format("unbalanced '(' (opened on line {}, never closed)", open_line));
                return ok_status();
            }
            if (at_rule_start()) return ok_status();
            const char c = s_[i_];
            if (c == '|') {
                ++i_;
                alts.emplace_back();
                continue;
            }
            if (c == ')') {
                if (depth == 0) return error("unbalanced ')'");
                ++i_;
                return ok_status();
            }
            Node n;
            STRATA_TRY(parse_atom(depth, n));
            STRATA_TRY(parse_postfix(n));
            alts.back().push_back(std::move(n));
        }
    }

    Status parse_postfix(Node& n) {
        for (;;) {
            // Operators bind to the atom just read; spaces (not newlines) may come between.
            while (!eof() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
            if (eof()) return ok_status();
            const char c = s_[i_];
            uint32_t lo = 0, hi = 0;
            if (c == '*') {
                lo = 0, hi = kRepeatUnbounded, ++i_;
            } else if (c == '+') {
                lo = 1, hi = kRepeatUnbounded, ++i_;
            } else if (c == '?') {
                lo = 0, hi = 1, ++i_;
            } else if (c == '{') {
                STRATA_TRY(parse_braces(lo, hi));
            } else {
                return ok_status();
            }
            Node r;
            r.kind = Node::Kind::kRepeat;
            r.line = line_;
            r.min = lo;
            r.max = hi;
            r.alts.emplace_back();
            r.alts[0].push_back(std::move(n));
            n = std::move(r);
        }
    }

    Status parse_braces(uint32_t& lo, uint32_t& hi) {
        const size_t start = i_;
        ++i_;  // '{'
        auto number = [&](uint32_t& v) {
            const size_t b = i_;
            uint64_t x = 0;
            while (!eof() && std::isdigit(static_cast<unsigned char>(s_[i_])) && x <= kMaxRepeat)
                x = x * 10 + uint64_t(s_[i_++] - '0');
            v = uint32_t(std::min<uint64_t>(x, uint64_t(kMaxRepeat) + 1));
            return i_ > b;
        };
        auto bad = [&] {
            size_t e = s_.find('}', start);
            e = e == std::string_view::npos ? std::min(s_.size(), start + 8) : e + 1;
            return error(fmt::format("bad repetition '{}'", s_.substr(start, e - start)));
        };
        if (!number(lo)) return bad();
        if (!eof() && s_[i_] == ',') {
            ++i_;
            if (!eof() && s_[i_] == '}') {
                hi = kRepeatUnbounded;
            } else if (!number(hi)) {
                return bad();
            }
        } else {
            hi = lo;
        }
        if (eof() || s_[i_] != '}') return bad();
        ++i_;
        if (lo > kMaxRepeat || (hi != kRepeatUnbounded && hi > kMaxRepeat))
            return error(fmt::format("repetition bound above {} in '{}'", kMaxRepeat, s_.substr(start, i_ - start)));
        if (hi < lo) return error(fmt::format("bad repetition '{}': max below min", s_.substr(start, i_ - start)));
        return ok_status();
    }

    Status parse_atom(int depth, Node& n) {
        n.line = line_;
        const char c = s_[i_];
        if (c == '"') {
            n.kind = Node::Kind::kLiteral;
            ++i_;
            for (;;) {
                if (eof() || s_[i_] == '\n') return error("unterminated string literal");
                if (s_[i_] == '"') {
                    ++i_;
                    return ok_status();
                }
                if (s_[i_] == '\\') {
                    uint32_t cp = 0;
                    STRATA_TRY(parse_escape(cp));
                    append_utf8(n.text, cp);
                } else {
                    n.text.push_back(s_[i_++]);
                }
            }
        }
        if (c == '[') return parse_class(n);
        if (c == '(') {
            n.kind = Node::Kind::kGroup;
            const int open_line = line_;
            ++i_;
            return parse_alts(depth + 1, open_line, n.alts);
        }
        if (c == '.') {
            ++i_;
            n.kind = Node::Kind::kClass;
            n.negated = true;  // the complement of nothing: any code point
            return ok_status();
        }
        if (is_name_char(c)) {
            n.kind = Node::Kind::kRef;
            n.text = scan_name();
            return ok_status();
        }
        if (c == ']') return error("unbalanced ']'");
        if (c == '*' || c == '+' || c == '?' || c == '{')
            return error(fmt::format("'{}' has nothing to repeat", c));
        return error(fmt::format("unexpected {}", shown(c)));
    }

    Status parse_class(Node& n) {
        n.kind = Node::Kind::kClass;
        ++i_;  // '['
        if (!eof() && s_[i_] == '^') {
            n.negated = true;
            ++i_;
        }
        for (;;) {
            if (eof() || s_[i_] == '\n') return error("unbalanced '[' (character class not closed)");
            if (s_[i_] == ']') {
                ++i_;
                return ok_status();
            }
            uint32_t lo = 0;
            STRATA_TRY(class_char(lo));
            uint32_t hi = lo;
            if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
                ++i_;
                STRATA_TRY(class_char(hi));
                if (hi < lo) return error(fmt::format("bad class range: U+{:04X} after U+{:04X}", hi, lo));
            }
            n.ranges.emplace_back(lo, hi);
        }
    }

    // One member of a class: an escape or one UTF-8 encoded code point from the text.
    Status class_char(uint32_t& cp) {
        if (eof() || s_[i_] == '\n') return error("unbalanced '[' (character class not closed)");
        if (s_[i_] == '\\') return parse_escape(cp);
        const auto b0 = uint8_t(s_[i_]);
        const int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
        if (len == 0 || i_ + size_t(len) > s_.size()) return error("invalid UTF-8 in character class");
        cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
        for (int k = 1; k < len; ++k) {
            const auto b = uint8_t(s_[i_ + size_t(k)]);
            if ((b & 0xC0) != 0x80) return error("invalid UTF-8 in character class");
            cp = (cp << 6) | (b & 0x3F);
        }
        i_ += size_t(len);
        return ok_status();
    }

    Status parse_escape(uint32_t& cp) {
        ++i_;  // '\'
        if (eof()) return error("bad escape at the end of the text");
        const char c = s_[i_++];
        auto hex = [&](int digits) -> Status {
            cp = 0;
            for (int k = 0; k < digits; ++k) {
                if (eof() || !std::isxdigit(static_cast<unsigned char>(s_[i_])))
                    return error(fmt::format("bad escape '\\{}': expected {} hex digits", c, digits));
                const char h = s_[i_++];
                cp = cp * 16 + uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
            }
            if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF))
                return error(fmt::format("bad escape '\\{}': U+{:X} is not a Unicode scalar value", c, cp));
            return ok_status();
        };
        switch (c) {
            case 'n': cp = '\n'; return ok_status();
            case 'r': cp = '\r'; return ok_status();
            case 't': cp = '\t'; return ok_status();
            case 'x': return hex(2);
            case 'u': return hex(4);
            case 'U': return hex(8);
            case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
                cp = uint8_t(c);
                return ok_status();
            default:
                return error(fmt::format("bad escape '\\{}'", c));
        }
    }

    std::string_view s_;
    size_t i_ = 0;
    int line_ = 1;
    std::string rule_;
};

}  // namespace

Result<std::vector<RuleAst>> parse_text(std::string_view text) { return Parser(text).parse(); }

}  // namespace strata::sampling::gbnf

namespace strata::sampling {

Result<std::shared_ptr<const Grammar>> parse_grammar(std::string_view text) {
    auto rules = gbnf::parse_text(text);
    if (!rules) return rules.error();
    return gbnf::lower(*rules);
}

}  // namespace strata::sampling
