// Grammar module tests: grammar text errors and byte-level matching (including exhaustive
// UTF-8 class checks), JSON Schema conversion against hand-written valid and invalid
// documents, and token-level masking with the real SmolLM2 vocabulary (trie mask equals a
// per-token brute force; seeded random walks produce JSON that meets the schema). The model
// file is required, as in tokenizer_test.cpp: `make model` fetches it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "sampling/grammar/grammar.h"
#include "sampling/grammar/grammar_ast.h"
#include "tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace strata::sampling {
namespace {

using nlohmann::json;

std::shared_ptr<const Grammar> compile(const std::string& text) {
    auto g = parse_grammar(text);
    EXPECT_TRUE(g.has_value()) << g.error().message() << "\n" << text;
    return g ? *g : nullptr;
}

std::string parse_error(const std::string& text) {
    auto g = parse_grammar(text);
    return g ? std::string("(no error)") : g.error().message();
}

// Whole-string match: every byte accepted and the end is an accepting state.
bool matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
    GrammarMatcher m(g);
    const auto st = m.step(m.initial(), s);
    return st != GrammarMatcher::kDead && m.accepting(st);
}
// s can be continued to a sentence of the grammar (or is one).
bool viable(const std::shared_ptr<const Grammar>& g, std::string_view s) {
    GrammarMatcher m(g);
    return m.step(m.initial(), s) != GrammarMatcher::kDead;
}

std::shared_ptr<const Grammar> schema_grammar(const std::string& schema_text) {
    auto text = json_schema_text_to_grammar(schema_text);
    EXPECT_TRUE(text.has_value()) << text.error().message();
    if (!text) return nullptr;
    return compile(*text);
}

// ---------------------------------------------------------------------------------------
// Grammar text

TEST(GrammarParse, ErrorsNameTheProblemLineAndRule) {
    struct Case {
        std::string text, expect;
    };
    const Case cases[] = {
        {"root ::= foo", "line 1: rule 'root': unknown rule 'foo'"},
        {"root ::= \"a\"\n\nitem ::= \"x\" valu", "line 3: rule 'item': unknown rule 'valu'"},
        {"root ::= ( \"a\" | \"b\"", "rule 'root': unbalanced '(' (opened on line 1"},
        {"root ::= (\n \"a\"\nx ::= \"b\"", "unbalanced '(' (opened on line 1"},
        {"root ::= \"a\" )", "line 1: rule 'root': unbalanced ')'"},
        {"root ::= [a-z", "unbalanced '[' (character class not closed)"},
        {"root ::= \"a\" ]", "unbalanced ']'"},
        {"root ::= \"\\q\"", "rule 'root': bad escape '\\q'"},
        {"root ::= [\\xZZ]", "bad escape '\\x': expected 2 hex digits"},
        {"root ::= \"\\uD800\"", "not a Unicode scalar value"},
        {"root ::= \"abc", "unterminated string literal"},
        {"a ::= \"x\"", "no rule named 'root'"},
        {"root ::= \"a\"\nroot ::= \"b\"", "line 2: rule 'root' is defined twice"},
        {"root ::= root \"a\" | \"a\"", "rule 'root': left recursion (root -> root)"},
        {"root ::= x \"a\"\nx ::= \"b\"? root", "left recursion (root -> x -> root)"},
        {"root ::= ( \"a\"? )* \"b\"", "left recursion"},
        {"root ::= \"a\"{3,1}", "bad repetition '{3,1}': max below min"},
        {"root ::= \"a\"{2,x}", "bad repetition '{2,x}'"},
        {"root ::= \"a\"{1,999999}", "repetition bound above 100000"},
        {"root ::= * \"a\"", "'*' has nothing to repeat"},
        {"root ::= [z-a]", "bad class range"},
        {"root = \"a\"", "expected '::=' after the rule name"},
        {"", "no rules"},
    };
    for (const Case& c : cases) {
        const std::string e = parse_error(c.text);
        EXPECT_NE(e.find(c.expect), std::string::npos) << "text: " << c.text << "\nerror: " << e;
        EXPECT_EQ(e.rfind("grammar: ", 0), 0u) << e;
    }
}

TEST(GrammarMatch, LiteralsGroupsRepetition) {
    auto g = compile(R"(root ::= "ab" ( "c" | "d" )+ "e"?)");
    for (const char* s : {"abc", "abd", "abdce", "abcde"}) EXPECT_TRUE(matches(g, s)) << s;
    for (const char* s : {"", "ab", "abe", "abcx", "abcee", "ac"}) EXPECT_FALSE(matches(g, s)) << s;
    EXPECT_TRUE(viable(g, "ab"));
    EXPECT_FALSE(viable(g, "abx"));

    auto r = compile(R"(root ::= "x"{2,4} "-" "y"{3} "-" "z"{2,})");
    EXPECT_TRUE(matches(r, "xx-yyy-zz"));
    EXPECT_TRUE(matches(r, "xxxx-yyy-zzzzzz"));
    for (const char* s : {"x-yyy-zz", "xxxxx-yyy-zz", "xx-yy-zz", "xx-yyyy-zz", "xx-yyy-z"})
        EXPECT_FALSE(matches(r, s)) << s;

    auto opt = compile(R"(root ::= "a"? "b"?)");
    for (const char* s : {"", "a", "b", "ab"}) EXPECT_TRUE(matches(opt, s)) << s;
    for (const char* s : {"ba", "aa"}) EXPECT_FALSE(matches(opt, s)) << s;
}

