// The tokenizer, matching llama.cpp's src/llama-vocab.cpp: validation and tables
// (create/from_gguf), the end-of-generation set, the special-token partition, byte-level BPE
// by merge rank (tokenizer.ggml.model = gpt2) and the SentencePiece driver (= llama: space
// prefix, whitespace escaping; the merge loop itself is in spm.cpp), and decoding.
// Pre-tokenization and the GPT-2 byte map live in unicode.cpp.
// Spec: shared/specs/gguf-and-llama.md §4.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <functional>

#include "base/log.h"
#include "gguf/gguf.h"
#include "tokenizer/spm.h"
#include "tokenizer/string_map.h"
#include "tokenizer/unicode.h"

namespace strata {
namespace {

// tokenizer.ggml.pre values we implement for BPE; the error for any other lists these names.
struct PreTokenizerName {
    std::string_view name;
    unicode::PreTokenizer pre;
};
constexpr PreTokenizerName kPreTokenizers[] = {{"smollm", unicode::PreTokenizer::kSmollm},
                                               {"gpt2", unicode::PreTokenizer::kGpt2},
                                               {"qwen2", unicode::PreTokenizer::kQwen2}};
constexpr std::string_view kPreTokenizerNames = "smollm, gpt2, qwen2";

// llama.cpp finds these roles by token text when the metadata does not name them, and
// forces such tokens to control type (llama_vocab::impl::load, "auto-detect special tokens
// by text"). The FIM pad/repo/sep tokens and kEogTexts also end generation. The lists are
// those of llama.cpp as vendored by llama-cpp-python 0.3.36, our reference.
using TextList = std::initializer_list<std::string_view>;
const TextList kEotTexts = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                            "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                            "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
const TextList kEomTexts = {"<|eom_id|>"};
const TextList kFimPreTexts = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                               "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
                               "<|prefix|>"};
const TextList kFimSufTexts = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                               "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
                               "<|suffix|>"};
const TextList kFimMidTexts = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                               "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
                               "<|middle|>"};
const TextList kFimPadTexts = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const TextList kFimRepTexts = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                               "<reponame>"};
const TextList kFimSepTexts = {"<|file_sep|>"};
const TextList kEogTexts = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                            "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                            "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                            "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
                            "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["};
// gpt-oss channel markers: always user-defined, so they render even without special.
const TextList kForcedUserDefinedTexts = {"<|channel|>", "<|message|>", "<|start|>",
                                          "<|constrain|>"};

bool in_list(const TextList& list, std::string_view s) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

bool is_special_type(TokenType t) {
    return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

// A run of the input: raw text still to be tokenized (id < 0) or a matched special token.
struct Fragment {
    TokenId id = -1;
    size_t off = 0;
    size_t len = 0;
};

struct Symbol {
    int32_t prev, next;
    uint32_t off, n;  // bytes of the mapped word
};

// A candidate merge of symbols left and right; stale once either side has changed size.
struct Bigram {
    int32_t rank;
    int32_t left, right;
    uint32_t size;
};
// Lowest rank first; among equal ranks the leftmost (llama.cpp's llm_bigram_bpe order).
struct BigramAfter {
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
};

// Per-call buffers, so encode() stays const and thread-safe without locks.
struct Scratch {
    std::string mapped, key;
    std::vector<Symbol> syms;
    std::vector<Bigram> heap;  // a binary heap under BigramAfter
    std::vector<unicode::Span> spans;
    std::string replaced;  // a fragment after replace_unspellable
    spm::Scratch spm;
};

}  // namespace

