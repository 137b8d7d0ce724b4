// The qwen2 pre-tokenizer (Qwen2/2.5/3 GGUFs, tokenizer.ggml.pre = "qwen2") against the
// pieces that the Python `regex` module cuts with the pattern of Qwen's tokenizer.json
// (tests/fixtures/reference/qwen2-pretokenizer.json, written by
// tools/dump_tokenizer_reference.py qwen2-pre), plus hand-checked cuts where it differs from
// the GPT-2 pattern, and a BPE vocab that declares it.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace strata {
namespace {

std::vector<std::string> pieces(std::string_view text, unicode::PreTokenizer pre) {
    std::vector<unicode::Span> spans;
    unicode::pretokenize(text, pre, &spans);
    std::vector<std::string> out;
    for (const auto& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
    return out;
}

std::string shown(const std::vector<std::string>& v) {
    std::string o;
    for (const auto& s : v) {
        o += "[";
        for (unsigned char c : s) o += c < 0x20 ? fmt::format("\\x{:02x}", c) : std::string(1, char(c));
        o += "]";
    }
    return o;
}

TEST(Qwen2PreTokenizer, MatchesTheRegexOnFixtures) {
    const std::string path = test::repo_path("tests/fixtures/reference/qwen2-pretokenizer.json");
    std::ifstream f(path);
    ASSERT_TRUE(f.good()) << "missing " << path << " (run tools/dump_tokenizer_reference.py qwen2-pre)";
    const auto j = nlohmann::json::parse(f);
    const auto& cases = j.at("cases");
    ASSERT_GE(cases.size(), 150u);
    int mismatches = 0;
    for (const auto& c : cases) {
        const std::string text = c.at("text").get<std::string>();
        const auto want = c.at("pieces").get<std::vector<std::string>>();
        const auto got = pieces(text, unicode::PreTokenizer::kQwen2);
        if (got != want && ++mismatches <= 20)
            ADD_FAILURE() << "text " << shown({text}) << "\n  ours:  " << shown(got)
                          << "\n  regex: " << shown(want);
    }
    EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " strings";
}

// Where qwen2 and gpt2 differ (cuts worked out by hand from the two patterns).
TEST(Qwen2PreTokenizer, DiffersFromGpt2WhereThePatternsDo) {
    using P = std::vector<std::string>;
    const auto q = [](std::string_view s) { return pieces(s, unicode::PreTokenizer::kQwen2); };
    const auto g = [](std::string_view s) { return pieces(s, unicode::PreTokenizer::kGpt2); };
    EXPECT_EQ(q("123"), (P{"1", "2", "3"}));                 // \p{N}: one digit each
    EXPECT_EQ(g("123"), (P{"123"}));
    EXPECT_EQ(q("I'Mean"), (P{"I", "'M", "ean"}));           // (?i:...) contractions
    EXPECT_EQ(g("I'Mean"), (P{"I", "'", "Mean"}));
    EXPECT_EQ(q("'sup"), g("'sup"));
    EXPECT_EQ(q("$hello"), (P{"$hello"}));                   // [^\r\n\p{L}\p{N}]?\p{L}+
    EXPECT_EQ(g("$hello"), (P{"$", "hello"}));
    EXPECT_EQ(q("!!\n\nx"), (P{"!!\n\n", "x"}));             // [^\s\p{L}\p{N}]+[\r\n]*
    EXPECT_EQ(q("a \n\n b"), (P{"a", " \n\n", " b"}));       // \s*[\r\n]+, then " b"
    EXPECT_EQ(q("x  "), (P{"x", "  "}));                     // \s+ at the end
    EXPECT_EQ(q(""), (P{}));
}

TEST(Qwen2PreTokenizer, BpeVocabDeclaringIt) {
    // The 256 byte symbols, "1 2" and "a b" merges; qwen2 keeps digits apart, gpt2 does not.
    auto vocab = [](std::string pre) {
        Vocab v;
        v.model = "gpt2";
        v.pre = std::move(pre);
        for (int b = 0; b < 256; ++b) v.tokens.push_back(unicode::byte_to_utf8(uint8_t(b)));
        v.tokens.push_back("12");
        v.tokens.push_back("ab");
        v.types.assign(v.tokens.size(), TokenType::kNormal);
        v.merges = {"1 2", "a b"};
        return v;
    };
    auto q = Tokenizer::create(vocab("qwen2"));
    auto g = Tokenizer::create(vocab("gpt2"));
    ASSERT_TRUE(q && g);
    EXPECT_EQ((*q)->encode("12ab"), (std::vector<TokenId>{'1', '2', 257}));
    EXPECT_EQ((*g)->encode("12ab"), (std::vector<TokenId>{256, 257}));
    EXPECT_EQ((*q)->decode((*q)->encode("x 12'S ab\r\n")), "x 12'S ab\r\n");
}

}  // namespace
}  // namespace strata