TEST(GrammarMatch, EscapesCommentsAndMultiLineRules) {
    auto g = compile(
        "# a comment line\n"
        "root ::= a b   # trailing comment\n"
        "       | c\n"
        "a ::= \"\\n\\t\\\"\\\\\\x41\"\n"
        "b ::= [\\]\\[\\-]\n"
        "c ::= \"\\u00e9\" [\\x41-\\x43]\n");
    EXPECT_TRUE(matches(g, "\n\t\"\\A]"));
    EXPECT_TRUE(matches(g, "\n\t\"\\A-"));
    EXPECT_TRUE(matches(g, "\xC3\xA9" "B"));
    EXPECT_FALSE(matches(g, "\xC3\xA9" "D"));
    EXPECT_FALSE(matches(g, "\n\t\"\\Ax"));
}

TEST(GrammarMatch, ClassesMatchWholeCodePoints) {
    auto g = compile(R"(root ::= [^a])");
    EXPECT_TRUE(matches(g, "b"));
    EXPECT_TRUE(matches(g, "\xC3\xA9"));          // é
    EXPECT_TRUE(matches(g, "\xE2\x82\xAC"));      // €
    EXPECT_TRUE(matches(g, "\xF0\x9F\x98\x80"));  // 😀
    EXPECT_FALSE(matches(g, "a"));
    EXPECT_FALSE(matches(g, "\xC3"));             // a prefix only
    EXPECT_TRUE(viable(g, "\xC3"));
    EXPECT_FALSE(viable(g, "\xC3\x28"));          // bad continuation byte
    EXPECT_FALSE(viable(g, "\xED\xA0\x80"));      // a surrogate
    EXPECT_FALSE(viable(g, "\xC0\x80"));          // overlong
    EXPECT_FALSE(viable(g, "\xF4\x90\x80\x80"));  // above U+10FFFF

    auto greek = compile("root ::= [α-ω]+ .");
    EXPECT_TRUE(matches(greek, "αβωx"));
    EXPECT_TRUE(matches(greek, "α😀"));
    EXPECT_FALSE(matches(greek, "aβx"));
}

// Every code point and every two-byte string against a class with non-ASCII members: the
// UTF-8 compilation must accept exactly the encodings of the class's code points.
TEST(GrammarMatch, Utf8ClassExhaustive) {
    auto g = compile(R"(root ::= [^"\\\x00-\x1F\u0100-\u0200\U0001F600-\U0001F64F])");
    auto in_class = [](uint32_t cp) {
        return !(cp == '"' || cp == '\\' || cp < 0x20 || (cp >= 0x100 && cp <= 0x200) ||
                 (cp >= 0x1F600 && cp <= 0x1F64F) || (cp >= 0xD800 && cp <= 0xDFFF));
    };
    GrammarMatcher m(g);
    size_t wrong = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        std::string s;
        gbnf::append_utf8(s, cp);
        const auto st = m.step(m.initial(), s);
        const bool ok = st != GrammarMatcher::kDead && m.accepting(st);
        if (ok != in_class(cp) && wrong++ < 5) ADD_FAILURE() << "U+" << std::hex << cp;
    }
    EXPECT_EQ(wrong, 0u);
    // Two-byte strings: accepted exactly when they are one valid 2-byte encoding in the class.
    for (uint32_t a = 0; a < 256; ++a) {
        for (uint32_t b = 0; b < 256; ++b) {
            const std::string s{char(a), char(b)};
            const bool two_byte = a >= 0xC2 && a <= 0xDF && (b & 0xC0) == 0x80;
            const uint32_t cp = ((a & 0x1F) << 6) | (b & 0x3F);
            EXPECT_EQ(matches(g, s), two_byte && in_class(cp)) << a << " " << b;
        }
    }
}

TEST(GrammarMatch, RightRecursionKeepsStacksFlat) {
    auto g = compile(R"(root ::= "a" root | "b")");
    GrammarMatcher m(g);
    auto st = m.step(m.initial(), std::string(20000, 'a'));
    const size_t frames = m.n_frames();
    st = m.step(st, "b");
    EXPECT_TRUE(m.accepting(st));
    EXPECT_LT(frames, 10u);  // tail references reuse the parent frame
}