struct Tokenizer::Impl {
    bool spm = false;  // SentencePiece (model "llama") instead of byte-level BPE
    unicode::PreTokenizer pre = unicode::PreTokenizer::kSmollm;  // BPE only
    spm::Tables spm_tables;  // SPM only; points into token_to_id and the vocab's scores
    std::vector<TokenType> types;     // after the text-based promotions to kControl
    StringMap<TokenId> token_to_id;   // a repeated text maps to its last id, as in llama.cpp
    StringMap<int32_t> merge_rank;    // "left right" -> rank; a repeated merge keeps the first
    std::vector<TokenId> specials;    // control/user-defined/unknown ids, longest text first
    std::vector<std::string> pieces;  // bytes of each token, special tokens rendered
    std::vector<uint8_t> eog;         // by id
    std::array<bool, 256> byte_in_vocab{};  // the mapped symbol of the byte is a token

    void promote_special_tokens(const Vocab& v);
    void partition(std::string_view text, bool parse_special, const Vocab& v,
                   std::vector<Fragment>* frags,
                   const std::vector<std::pair<size_t, size_t>>* markup = nullptr) const;
    void bpe(std::string_view bytes, Scratch* s, std::vector<TokenId>* out) const;
    bool replace_unspellable(std::string_view text, std::string* out) const;
};

Tokenizer::~Tokenizer() = default;

