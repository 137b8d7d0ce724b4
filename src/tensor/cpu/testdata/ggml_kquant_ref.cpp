// Writes kquant_ggml.bin, the fixture kquant_test.cpp compares Strata's 8-bit (q8) K-quant
// kernels with: every output comes from llama.cpp's own ggml (the libggml*.so that
// llama-cpp-python 0.3.36 built natively on this AVX-512 VNNI machine), never from
// Strata's code. Not part of the build; see testdata/README.md for the command.
//
// Per case: weight rows (real Gemma 3 270M Q4_K / Q6_K rows, or ggml-quantized random
// rows for Q5_K, which Gemma does not use), f32 activations, and
//   y_graph: ggml_mul_mat on the CPU backend, the path llama.cpp runs (weights in the
//            CPU_REPACK buffer when `repack`, as llama.cpp's default use_extra_bufts does;
//            otherwise the plain CPU buffer: vec_dot below 8 tokens, the tiled kernel above);
//   y_vdot:  the type's vec_dot (ggml_get_type_traits_cpu) per (row, token) on
//            activations quantized by its from_float;
//   xq:      those from_float (quantize_row_q8_K) activations.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "gguf.h"

namespace {

constexpr int kCols = 768;      // three super-blocks of each row (the real rows are cut to these)
constexpr int kMaxBatch = 17;
constexpr int kBatches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17};

struct Set {
    ggml_type type;
    int rows;
    bool repack;
    std::vector<uint8_t> w;  // rows x ggml_row_size(type, kCols)
};

// The first kCols values of `rows` rows of a tensor with `cols` values per row.
std::vector<uint8_t> read_rows(const char* path, const char* name, int rows, int cols, ggml_type* type) {
    gguf_init_params ip{true, nullptr};
    gguf_context* g = gguf_init_from_file(path, ip);
    if (!g) { std::fprintf(stderr, "cannot open %s\n", path); std::exit(1); }
    const int64_t id = gguf_find_tensor(g, name);
    if (id < 0) { std::fprintf(stderr, "no tensor %s\n", name); std::exit(1); }
    *type = gguf_get_tensor_type(g, id);
    const size_t off = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, id);
    const size_t rb = ggml_row_size(*type, cols), keep = ggml_row_size(*type, kCols);
    std::vector<uint8_t> all(rb * size_t(rows)), w;
    FILE* f = std::fopen(path, "rb");
    std::fseek(f, long(off), SEEK_SET);
    if (std::fread(all.data(), 1, all.size(), f) != all.size()) { std::fprintf(stderr, "short read\n"); std::exit(1); }
    std::fclose(f);
    gguf_free(g);
    for (int r = 0; r < rows; ++r) w.insert(w.end(), all.begin() + rb * r, all.begin() + rb * r + keep);
    return w;
}

// Activations shared by every batch size of a set (a batch of b uses the first b tokens):
// gaussian, one outlier per token, token 1 all zero, and token 2 with +a and -a (-a first)
// as the largest magnitudes of its first super-block: ggml's reference quantizer takes the
// first, the AVX2 4-row quantizer of the repack path the positive one.
std::vector<float> make_x(std::mt19937& rng) {
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> x(size_t(kMaxBatch) * kCols);
    for (auto& v : x) v = nd(rng);
    for (int t = 0; t < kMaxBatch; ++t) x[size_t(t) * kCols + (t * 37) % kCols] *= 30.f;
    std::fill(x.begin() + kCols, x.begin() + 2 * kCols, 0.f);
    float* r = x.data() + 2 * size_t(kCols);
    for (int j = 0; j < 256; ++j) r[j] = std::fmax(-5.f, std::fmin(5.f, r[j]));
    r[3] = -9.5f, r[100] = 9.5f;
    return x;
}

void run_graph(const Set& s, int batch, const float* xs, ggml_backend_t be, ggml_backend_buffer_type_t wbuft,
               std::vector<float>* y) {
    ggml_init_params p{2 * ggml_tensor_overhead() + ggml_graph_overhead() + 1024, nullptr, true};
    ggml_context* cw = ggml_init(p);
    ggml_tensor* w = ggml_new_tensor_2d(cw, s.type, kCols, s.rows);
    ggml_backend_buffer_t bw = ggml_backend_alloc_ctx_tensors_from_buft(cw, wbuft);
    ggml_backend_tensor_set(w, s.w.data(), 0, s.w.size());  // the repack happens here
    ggml_context* cx = ggml_init(p);
    ggml_tensor* x = ggml_new_tensor_2d(cx, GGML_TYPE_F32, kCols, batch);
    ggml_tensor* out = ggml_mul_mat(cx, w, x);
    ggml_backend_buffer_t bx = ggml_backend_alloc_ctx_tensors(cx, be);
    ggml_backend_tensor_set(x, xs, 0, size_t(batch) * kCols * 4);
    ggml_context* cg = ggml_init(p);
    ggml_cgraph* gf = ggml_new_graph(cg);
    ggml_build_forward_expand(gf, out);
    if (ggml_backend_graph_compute(be, gf) != GGML_STATUS_SUCCESS) { std::fprintf(stderr, "compute failed\n"); std::exit(1); }
    y->resize(size_t(batch) * s.rows);  // out is [rows, batch]: y[t * rows + r]
    ggml_backend_tensor_get(out, y->data(), 0, y->size() * 4);
    if (s.repack != (w->extra != nullptr)) { std::fprintf(stderr, "repack expectation wrong\n"); std::exit(1); }
    ggml_backend_buffer_free(bw);
    ggml_backend_buffer_free(bx);
    ggml_free(cg), ggml_free(cx), ggml_free(cw);
}