// ---------------------------------------------------------------------------------------
// JSON Schema

TEST(JsonSchema, AnyObjectGrammar) {
    auto g = compile(json_object_grammar());
    const char* good[] = {
        R"({})", R"({ })", R"({"a": [1, -2.5e3, "x\u00e9\ud83d\ude00", true, null, {"b": {}}]})",
        "{\n  \"a\": 1,\n  \"b\": [\n    0\n  ]\n}\n", R"({"k":"é\n\"q\""})",
    };
    for (const char* s : good) {
        EXPECT_TRUE(json::accept(s)) << s;
        EXPECT_TRUE(matches(g, s)) << s;
    }
    const char* bad[] = {
        R"([1])", R"({"a":1,})", R"({"a": 01})", R"({"a":"\ud800"})", R"({"a":"\udc00"})",
        R"({a:1})", R"({"a":1} x)", R"({"a":"tab	"})", R"({"a": 1e999})", R"({"a": .5})",
    };
    for (const char* s : bad) EXPECT_FALSE(matches(g, s)) << s;
    // White space is bounded: one newline and at most 20 spaces or 10 tabs, so it cannot run forever.
    EXPECT_TRUE(matches(g, "{\n" + std::string(20, ' ') + "}"));
    EXPECT_TRUE(matches(g, "{\n" + std::string(10, '\t') + "}"));
    EXPECT_FALSE(viable(g, "{\n" + std::string(21, ' ')));
    EXPECT_FALSE(viable(g, "{\n" + std::string(11, '\t')));
    EXPECT_FALSE(viable(g, "{\n \t"));
    EXPECT_FALSE(viable(g, "{\n\n"));
    EXPECT_FALSE(viable(g, "{  "));
}

const char* kPersonSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 8},
    "kind": {"enum": ["cat", "dog", 3]},
    "version": {"const": 2},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    "address": {
      "type": "object",
      "properties": {"street": {"type": "string"}, "zip": {"type": "integer"}},
      "required": ["street"],
      "additionalProperties": false
    },
    "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    "pets": {"type": "array", "items": {"type": "object",
              "properties": {"id": {"type": "integer"}, "alive": {"type": "boolean"}},
              "required": ["id", "alive"]}}
  },
  "required": ["name", "kind", "tags"],
  "additionalProperties": false
})";

TEST(JsonSchema, NestedObjectsRequiredOptionalEnumConst) {
    auto g = schema_grammar(kPersonSchema);
    ASSERT_TRUE(g);
    const char* good[] = {
        R"({"name":"Al","kind":"cat","tags":["x"]})",
        R"({"name": "", "kind": 3, "version": 2, "tags": ["a", "b", "c"]})",
        R"({"name":"12345678","kind":"dog","tags":["x"],"address":{"street":"Main"}})",
        R"({"name":"Ωmega","kind":"dog","tags":["x"],"address":{"street":"Main","zip":12345},"score":null})",
        R"({"name":"A","kind":"cat","tags":["t"],"score":-1.5e2,"pets":[]})",
        R"({"name":"A","kind":"cat","tags":["t"],"pets":[{"id":1,"alive":true},{"id":2,"alive":false}]})",
        "{\n  \"name\": \"A\",\n  \"kind\": \"cat\",\n  \"tags\": [\n    \"t\"\n  ]\n}",
    };
    for (const char* s : good) {
        EXPECT_TRUE(json::accept(s)) << s;
        EXPECT_TRUE(matches(g, s)) << s;
    }
    const char* bad[] = {
        R"({"kind":"cat","tags":["x"]})",                              // name missing
        R"({"name":"Al","tags":["x"]})",                               // kind missing
        R"({"name":"Al","kind":"cat"})",                               // tags missing
        R"({"name":"Al","kind":"cow","tags":["x"]})",                  // not in enum
        R"({"name":"Al","kind":"3","tags":["x"]})",                    // 3 is a number in the enum
        R"({"name":"Al","kind":"cat","version":3,"tags":["x"]})",      // const
        R"({"name":"Al","kind":"cat","tags":[]})",                     // minItems 1
        R"({"name":"Al","kind":"cat","tags":["a","b","c","d"]})",      // maxItems 3
        R"({"name":"123456789","kind":"cat","tags":["x"]})",           // maxLength 8
        R"({"name":"Al","kind":"cat","tags":["x"],"extra":1})",        // additionalProperties false
        R"({"kind":"cat","name":"Al","tags":["x"]})",                  // schema order
        R"({"name":"Al","kind":"cat","tags":["x"],"address":{}})",     // street required
        R"({"name":"Al","kind":"cat","tags":["x"],"address":{"street":"M","x":1}})",
        R"({"name":"Al","kind":"cat","tags":["x"],"address":{"street":"M","zip":1.5}})",
        R"({"name":"Al","kind":"cat","tags":["x"],"pets":[{"id":1}]})",  // alive required
        R"({"name":"Al","kind":"cat","tags":[1]})",                    // item type
        R"({"name":"Al","kind":"cat","tags":["x"],})",                 // trailing comma
    };
    for (const char* s : bad) EXPECT_FALSE(matches(g, s)) << s;
}