// The type changes and the end-of-generation set of llama.cpp's vocab loader, in its order:
// roles found by text (lowest id wins where llama.cpp takes the first hash-map hit) become
// control tokens; so does every kEogTexts token; the gpt-oss markers become user-defined;
// with <|return|>/<|call|> (or <|calls|>/<|flush|>) present, <|end|> stops ending
// generation; with <|tool_response> or <|plamo:eos|>, </s> is a normal token.
void Tokenizer::Impl::promote_special_tokens(const Vocab& v) {
    const size_t n = v.tokens.size();
    TokenId eot = v.eot, eom = v.eom;
    TokenId fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    std::vector<uint8_t> promote(n, 0);
    const std::pair<TokenId*, const TextList*> roles[] = {
        {&eot, &kEotTexts},         {&eom, &kEomTexts},         {&fim_pre, &kFimPreTexts},
        {&fim_suf, &kFimSufTexts},  {&fim_mid, &kFimMidTexts},  {&fim_pad, &kFimPadTexts},
        {&fim_rep, &kFimRepTexts},  {&fim_sep, &kFimSepTexts}};
    for (size_t i = 0; i < n; ++i) {
        for (const auto& [role, texts] : roles) {
            if (*role >= 0 || !in_list(*texts, v.tokens[i])) continue;
            *role = TokenId(i);
            promote[i] = 1;
        }
    }
    eog.assign(n, 0);
    for (TokenId id : {fim_pad, fim_rep, fim_sep, v.eos, eot, eom})
        if (id >= 0) eog[size_t(id)] = 1;
    for (size_t i = 0; i < n; ++i) {
        if (in_list(kEogTexts, v.tokens[i])) eog[i] = promote[i] = 1;
        if (promote[i]) types[i] = TokenType::kControl;
        if (in_list(kForcedUserDefinedTexts, v.tokens[i])) types[i] = TokenType::kUserDefined;
    }
    auto eog_with_text = [&](std::string_view text) -> TokenId {
        for (size_t i = 0; i < n; ++i)
            if (eog[i] && v.tokens[i] == text) return TokenId(i);
        return -1;
    };
    const TokenId end = eog_with_text("<|end|>");
    const bool has_return = eog_with_text("<|return|>") >= 0, has_flush = eog_with_text("<|flush|>") >= 0;
    const bool has_call = eog_with_text("<|call|>") >= 0 || eog_with_text("<|calls|>") >= 0;
    if (end >= 0 && has_call && (has_return || has_flush)) {
        eog[size_t(end)] = 0;
        types[size_t(end)] = TokenType::kUserDefined;
    }
    const TokenId s_end = eog_with_text("</s>");
    if (s_end >= 0 && (eog_with_text("<|tool_response>") >= 0 || eog_with_text("<|plamo:eos|>") >= 0)) {
        eog[size_t(s_end)] = 0;
        types[size_t(s_end)] = TokenType::kNormal;
    }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(Vocab vocab) {
    const bool is_spm = vocab.model == "llama";
    if (vocab.model != "gpt2" && !is_spm)
        return unsupported(
            "tokenizer: unsupported tokenizer.ggml.model \"{}\" (supported: gpt2, llama)",
            vocab.model);
    // llama.cpp ignores tokenizer.ggml.pre for SentencePiece vocabs (Gemma's says "default").
    const PreTokenizerName* pre = nullptr;
    for (const auto& p : kPreTokenizers)
        if (p.name == vocab.pre) pre = &p;
    if (!pre && !is_spm)
        return unsupported("tokenizer: unsupported tokenizer.ggml.pre \"{}\" (supported: {})",
                           vocab.pre, kPreTokenizerNames);
    const size_t n = vocab.tokens.size();
    if (n == 0) return invalid_input("tokenizer: tokenizer.ggml.tokens is empty");
    if (n > size_t(INT32_MAX))
        return out_of_range("tokenizer: {} tokens exceed the supported maximum", n);
    if (vocab.types.size() != n)
        return invalid_input(
            "tokenizer: tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
            vocab.types.size(), n);
    if (!vocab.scores.empty() && vocab.scores.size() != n)
        return invalid_input(
            "tokenizer: tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {}",
            vocab.scores.size(), n);
    if (is_spm && vocab.scores.empty()) vocab.scores.assign(n, 0.0f);  // llama.cpp's default
    const std::pair<const char*, TokenId> ids[] = {
        {"bos", vocab.bos}, {"eos", vocab.eos}, {"unknown", vocab.unk},
        {"padding", vocab.pad}, {"eot", vocab.eot}, {"eom", vocab.eom}};
    for (const auto& [name, id] : ids)
        if (id < -1 || int64_t(id) >= int64_t(n))
            return invalid_input("tokenizer: {}_token_id {} is out of range (vocab has {} tokens)",
                                 name, id, n);
    if (vocab.add_bos && vocab.bos < 0)
        return invalid_input("tokenizer: add_bos_token is true but bos_token_id is not set");
    if (vocab.add_eos && vocab.eos < 0)
        return invalid_input("tokenizer: add_eos_token is true but eos_token_id is not set");

    auto impl = std::make_unique<Impl>();
    impl->spm = is_spm;
    if (pre) impl->pre = pre->pre;
    if (!is_spm) {
        impl->merge_rank.reserve(vocab.merges.size());
        for (size_t i = 0; i < vocab.merges.size(); ++i) {
            // llama.cpp splits at the first space after position 0; both sides must be non-empty.
            const std::string& m = vocab.merges[i];
            const size_t sp = m.find(' ', 1);
            if (sp == std::string::npos || sp + 1 == m.size())
                return invalid_input(
                    "tokenizer: tokenizer.ggml.merges[{}] \"{}\" is not of the form \"left right\"",
                    i, m);
            impl->merge_rank.emplace(m, int32_t(i));
        }
    }
    impl->token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) impl->token_to_id[vocab.tokens[i]] = TokenId(i);

    impl->types = vocab.types;
    for (auto& t : impl->types)
        if (int32_t(t) < 0 || int32_t(t) > int32_t(TokenType::kByte)) t = TokenType::kUndefined;
    impl->promote_special_tokens(vocab);

    for (size_t i = 0; i < n; ++i)
        if (is_special_type(impl->types[i]) && !vocab.tokens[i].empty())
            impl->specials.push_back(TokenId(i));
    std::stable_sort(impl->specials.begin(), impl->specials.end(), [&](TokenId a, TokenId b) {
        return vocab.tokens[size_t(a)].size() > vocab.tokens[size_t(b)].size();
    });

    // Decoded bytes per token, as llama.cpp's token_to_piece: special and user-defined
    // tokens verbatim; normal tokens through the inverse byte map (BPE) or with U+2581 as a
    // space (SPM); SPM byte tokens as their byte; other types empty.
    impl->pieces.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string& text = vocab.tokens[i];
        const TokenType t = impl->types[i];
        if (is_special_type(t)) {
            impl->pieces[i] = text;
        } else if (is_spm && t == TokenType::kNormal) {
            impl->pieces[i] = spm::unescape_whitespace(text);
        } else if (is_spm && t == TokenType::kByte) {
            impl->pieces[i] = std::string(1, char(spm::byte_of_token(text)));
        } else if (t == TokenType::kNormal) {
            std::string& out = impl->pieces[i];
            for (size_t pos = 0; pos < text.size();) {
                uint32_t cpt = 0;
                const size_t len = unicode::decode_utf8(text, pos, &cpt);
                const int b = unicode::cpt_to_byte(cpt);
                // A character outside the map (not in a byte-level vocab) passes through.
                if (b >= 0) out.push_back(char(b));
                else out.append(text, pos, len);
                pos += len;
            }
        }
    }

    if (is_spm) {
        // llama.cpp's byte_to_token: "<0xXX>" (upper-case hex), else the one-byte token.
        static constexpr char kHex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; ++b) {
            const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
            auto it = impl->token_to_id.find(std::string_view(name, sizeof name));
            if (it == impl->token_to_id.end())
                it = impl->token_to_id.find(std::string(1, char(b)));
            impl->spm_tables.byte_token[size_t(b)] =
                it != impl->token_to_id.end() ? it->second : vocab.unk;
        }
        impl->spm_tables.token_to_id = &impl->token_to_id;
    } else {
        for (int b = 0; b < 256; ++b)
            impl->byte_in_vocab[size_t(b)] =
                impl->token_to_id.count(unicode::byte_to_utf8(uint8_t(b))) > 0;
    }

    std::unique_ptr<Tokenizer> tok(new Tokenizer());
    tok->vocab_ = std::move(vocab);
    tok->impl_ = std::move(impl);
    tok->impl_->spm_tables.scores = &tok->vocab_.scores;  // after the move: its final address
    return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& file) {
    using gguf::ValueType;
    Vocab v;
    auto model = file.get_string("tokenizer.ggml.model");
    if (!model) return model.error().with_context("tokenizer");
    v.model = std::move(*model);
    if (file.find("tokenizer.ggml.pre")) {
        auto pre = file.get_string("tokenizer.ggml.pre");
        if (!pre) return pre.error().with_context("tokenizer");
        v.pre = std::move(*pre);
    }
    enum class Elem { kString, kInt, kNumber };  // kNumber: integer or float
    auto array = [&](const char* key, Elem kind, bool required) -> Result<const gguf::Value*> {
        const gguf::Value* a = file.find(key);
        if (!a) {
            if (required) return not_found("tokenizer: metadata key '{}' is missing", key);
            return static_cast<const gguf::Value*>(nullptr);
        }
        gguf::Value elem;  // classifies the element type with Value::is_int / is_float
        elem.type = a->elem_type;
        const bool ok = a->type == ValueType::ARRAY &&
                        (kind == Elem::kString ? a->elem_type == ValueType::STRING
                         : kind == Elem::kInt  ? elem.is_int()
                                               : elem.is_int() || elem.is_float());
        if (!ok)
            return invalid_input("tokenizer: {}: expected an array of {}, file has {}{}", key,
                                 kind == Elem::kString ? "strings"
                                 : kind == Elem::kInt  ? "integers"
                                                       : "numbers",
                                 a->type == ValueType::ARRAY ? "an array of " : "",
                                 value_type_name(a->type == ValueType::ARRAY ? a->elem_type
                                                                             : a->type));
        return a;
    };
    auto tokens = array("tokenizer.ggml.tokens", Elem::kString, true);
    if (!tokens) return tokens.error();
    v.tokens = (*tokens)->strs;
    auto types = array("tokenizer.ggml.token_type", Elem::kInt, false);
    if (!types) return types.error();
    if (*types) {
        v.types.reserve((*types)->ints.size());
        for (int64_t t : (*types)->ints)
            v.types.push_back(t >= 0 && t <= int64_t(TokenType::kByte) ? TokenType(t)
                                                                         : TokenType::kUndefined);
    } else {
        v.types.assign(v.tokens.size(), TokenType::kNormal);  // llama.cpp's default
    }
    auto merges = array("tokenizer.ggml.merges", Elem::kString, v.model == "gpt2");
    if (!merges) return merges.error();
    if (*merges) v.merges = (*merges)->strs;
    auto scores = array("tokenizer.ggml.scores", Elem::kNumber, false);
    if (!scores) return scores.error();
    if (*scores) {
        const gguf::Value& a = **scores;
        v.scores.reserve(a.floats.size() + a.ints.size());
        for (double x : a.floats) v.scores.push_back(float(x));
        for (int64_t x : a.ints) v.scores.push_back(float(x));
    }

    // llama.cpp ignores an out-of-range special id with a warning and keeps the default;
    // so do we. SentencePiece vocabs default to bos 1, eos 2, unk 0 and add BOS with a space
    // prefix (llama_vocab::impl::load); byte-level BPE has no defaults.
    const bool is_spm = v.model == "llama";
    const int64_t n = int64_t(v.tokens.size());
    auto id = [&](const char* key, TokenId dflt) -> TokenId {
        if (dflt >= n) dflt = -1;
        const int64_t x = file.get_int_or(key, -1);
        if (x == -1) return dflt;
        if (x < 0 || x >= n) {
            log_warn("tokenizer: ignoring {} = {} (vocab has {} tokens)", key, x, n);
            return dflt;
        }
        return TokenId(x);
    };
    v.bos = id("tokenizer.ggml.bos_token_id", is_spm ? 1 : -1);
    v.eos = id("tokenizer.ggml.eos_token_id", is_spm ? 2 : -1);
    v.unk = id("tokenizer.ggml.unknown_token_id", is_spm ? 0 : -1);
    v.pad = id("tokenizer.ggml.padding_token_id", -1);
    v.eot = id("tokenizer.ggml.eot_token_id", -1);
    v.eom = id("tokenizer.ggml.eom_token_id", -1);
    v.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", is_spm);
    v.add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", false);
    v.add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", is_spm);
    if (file.find("tokenizer.chat_template")) {
        auto tmpl = file.get_string("tokenizer.chat_template");
        if (!tmpl) return tmpl.error().with_context("tokenizer");
        v.chat_template = std::move(*tmpl);
    }
    return create(std::move(v));
}

