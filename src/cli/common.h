// Shared CLI pieces: the options every model-running subcommand takes (declared once
// here, so flags, help and defaults agree), loading, and the error/exit-code convention:
// usage errors print "strata <cmd>: <flag>: <reason>" and exit 2; runtime errors exit 1.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "fv/inject.h"
#include "model/forward.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace strata::cli {

constexpr int kExitOk = 0, kExitRuntime = 1, kExitUsage = 2;

struct ModelOpts {
    std::string model;  // -m
    int threads = 0;    // -t (0 = all cores)
    int64_t ctx = 0;    // --ctx (0 = model's)
    // --numerics: "f32" (default; exact = true) or "q8" (llama.cpp's 8-bit activations).
    std::string numerics = "f32";
    bool exact = true;
    bool exact_flag = false; // --exact given (the old spelling of --numerics f32)
    bool flash_attn = true;  // --flash-attn on|off (8-bit mode: llama.cpp's FA op or not)
    std::string kv = "fp16";  // --kv
    std::string kv_k, kv_v;   // --kv-k / --kv-v (override --kv per tensor)
    std::vector<std::string> lora;  // --lora FILE[:SCALE], repeatable (applied at run time)
    std::vector<std::string> fv;    // --fv FILE[:SCALE], repeatable (add_fv_opts; function vectors)
};

void add_model_opts(CLI::App* app, ModelOpts& o);
// --chat-template NAME (chat, serve, kv-greedy): overrides the template derived from the
// model file; resolve_chat_template gives the model's own when name is empty and a usage
// error naming the known templates for an unknown name.
void add_chat_template_opt(CLI::App* app, std::string& name);
Result<ChatTemplate> resolve_chat_template(const std::string& name, const Tokenizer& tok);
void add_sampling_opts(CLI::App* app, sampling::SamplingParams& p);
// --fv FILE[:SCALE] (generate, chat, perplexity): function vectors injected by load().
void add_fv_opts(CLI::App* app, ModelOpts& o);

struct Loaded {
    std::unique_ptr<model::Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<model::Context> ctx;
    std::unique_ptr<model::MatmulHook> lora_hook;  // runtime LoRA (adapters/runtime.h), if any
    std::unique_ptr<fv::FvHook> fv_hook;           // function vectors (fv/inject.h), if any
};

// Validates options (usage errors come back with code kInvalidInput and the flag name).
Result<Loaded> load(const ModelOpts& o);

// Prints "strata <cmd>: <message>" and returns the exit code for the status.
int report(const std::string& cmd, const Status& s);

void print_timings(const engine::GenerateStats& st);

// out[v] = log-softmax of logits lg[0..V) in double (max-shifted sum of exps); the
// teacher-forced evaluations (perplexity, kv-greedy) score with it.
void log_softmax(const float* lg, int64_t V, std::vector<double>& out);

// The whole of the text file a flag names. Errors name the flag and path and are runtime
// errors (exit 1, like a missing model file): "-f: PATH: cannot open: No such file or
// directory", "...: cannot open: Permission denied", "-f: PATH: is a directory",
// "-f: PATH: read failed: <errno text>", "-f: PATH: file is empty".
Result<std::string> read_text_file(const std::string& path, const char* flag);

// The non-empty items of a comma-separated flag value ("a,,b," -> {a, b}).
std::vector<std::string> split_commas(const std::string& s);

struct Command {
    std::string name;
    std::string summary;
    std::function<void(CLI::App*)> declare;
    std::function<int()> run;
};

Command generate_command();
Command chat_command();
Command info_command();
Command bench_command();
Command perplexity_command();
Command lora_eval_command();
Command merge_command();
Command export_command();
Command serve_command();
Command fv_command();
Command kv_error_command();
Command kv_greedy_command();

}  // namespace strata::cli