const char* kTreeSchema = R"({
  "$ref": "#/$defs/node",
  "$defs": {
    "node": {
      "type": "object",
      "properties": {
        "value": {"type": "integer"},
        "label": {"type": ["string", "null"], "minLength": 2},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}
      },
      "required": ["value"]
    }
  }
})";

TEST(JsonSchema, RecursiveDefs) {
    auto g = schema_grammar(kTreeSchema);
    ASSERT_TRUE(g);
    for (const char* s : {
             R"({"value":1})",
             R"({"value":1,"label":null,"children":[]})",
             R"({"value":1,"children":[{"value":2,"label":"ab"},{"value":3,"children":[{"value":4}]}]})",
         }) {
        EXPECT_TRUE(matches(g, s)) << s;
    }
    for (const char* s : {
             R"({"label":"ab"})",                                          // value required
             R"({"value":1,"label":"a"})",                                 // minLength 2
             R"({"value":1,"children":[{"value":2},{"value":3},{"value":4}]})",  // maxItems 2
             R"({"value":1,"children":[{"value":"x"}]})",
         }) {
        EXPECT_FALSE(matches(g, s)) << s;
    }
    // definitions (draft-07) and a reference to the root.
    auto list = schema_grammar(R"({"definitions": {"n": {"type": "integer"}},
        "type": "object", "properties": {"x": {"$ref": "#/definitions/n"}, "next": {"$ref": "#"}}})");
    ASSERT_TRUE(list);
    EXPECT_TRUE(matches(list, R"({"x":1,"next":{"next":{"x":3}}})"));
    EXPECT_FALSE(matches(list, R"({"x":1,"next":{"x":"s"}})"));
}

TEST(JsonSchema, AdditionalPropertiesTuplesAllOfFormats) {
    auto extra = schema_grammar(R"({"type":"object","properties":{"a":{"type":"integer"}},
        "additionalProperties":{"type":"boolean"}})");
    EXPECT_TRUE(matches(extra, R"({"a":1,"b":true,"c":false})"));
    EXPECT_TRUE(matches(extra, R"({"b":true})"));
    EXPECT_FALSE(matches(extra, R"({"a":1,"b":2})"));
    auto any = schema_grammar(R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true})");
    EXPECT_TRUE(matches(any, R"({"a":1,"b":[{}]})"));
    auto bare = schema_grammar(R"({"type":"object"})");
    EXPECT_TRUE(matches(bare, R"({"z":[1]})"));

    auto tuple = schema_grammar(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],
        "items":false,"minItems":1})");
    EXPECT_TRUE(matches(tuple, R"(["a"])"));
    EXPECT_TRUE(matches(tuple, R"(["a", 2])"));
    EXPECT_FALSE(matches(tuple, R"([])"));
    EXPECT_FALSE(matches(tuple, R"(["a",2,3])"));
    EXPECT_FALSE(matches(tuple, R"([2])"));
    auto tail = schema_grammar(R"({"type":"array","prefixItems":[{"const":"x"}],"items":{"type":"integer"},
        "minItems":3,"maxItems":4})");
    EXPECT_TRUE(matches(tail, R"(["x",1,2])"));
    EXPECT_TRUE(matches(tail, R"(["x",1,2,3])"));
    EXPECT_FALSE(matches(tail, R"(["x",1])"));
    EXPECT_FALSE(matches(tail, R"(["x",1,2,3,4])"));

    auto merged = schema_grammar(R"({"$defs":{"base":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}},
        "allOf":[{"$ref":"#/$defs/base"},{"properties":{"name":{"type":"string"}},"required":["name"]}]})");
    EXPECT_TRUE(matches(merged, R"({"id":1,"name":"n"})"));
    EXPECT_FALSE(matches(merged, R"({"id":1})"));
    EXPECT_FALSE(matches(merged, R"({"name":"n"})"));
    EXPECT_FALSE(matches(merged, R"({"id":1,"name":"n","x":0})"));

    auto fmt = schema_grammar(R"({"type":"array","prefixItems":[{"type":"string","format":"date"},
        {"type":"string","format":"date-time"},{"type":"string","format":"uuid"},{"type":"string","format":"email"}],"items":false})");
    EXPECT_TRUE(matches(fmt, R"(["2024-02-29","2024-02-29T12:30:00Z","123e4567-e89b-12d3-a456-426614174000","a@b"])"));
    EXPECT_FALSE(matches(fmt, R"(["2024-13-01","2024-02-29T12:30:00Z","123e4567-e89b-12d3-a456-426614174000","a@b"])"));
    EXPECT_FALSE(matches(fmt, R"(["2024-02-29","2024-02-29 12:30","123e4567-e89b-12d3-a456-426614174000","a@b"])"));
}