// llama.cpp's tokenizer_st_partition: for each special token, longest first, cut every
// occurrence out of the raw fragments left so far. User-defined tokens are matched even
// without parse_special (as HF tokenizers do); control and unknown ones only with it.
// With `markup`, a control/unknown token is cut out only where it lies wholly inside one of
// those byte ranges (the chat template's own text), never from message content.
void Tokenizer::Impl::partition(std::string_view text, bool parse_special, const Vocab& v,
                                std::vector<Fragment>* frags,
                                const std::vector<std::pair<size_t, size_t>>* markup) const {
    auto in_markup = [&](size_t b, size_t e) {
        for (const auto& [mb, me] : *markup)
            if (b >= mb && e <= me) return true;
        return false;
    };
    frags->assign(1, Fragment{-1, 0, text.size()});
    std::vector<Fragment> next;
    for (TokenId id : specials) {
        const TokenType t = types[size_t(id)];
        if (!parse_special && (t == TokenType::kControl || t == TokenType::kUnknown)) continue;
        const std::string& tok = v.tokens[size_t(id)];
        const bool restricted = markup && (t == TokenType::kControl || t == TokenType::kUnknown);
        next.clear();
        for (const Fragment& f : *frags) {
            if (f.id >= 0) {
                next.push_back(f);
                continue;
            }
            size_t off = f.off, len = f.len;
            size_t from = off;  // search start; [off, from) stays raw text
            while (len > 0) {
                const size_t m = text.substr(0, off + len).find(tok, from);
                if (m == std::string_view::npos) break;
                if (restricted && !in_markup(m, m + tok.size())) {
                    from = m + 1;
                    continue;
                }
                if (m > off) next.push_back({-1, off, m - off});
                next.push_back({id, m, tok.size()});
                len -= m + tok.size() - off;
                off = m + tok.size();
                from = off;
            }
            if (len > 0) next.push_back({-1, off, len});
        }
        frags->swap(next);
    }
}

