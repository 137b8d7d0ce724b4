// GGUF reader: header, metadata, tensor descriptors and data offsets (gguf::File), then
// everything that consumes a parsed file: the typed accessors, `strata info`'s value
// rendering, the tokenizer built from metadata, the llama model loader (hyper-parameters,
// tensor binding) and the GGUF LoRA reader. Invariant: a File that parses has every tensor
// inside the buffer, and nothing aborts, throws or reads outside the input.
#include <cstring>

#include "adapters/gguf_lora.h"
#include "fuzz.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace strata;

adapters::ModelShape small_shape() {  // as src/adapters/test_util.h (the GGUF LoRA seeds)
    adapters::ModelShape s;
    s.n_layer = 2, s.n_embd = 8, s.n_ff = 12, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 4;
    return s;
}

volatile uint8_t g_sink;

void touch(const uint8_t* p, uint64_t n) {  // first and last byte: ASan checks the range ends
    if (n == 0) return;
    g_sink = p[0];
    g_sink = p[n - 1];
}

void exercise_tokenizer(const Tokenizer& tok) {
    for (const char* s : {"Hello world", "<|im_start|>user\nhi 123<|im_end|>", " \xF0\x9F\x98\x80 's \xC3"}) {
        const auto ids = tok.encode(s, true, true);
        for (TokenId id : ids) STRATA_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), "token id out of range");
        (void)tok.decode(ids, true);
    }
    for (TokenId id = -1; id < std::min<TokenId>(tok.n_vocab(), 64); ++id) {
        (void)tok.token_to_piece(id);
        (void)tok.is_eog(id);
    }
    (void)chat_template_from_jinja(tok.vocab().chat_template);
}

}  // namespace

STRATA_FUZZ_TARGET(gguf) {
    auto f = gguf::File::from_memory(data, size);
    if (!f) {
        STRATA_FUZZ_CHECK(!f.error().message().empty(), "error without a message");
        return 0;
    }
    const gguf::File& file = **f;
    STRATA_FUZZ_CHECK(file.version() == 2 || file.version() == 3, "");
    for (const auto& t : file.tensors()) {
        STRATA_FUZZ_CHECK(t.n_dims >= 1 && t.n_dims <= 4, t.name);
        STRATA_FUZZ_CHECK(file.find_tensor(t.name) == &t, t.name);
        STRATA_FUZZ_CHECK(t.data >= data + file.data_offset(), t.name);
        STRATA_FUZZ_CHECK(uint64_t(t.data - data) + t.nbytes <= size, t.name);
        touch(t.data, t.nbytes);
        (void)t.shape_str();
        (void)t.row_bytes();
    }
    for (const auto& [key, v] : file.metadata()) {
        STRATA_FUZZ_CHECK(file.find(key) == &v, key);
        (void)gguf::value_to_string(v);
        (void)gguf::value_to_string(v, 100000);
        (void)file.get_string(key);
        (void)file.get_int(key);
        (void)file.get_float(key);
        (void)file.get_bool(key);
        if (v.type == gguf::ValueType::ARRAY)
            STRATA_FUZZ_CHECK(v.strs.size() + v.ints.size() + v.floats.size() == v.n_elems, key);
    }

    if (auto tok = Tokenizer::from_gguf(file)) exercise_tokenizer(**tok);
    (void)adapters::parse_gguf_lora(file, small_shape(), "fuzz");

    // The model loader takes ownership of a File: parse a second one for it.
    if (file.find("general.architecture")) {
        auto f2 = gguf::File::from_memory(data, size);
        STRATA_FUZZ_CHECK(bool(f2), "second parse of the same bytes failed");
        if (auto m = model::load_model(std::move(*f2), "fuzz")) {
            const auto& hp = (*m)->hp;
            STRATA_FUZZ_CHECK(hp.n_embd > 0 && hp.n_layer > 0 && hp.n_head > 0 && hp.head_dim > 0, "");
            STRATA_FUZZ_CHECK(int64_t((*m)->layers.size()) == hp.n_layer, "");
            for (const auto& L : (*m)->layers)
                for (const model::Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) {
                    STRATA_FUZZ_CHECK(w->data >= data && uint64_t(w->data - data) + w->nbytes() <= size, w->name);
                    touch(w->data, w->nbytes());
                }
        }
    }
    return 0;
}