TEST(JsonSchema, UnsupportedKeywordsNameKeywordAndPointer) {
    struct Case {
        const char* schema;
        const char* expect;
    };
    const Case cases[] = {
        {R"({"type":"object","properties":{"zip":{"type":"string","pattern":"^[0-9]+$"}}})",
         "unsupported keyword 'pattern' at #/properties/zip/pattern"},
        {R"({"not":{"type":"string"}})", "unsupported keyword 'not' at #/not"},
        {R"({"type":"array","items":{"if":{},"then":{}}})", "unsupported keyword 'if' at #/items/if"},
        {R"({"type":"object","properties":{"a/b":{"uniqueItems":true}}})",
         "unsupported keyword 'uniqueItems' at #/properties/a~1b/uniqueItems"},
        {R"({"$ref":"https://example.com/s.json"})", "only local references"},
        {R"({"$ref":"#/$defs/missing"})", "$ref '#/$defs/missing' does not resolve at #/$ref"},
        {R"({"allOf":[{"type":"string"},{"type":"object"}]})", "allOf: only object schemas can be merged"},
        {R"({"type":"widget"})", "unknown type 'widget' at #/type"},
        {R"({"type":"object","properties":{"a":{}},"required":["b"],"additionalProperties":false})",
         "required property 'b'"},
        {R"({"type":"string","maxLength":1000000})", "'maxLength' above 100000"},
        {R"({"type":"string","minLength":-1})", "'minLength' must be a non-negative integer at #/minLength"},
        {R"(false)", "matches nothing"},
    };
    for (const Case& c : cases) {
        auto r = json_schema_text_to_grammar(c.schema);
        ASSERT_FALSE(r.has_value()) << c.schema;
        EXPECT_NE(r.error().message().find(c.expect), std::string::npos)
            << c.schema << "\nerror: " << r.error().message();
    }
    // Annotations and numeric bounds are accepted (the bounds are not enforced).
    EXPECT_TRUE(json_schema_text_to_grammar(
                    R"({"title":"t","description":"d","type":"integer","minimum":0,"maximum":9,"default":1})")
                    .has_value());
}

TEST(JsonSchema, PlainJsonOverloadAndPropertyOrder) {
    // ordered_json keeps the schema's order; a plain json object iterates keys sorted.
    const std::string s = R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"integer"}},"required":["a","b"]})";
    auto ordered = compile(*json_schema_text_to_grammar(s));
    EXPECT_TRUE(matches(ordered, R"({"b":1,"a":2})"));
    EXPECT_FALSE(matches(ordered, R"({"a":2,"b":1})"));
    auto sorted = compile(*json_schema_to_grammar(json::parse(s)));
    EXPECT_TRUE(matches(sorted, R"({"a":2,"b":1})"));
}

// ---------------------------------------------------------------------------------------
// Token level, synthetic vocabulary

TEST(GrammarSampler, DeadEndAllowsEogAndBadTokensKillTheState) {
    auto vocab = make_token_vocab({"a", "b", "", "ab", "a"}, {2});
    auto sampler = make_grammar_sampler(compile(R"(root ::= "a" "b"? | "c")"), vocab);
    auto allowed = [&] {
        Candidates c;
        c.from_logits(std::vector<float>(6, 0.f));  // id 5 is outside the vocabulary
        sampler->apply(c);
        std::vector<int32_t> ids;
        for (const auto& x : c.data)
            if (x.logit != -INFINITY) ids.push_back(x.id);
        return ids;
    };
    EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 3, 4}));  // "a", "ab", "a" (same bytes)
    sampler->accept(0);
    EXPECT_TRUE(sampler->is_complete());
    EXPECT_EQ(allowed(), (std::vector<int32_t>{1, 2}));     // "b" or end
    sampler->accept(1);
    EXPECT_EQ(allowed(), (std::vector<int32_t>{2}));        // complete, nothing more
    sampler->reset();
    sampler->accept(1);  // "b" is not allowed first
    EXPECT_TRUE(sampler->is_dead());
    EXPECT_EQ(allowed(), (std::vector<int32_t>{2}));        // never mask everything
    // The grammar wants "c", which no token produces: EOG is offered instead.
    auto stuck = make_grammar_sampler(compile(R"(root ::= "c")"), vocab);
    Candidates c;
    c.from_logits(std::vector<float>(5, 0.f));
    stuck->apply(c);
    for (const auto& x : c.data) EXPECT_EQ(x.logit != -INFINITY, x.id == 2) << x.id;
    // Prompt tokens accepted before begin_generation() do not count.
    sampler->reset();
    sampler->accept(1);
    sampler->begin_generation();
    EXPECT_FALSE(sampler->is_dead());
    EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 3, 4}));
}