// Invalid UTF-8: llama.cpp turns every invalid byte into U+FFFD. We keep an invalid byte
// when the vocab has its byte symbol (so decode(encode(s)) == s) and replace only the
// others (SmolLM2 lacks 0xC0, 0xC1, 0xF5..0xFF), which would otherwise vanish. Returns
// false, leaving *out alone, when text needs no change (the common case).
bool Tokenizer::Impl::replace_unspellable(std::string_view text, std::string* out) const {
    auto unspellable = [&](uint32_t cpt) {
        return cpt >= unicode::kInvalidByte && !byte_in_vocab[cpt - unicode::kInvalidByte];
    };
    size_t pos = 0;
    uint32_t cpt = 0;
    size_t len = 0;
    for (; pos < text.size(); pos += len) {
        if (uint8_t(text[pos]) < 0x80) {
            len = 1;
            continue;
        }
        len = unicode::decode_utf8(text, pos, &cpt);
        if (unspellable(cpt)) break;
    }
    if (pos == text.size()) return false;
    out->assign(text.substr(0, pos));
    for (; pos < text.size(); pos += len) {
        len = unicode::decode_utf8(text, pos, &cpt);
        if (unspellable(cpt)) out->append("\xEF\xBF\xBD");
        else out->append(text.substr(pos, len));
    }
    return true;
}

