// Function-vector task data (JSON lines of {"input", "output"}), the seeded train/test split
// and the Q/A prompt template of shared/specs/function-vectors.md §2.2:
//   [BOS] "Q: x_1\nA: y_1\n\nQ: x_2\nA: y_2\n\n ... Q: x_q\nA:"   target: first token of " y_q"
// Prompts are built by tokenizing the pieces separately (each starts where the pre-tokenizer
// would split anyway), so the token positions of every demonstration label are known.
#pragma once

#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace strata::fv {

struct Pair {
    std::string input, output;
};

struct Task {
    std::string name;  // file stem
    std::vector<Pair> pairs;
    std::vector<Pair> train, test;  // seeded split of pairs
};

constexpr size_t kMaxPairs = 100000, kMaxFieldBytes = 256, kMinPairs = 12;

// Parses and validates the file (errors name file:line); splits train_frac / rest.
Result<Task> load_task(const std::string& path, uint64_t split_seed = 1234, double train_frac = 0.6);
Result<Task> parse_task(std::string_view text, const std::string& name, uint64_t split_seed = 1234,
                        double train_frac = 0.6);

struct Prompt {
    std::vector<int32_t> tokens;
    int32_t target = -1;              // first token of " " + query output
    std::vector<int32_t> label_pos;   // positions of the demonstration output tokens
};

// demos: the demonstrations in order (labels as given); query: its output is the target.
Prompt build_prompt(const Tokenizer& tok, std::span<const Pair> demos, const Pair& query);

// n demonstrations drawn from pool without the query's input; when shuffle, their outputs are
// permuted among themselves (Todd's corrupted prompts).
std::vector<Pair> sample_demos(std::span<const Pair> pool, const Pair& query, int n, bool shuffle, std::mt19937_64& rng);

}  // namespace strata::fv