// Every position of a long bounded repetition is its own state; the tables are rebuilt
// around the live state when they pass their budget, and matching goes on unchanged.
TEST(GrammarSampler, CompactionKeepsTheState) {
    auto g = compile(R"(root ::= "a"{0,30000} ".")");
    GrammarMatcher m(g);
    auto st = m.step(m.initial(), std::string(9000, 'a'));
    EXPECT_TRUE(m.over_budget());
    st = m.compact(st);
    EXPECT_FALSE(m.over_budget());
    EXPECT_LT(m.n_states(), 10u);
    EXPECT_FALSE(m.accepting(m.step(st, std::string(21000, 'a'))));
    EXPECT_TRUE(m.accepting(m.step(st, std::string(21000, 'a') + ".")));
    EXPECT_EQ(m.step(st, std::string(21001, 'a')), GrammarMatcher::kDead);

    auto vocab = make_token_vocab({"a", "aa", ".", ""}, {3});
    auto s = make_grammar_sampler(g, vocab);
    auto allowed = [&] {
        Candidates c;
        c.from_logits(std::vector<float>(4, 0.f));
        s->apply(c);
        std::vector<int32_t> ids;
        for (const auto& x : c.data)
            if (x.logit != -INFINITY) ids.push_back(x.id);
        return ids;
    };
    for (int i = 0; i < 12000; ++i) {
        s->accept(i % 2);  // 18000 a's in all
        if (i % 1000 == 999) {
            EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 1, 2})) << i;
        }
    }
    for (int i = 0; i < 5999; ++i) s->accept(1);  // 29998
    s->accept(0);
    EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 2}));  // one more "a" fits, "aa" does not
    s->accept(0);
    EXPECT_EQ(allowed(), (std::vector<int32_t>{2}));
    s->accept(2);
    EXPECT_TRUE(s->is_complete());
    EXPECT_EQ(allowed(), (std::vector<int32_t>{3}));
}

// ---------------------------------------------------------------------------------------
// Token level, the real SmolLM2 vocabulary

class RealVocab : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tok_ = test::load_default_tokenizer(&error_).release();
        if (!tok_) return;
        std::vector<std::string> pieces(size_t(tok_->n_vocab()));
        std::vector<int32_t> eog;
        for (int32_t i = 0; i < tok_->n_vocab(); ++i) {
            pieces[size_t(i)] = tok_->token_to_piece(i, false);
            if (tok_->is_eog(i)) eog.push_back(i);
        }
        vocab_ = new std::shared_ptr<const TokenVocab>(make_token_vocab(std::move(pieces), std::move(eog)));
    }
    static void TearDownTestSuite() {
        delete tok_;
        delete vocab_;
        tok_ = nullptr;
        vocab_ = nullptr;
    }
    void SetUp() override { ASSERT_NE(tok_, nullptr) << error_; }

    static const TokenVocab& vocab() { return **vocab_; }

    // Ids whose logit apply() left finite.
    static std::vector<int32_t> allowed(GrammarSampler& s) {
        Candidates c;
        c.from_logits(std::vector<float>(size_t(tok_->n_vocab()), 0.f));
        s.apply(c);
        std::vector<int32_t> ids;
        for (const auto& x : c.data)
            if (x.logit != -INFINITY) ids.push_back(x.id);
        return ids;
    }

    // Every token checked on its own from the state reached by `text`.
    static std::vector<int32_t> brute_force(const std::shared_ptr<const Grammar>& g, const std::string& text) {
        GrammarMatcher m(g);
        const auto st = m.step(m.initial(), text);
        std::vector<int32_t> ids;
        bool any = false;
        for (int32_t id = 0; id < vocab().n_vocab(); ++id) {
            const std::string& p = vocab().piece(id);
            if (p.empty() || vocab().is_eog(id) || st == GrammarMatcher::kDead) continue;
            if (m.step(st, p) != GrammarMatcher::kDead) {
                ids.push_back(id);
                any = true;
            }
        }
        if (st == GrammarMatcher::kDead || m.accepting(st) || !any)
            for (int32_t id : vocab().eog_ids()) ids.push_back(id);
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    struct Walk {
        std::string text;
        bool ended = false;  // EOG chosen
        std::vector<double> mask_ms;
    };

    // Picks allowed tokens at random (seeded) until EOG is chosen or max_steps. Half the
    // time the pick is among tokens with a closing character, so walks finish.
    static Walk random_walk(const std::shared_ptr<const Grammar>& g, uint64_t seed, int max_steps = 3000,
                            bool cache = true) {
        auto s = make_grammar_sampler(g, *vocab_);
        if (!cache) s->set_mask_cache_size(0);
        std::mt19937_64 rng(seed);
        Walk w;
        for (int step = 0; step < max_steps; ++step) {
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<int32_t> ids = allowed(*s);
            w.mask_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            if (ids.empty()) break;
            std::vector<int32_t> eog, closing;
            for (int32_t id : ids) {
                if (vocab().is_eog(id)) eog.push_back(id);
                else if (vocab().piece(id).find_first_of("\"]}") != std::string::npos) closing.push_back(id);
            }
            if (!eog.empty() && (eog.size() == ids.size() || rng() % 10 != 0)) {
                s->accept(eog[0]);
                w.ended = true;
                break;
            }
            const auto& pool = (!closing.empty() && rng() % 2 == 0) ? closing : ids;
            int32_t id = pool[rng() % pool.size()];
            while (vocab().is_eog(id)) id = ids[rng() % ids.size()];
            w.text += vocab().piece(id);
            s->accept(id);
            EXPECT_FALSE(s->is_dead()) << w.text;
        }
        return w;
    }

    static inline Tokenizer* tok_ = nullptr;
    static inline std::shared_ptr<const TokenVocab>* vocab_ = nullptr;
    static inline std::string error_;
};