// BPE over one pre-tokenized piece (raw bytes), as llm_tokenizer_bpe_session::tokenize.
void Tokenizer::Impl::bpe(std::string_view bytes, Scratch* s, std::vector<TokenId>* out) const {
    std::string& mapped = s->mapped;
    mapped.clear();
    auto& syms = s->syms;
    syms.clear();
    for (size_t i = 0; i < bytes.size(); ++i) {
        const std::string& m = unicode::byte_to_utf8(uint8_t(bytes[i]));
        const int32_t idx = int32_t(i);
        syms.push_back({idx - 1, i + 1 == bytes.size() ? -1 : idx + 1, uint32_t(mapped.size()),
                        uint32_t(m.size())});
        mapped += m;
    }
    auto text_of = [&](const Symbol& sym) {
        return std::string_view(mapped).substr(sym.off, sym.n);
    };
    auto& heap = s->heap;
    auto add_bigram = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        s->key.assign(text_of(syms[size_t(l)]));
        s->key.push_back(' ');
        s->key.append(text_of(syms[size_t(r)]));
        auto it = merge_rank.find(std::string_view(s->key));
        if (it == merge_rank.end()) return;
        heap.push_back({it->second, l, r, syms[size_t(l)].n + syms[size_t(r)].n});
    };
    // Seed with every adjacent pair and heapify once (linear, unlike n pushes).
    heap.clear();
    for (int32_t i = 1; i < int32_t(syms.size()); ++i) add_bigram(i - 1, i);
    std::make_heap(heap.begin(), heap.end(), BigramAfter());
    auto add_and_push = [&](int32_t l, int32_t r) {
        const size_t before = heap.size();
        add_bigram(l, r);
        if (heap.size() > before) std::push_heap(heap.begin(), heap.end(), BigramAfter());
    };
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), BigramAfter());
        const Bigram b = heap.back();
        heap.pop_back();
        Symbol& left = syms[size_t(b.left)];
        Symbol& right = syms[size_t(b.right)];
        // Stale: a side was merged away, or the right side grew (left cannot grow without
        // absorbing right, which zeroes right).
        if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
        left.n += right.n;
        right.n = 0;
        left.next = right.next;
        if (right.next >= 0) syms[size_t(right.next)].prev = b.left;
        add_and_push(left.prev, b.left);
        add_and_push(b.left, left.next);
    }
    for (const Symbol& sym : syms) {
        if (sym.n == 0) continue;
        const std::string_view str = text_of(sym);
        auto it = token_to_id.find(str);
        if (it != token_to_id.end()) {
            out->push_back(it->second);
            continue;
        }
        // Not in the vocab (incomplete byte-level vocab): llama.cpp emits whichever single
        // bytes of the mapped text are tokens and drops the rest.
        for (char c : str) {
            auto bt = token_to_id.find(std::string_view(&c, 1));
            if (bt != token_to_id.end()) out->push_back(bt->second);
        }
    }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    return encode_impl(text, add_special, parse_special, nullptr);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special,
                                       const std::vector<std::pair<size_t, size_t>>& markup) const {
    return encode_impl(text, add_special, true, &markup);
}