void put(FILE* f, const void* p, size_t n) { std::fwrite(p, 1, n, f); }
void put_u32(FILE* f, uint32_t v) { put(f, &v, 4); }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) { std::fprintf(stderr, "usage: %s <gemma-3-270m-q4_k_m.gguf> <out.bin>\n", argv[0]); return 2; }
    ggml_cpu_init();
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, 2);
    ggml_backend_dev_t dev = ggml_backend_get_device(be);
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(
        ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t repack = nullptr;
    for (ggml_backend_buffer_type_t* b = get_extra(dev); b && *b; ++b)
        if (std::string(ggml_backend_buft_name(*b)) == "CPU_REPACK") repack = *b;
    if (!repack) { std::fprintf(stderr, "no CPU_REPACK buffer type\n"); return 1; }

    std::mt19937 rng(20261206);
    std::vector<Set> sets;
    ggml_type t;
    auto wq4 = read_rows(argv[1], "blk.0.attn_output.weight", 16, 1024, &t);
    sets.push_back({t, 16, true, wq4});  // llama.cpp: 640 rows, a multiple of 8 -> q4_K 8x8 repack
    wq4.resize(ggml_row_size(t, kCols) * 13);
    sets.push_back({t, 13, false, wq4});  // 13 rows, not a multiple of 8: not repacked
    auto wq4d = read_rows(argv[1], "blk.2.ffn_down.weight", 8, 2048, &t);
    sets.push_back({t, 8, true, wq4d});
    auto wq6 = read_rows(argv[1], "blk.0.ffn_down.weight", 16, 2048, &t);
    sets.push_back({t, 16, false, wq6});  // x86 never repacks Q6_K
    {   // Q5_K (not in Gemma): ggml's own quantizer on random rows
        std::normal_distribution<float> nd(0, 0.05f);
        std::vector<float> f(16 * kCols);
        for (auto& v : f) v = nd(rng);
        std::vector<uint8_t> w(ggml_row_size(GGML_TYPE_Q5_K, kCols) * 16);
        ggml_quantize_chunk(GGML_TYPE_Q5_K, f.data(), w.data(), 0, 16, kCols, nullptr);
        sets.push_back({GGML_TYPE_Q5_K, 16, false, w});
    }

    FILE* f = std::fopen(argv[2], "wb");
    put(f, "SKQ2", 4);
    put_u32(f, uint32_t(sets.size()));
    const uint32_t n_batches = sizeof kBatches / sizeof kBatches[0];
    for (const Set& s : sets) {
        const std::vector<float> x = make_x(rng);
        const ggml_type_traits_cpu* tr = ggml_get_type_traits_cpu(s.type);
        const size_t qrb = ggml_row_size(tr->vec_dot_type, kCols), rb = ggml_row_size(s.type, kCols);
        std::vector<uint8_t> xq(qrb * kMaxBatch);
        ggml_get_type_traits_cpu(tr->vec_dot_type)->from_float(x.data(), xq.data(), int64_t(kCols) * kMaxBatch);
        std::vector<float> yv(size_t(kMaxBatch) * s.rows);
        for (int b = 0; b < kMaxBatch; ++b)
            for (int r = 0; r < s.rows; ++r)
                tr->vec_dot(kCols, &yv[size_t(b) * s.rows + r], 0, s.w.data() + rb * r, 0, xq.data() + qrb * b, 0, 1);
        for (uint32_t v : {uint32_t(s.type), uint32_t(s.rows), uint32_t(kCols), uint32_t(s.repack),
                           uint32_t(kMaxBatch), n_batches})
            put_u32(f, v);
        for (int b : kBatches) put_u32(f, uint32_t(b));
        put(f, s.w.data(), s.w.size());
        put(f, x.data(), x.size() * 4);
        put(f, xq.data(), xq.size());
        put(f, yv.data(), yv.size() * 4);
        for (int b : kBatches) {
            std::vector<float> yg;
            run_graph(s, b, x.data(), be, s.repack ? repack : ggml_backend_cpu_buffer_type(), &yg);
            put(f, yg.data(), yg.size() * 4);
            int same = 0;
            for (size_t k = 0; k < yg.size(); ++k) same += std::memcmp(&yg[k], &yv[k], 4) == 0;
            std::printf("%-5s rows %2d repack %d batch %2d: graph == vec_dot for %3d of %3zu\n",
                        ggml_type_name(s.type), s.rows, int(s.repack), b, same, yg.size());
        }
    }
    std::fclose(f);
    ggml_backend_free(be);
    return 0;
}