TEST_F(RealVocab, TrieMaskEqualsBruteForce) {
    struct Case {
        std::string grammar;
        std::vector<std::string> prefixes;
    };
    const Case cases[] = {
        {json_object_grammar(), {"", "{", "{\"na", "{\"name\": ", "{\"a\": 12", "{\"a\": [tr", "{\"a\": \"x\\",
                                 "{\"a\": \"\xC3", "{\"a\": {}}", "{\"a\": {}}\n  "}},
        {*json_schema_text_to_grammar(kPersonSchema),
         {"", "{\"", "{\"name\":\"Al\",", "{\"name\":\"Al\",\"kind\":\"", "{\"name\":\"1234567",
          "{\"name\":\"A\",\"kind\":3,\"tags\":[\"a\",\"b\",\"c\"", "{\"name\":\"A\",\"kind\":3,\"tags\":[\"a\"]"}},
        {*json_schema_text_to_grammar(kTreeSchema), {"{\"value\":1,\"children\":[{\"value\":-"}},
    };
    for (const Case& c : cases) {
        auto g = compile(c.grammar);
        ASSERT_TRUE(g);
        for (const std::string& prefix : c.prefixes) {
            auto s = make_grammar_sampler(g, *vocab_);
            for (int32_t id : tok_->encode(prefix, false, false)) s->accept(id);
            ASSERT_FALSE(s->is_dead()) << prefix;
            const auto got = allowed(*s);
            const auto want = brute_force(g, prefix);
            EXPECT_EQ(got, want) << "prefix: " << prefix << " (" << got.size() << " vs " << want.size() << ")";
            EXPECT_GT(got.size(), 0u);
        }
    }
}

size_t code_points(const std::string& s) {
    size_t n = 0;
    for (char c : s) n += (uint8_t(c) & 0xC0) != 0x80;
    return n;
}

TEST_F(RealVocab, RandomWalksProduceValidJson) {
    auto person = compile(*json_schema_text_to_grammar(kPersonSchema));
    auto tree = compile(*json_schema_text_to_grammar(kTreeSchema));
    auto object = compile(json_object_grammar());
    ASSERT_TRUE(person && tree && object);
    std::function<void(const json&, int)> check_node = [&](const json& n, int depth) {
        ASSERT_TRUE(n.is_object()) << n.dump();
        ASSERT_TRUE(n.contains("value") && n["value"].is_number_integer()) << n.dump();
        for (const auto& [k, v] : n.items()) EXPECT_TRUE(k == "value" || k == "label" || k == "children") << k;
        if (n.contains("label")) {
            EXPECT_TRUE(n["label"].is_null() || (n["label"].is_string() && code_points(n["label"].get<std::string>()) >= 2));
        }
        if (n.contains("children")) {
            ASSERT_TRUE(n["children"].is_array());
            EXPECT_LE(n["children"].size(), 2u);
            for (const auto& c : n["children"]) check_node(c, depth + 1);
        }
    };
    int ended = 0;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        {
            Walk w = random_walk(person, seed);
            if (!w.ended) continue;
            ++ended;
            json j;
            ASSERT_NO_THROW(j = json::parse(w.text)) << w.text;
            ASSERT_TRUE(j.is_object()) << w.text;
            const std::set<std::string> known = {"name", "kind", "version", "tags", "address", "score", "pets"};
            for (const auto& [k, v] : j.items()) EXPECT_TRUE(known.count(k)) << k;
            ASSERT_TRUE(j.contains("name") && j["name"].is_string()) << w.text;
            EXPECT_LE(code_points(j["name"].get<std::string>()), 8u) << w.text;
            ASSERT_TRUE(j.contains("kind")) << w.text;
            EXPECT_TRUE(j["kind"] == "cat" || j["kind"] == "dog" || j["kind"] == 3) << w.text;
            if (j.contains("version")) {
                EXPECT_EQ(j["version"], 2);
            }
            ASSERT_TRUE(j.contains("tags") && j["tags"].is_array()) << w.text;
            EXPECT_GE(j["tags"].size(), 1u);
            EXPECT_LE(j["tags"].size(), 3u);
            for (const auto& t : j["tags"]) EXPECT_TRUE(t.is_string());
            if (j.contains("address")) {
                const json& a = j["address"];
                ASSERT_TRUE(a.is_object());
                EXPECT_TRUE(a.contains("street") && a["street"].is_string()) << w.text;
                if (a.contains("zip")) {
                    EXPECT_TRUE(a["zip"].is_number_integer());
                }
                for (const auto& [k, v] : a.items()) EXPECT_TRUE(k == "street" || k == "zip") << k;
            }
            if (j.contains("score")) {
                EXPECT_TRUE(j["score"].is_number() || j["score"].is_null());
            }
            if (j.contains("pets")) {
                for (const auto& p : j["pets"]) {
                    EXPECT_TRUE(p.contains("id") && p["id"].is_number_integer()) << w.text;
                    EXPECT_TRUE(p.contains("alive") && p["alive"].is_boolean()) << w.text;
                }
            }
        }
        {
            Walk w = random_walk(tree, seed);
            if (w.ended) {
                ++ended;
                json j;
                ASSERT_NO_THROW(j = json::parse(w.text)) << w.text;
                check_node(j, 0);
            }
        }
        {
            Walk w = random_walk(object, seed);
            if (w.ended) {
                ++ended;
                json j;
                ASSERT_NO_THROW(j = json::parse(w.text)) << w.text;
                EXPECT_TRUE(j.is_object());
            }
        }
    }
    EXPECT_GE(ended, 30) << "most walks should reach the end of the grammar";
}