std::vector<TokenId> Tokenizer::encode_impl(std::string_view text, bool add_special, bool parse_special,
                                            const std::vector<std::pair<size_t, size_t>>* markup) const {
    std::vector<TokenId> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
    std::vector<Fragment> frags;
    if (!text.empty()) impl_->partition(text, parse_special, vocab_, &frags, markup);
    Scratch s;
    // SPM: a raw fragment at the start or right after a special token gets the space prefix
    // (llama.cpp's is_prev_special, true before the first fragment whether or not BOS was added).
    bool prev_special = true;
    for (const Fragment& f : frags) {
        if (f.id >= 0) {
            out.push_back(f.id);
            prev_special = true;
            continue;
        }
        std::string_view frag = text.substr(f.off, f.len);
        if (impl_->spm) {
            spm::escape_whitespace(frag, vocab_.add_space_prefix && prev_special, &s.spm.escaped);
            spm::encode(s.spm.escaped, impl_->spm_tables, &s.spm, &out);
            prev_special = false;
            continue;
        }
        s.spans.clear();
        if (impl_->replace_unspellable(frag, &s.replaced)) frag = s.replaced;
        unicode::pretokenize(frag, impl_->pre, &s.spans);
        for (const auto& sp : s.spans) impl_->bpe(frag.substr(sp.begin, sp.end - sp.begin), &s, &out);
    }
    if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
    return out;
}

// llama.cpp's token_to_piece hides control and unknown tokens unless `special`.
static bool hidden(TokenType t, bool render_special) {
    return !render_special && (t == TokenType::kControl || t == TokenType::kUnknown);
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
    if (id < 0 || id >= n_vocab()) return {};
    if (hidden(impl_->types[size_t(id)], render_special)) return {};
    return impl_->pieces[size_t(id)];
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
        const TokenId id = ids[i];
        if (id < 0 || id >= n_vocab()) continue;
        if (hidden(impl_->types[size_t(id)], render_special)) continue;
        std::string_view piece = impl_->pieces[size_t(id)];
        // The space the encoder's prefix added: stripped from the first token only.
        if (i == 0 && vocab_.add_space_prefix && !piece.empty() && piece[0] == ' ')
            piece.remove_prefix(1);
        out += piece;
    }
    return out;
}

bool Tokenizer::is_eog(TokenId id) const {
    return id >= 0 && id < n_vocab() && impl_->eog[size_t(id)];
}

}  // namespace strata