// Prints mask times over the states of random walks; never asserts on time.
TEST_F(RealVocab, MaskTime) {
    for (const auto& [label, text] : {std::pair<const char*, std::string>{"json_object", json_object_grammar()},
                                      {"person schema", *json_schema_text_to_grammar(kPersonSchema)}}) {
        auto g = compile(text);
        for (bool cache : {false, true}) {
            std::vector<double> ms;
            for (uint64_t seed = 100; seed < 104; ++seed) {
                Walk w = random_walk(g, seed, 400, cache);
                ms.insert(ms.end(), w.mask_ms.begin(), w.mask_ms.end());
            }
            std::sort(ms.begin(), ms.end());
            double sum = 0;
            for (double x : ms) sum += x;
            std::printf("[ mask time ] %-13s cache %-3s: %zu masks, mean %.3f ms, median %.3f ms, p99 %.3f ms, max %.3f ms\n",
                        label, cache ? "on" : "off", ms.size(), sum / double(ms.size()), ms[ms.size() / 2],
                        ms[ms.size() * 99 / 100], ms.back());
        }
    }
    // A long bounded string: every position is its own grammar state, so neither the mask
    // cache nor earlier transitions help much.
    {
        auto g = compile(*json_schema_text_to_grammar(
            R"({"type":"object","properties":{"text":{"type":"string","maxLength":3000}},"required":["text"]})"));
        auto s = make_grammar_sampler(g, *vocab_);
        for (int32_t id : tok_->encode("{\"text\": \"", false, false)) s->accept(id);
        std::string body;
        for (int k = 0; k < 40; ++k) body += "The quick brown fox jumps over the lazy dog, then rests. ";
        std::vector<double> ms;
        for (int32_t id : tok_->encode(body, false, false)) {
            const auto t0 = std::chrono::steady_clock::now();
            const auto ids = allowed(*s);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            ASSERT_TRUE(std::binary_search(ids.begin(), ids.end(), id));
            s->accept(id);
        }
        double sum = 0;
        for (double x : ms) sum += x;
        std::sort(ms.begin(), ms.end());
        std::printf("[ mask time ] maxLength 3000 string: %zu masks, mean %.3f ms, median %.3f ms, max %.3f ms\n",
                    ms.size(), sum / double(ms.size()), ms[ms.size() / 2], ms.back());
    }
    std::printf("[ trie      ] %zu nodes for %d tokens\n", vocab().trie().size(), vocab().n_vocab());
    // Accept cost: stepping a token through cached transitions.
    auto g = compile(json_object_grammar());
    auto s = make_grammar_sampler(g, *vocab_);
    const auto ids = tok_->encode(R"({"key": "some value with words", "n": [1, 2, 3], "o": {"p": null}})", false, false);
    for (int32_t id : ids) s->accept(id);  // warm the transitions
    const int reps = 2000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
        s->reset();
        for (int32_t id : ids) s->accept(id);
    }
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ accept    ] %.3f us per token (warm)\n", us / double(reps * ids.size()));
    EXPECT_TRUE(s->is_complete());
}

}  // namespace
}  // namespace strata::sampling
