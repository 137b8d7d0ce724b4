// Task files, split and prompt construction.
#include "fv/tasks.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace strata::fv {

Result<Task> parse_task(std::string_view text, const std::string& name, uint64_t split_seed, double train_frac) {
    Task t;
    t.name = name;
    size_t line_no = 0, start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        ++line_no;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        if (line.empty()) {
            if (end == text.size()) break;
            continue;
        }
        if (t.pairs.size() >= kMaxPairs) return invalid_input("{}:{}: more than {} pairs", name, line_no, kMaxPairs);
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return invalid_input("{}:{}: not a JSON object (expected {{\"input\": ..., \"output\": ...}})", name, line_no);
        Pair p;
        for (auto [key, dst] : {std::pair{"input", &p.input}, {"output", &p.output}}) {
            auto it = j.find(key);
            if (it == j.end() || !it->is_string()) return invalid_input("{}:{}: missing string field \"{}\"", name, line_no, key);
            *dst = it->get<std::string>();
            if (dst->empty() || dst->size() > kMaxFieldBytes)
                return invalid_input("{}:{}: \"{}\" must be 1..{} bytes", name, line_no, key, kMaxFieldBytes);
            for (char c : *dst)
                if (c == '\n' || c == '\r') return invalid_input("{}:{}: \"{}\" contains a newline", name, line_no, key);
        }
        t.pairs.push_back(std::move(p));
        if (end == text.size()) break;
    }
    if (t.pairs.size() < kMinPairs)
        return invalid_input("{}: {} pairs; a task needs at least {} (10 demonstrations + queries)", name, t.pairs.size(),
                             kMinPairs);
    if (!(train_frac > 0.0 && train_frac < 1.0)) return invalid_input("train fraction must be in (0, 1)");
    std::vector<size_t> idx(t.pairs.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::mt19937_64 rng(split_seed);
    for (size_t i = idx.size() - 1; i > 0; --i) std::swap(idx[i], idx[size_t(rng() % (i + 1))]);
    const size_t n_train = std::max<size_t>(11, size_t(double(idx.size()) * train_frac));
    for (size_t i = 0; i < idx.size(); ++i) (i < n_train ? t.train : t.test).push_back(t.pairs[idx[i]]);
    return t;
}

Result<Task> load_task(const std::string& path, uint64_t split_seed, double train_frac) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return not_found("{}: no such task file", path);
    if (std::filesystem::file_size(path, ec) > (64u << 20)) return invalid_input("{}: task file larger than 64 MiB", path);
    std::ifstream f(path, std::ios::binary);
    if (!f) return not_found("{}: cannot open task file", path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string name = std::filesystem::path(path).stem().string();
    auto t = parse_task(ss.str(), path, split_seed, train_frac);
    if (!t) return t;
    t->name = name;
    return t;
}

Prompt build_prompt(const Tokenizer& tok, std::span<const Pair> demos, const Pair& query) {
    Prompt p;
    if (tok.bos() >= 0) p.tokens.push_back(tok.bos());
    auto append = [&](const std::string& s) {
        auto ids = tok.encode(s, false, false);
        p.tokens.insert(p.tokens.end(), ids.begin(), ids.end());
        return ids.size();
    };
    for (const Pair& d : demos) {
        append("Q: " + d.input + "\nA:");
        const size_t at = p.tokens.size();
        const size_t n = append(" " + d.output);
        for (size_t i = 0; i < n; ++i) p.label_pos.push_back(int32_t(at + i));
        append("\n\n");
    }
    append("Q: " + query.input + "\nA:");
    auto t = tok.encode(" " + query.output, false, false);
    p.target = t.empty() ? -1 : t[0];
    return p;
}

std::vector<Pair> sample_demos(std::span<const Pair> pool, const Pair& query, int n, bool shuffle, std::mt19937_64& rng) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < pool.size(); ++i)
        if (pool[i].input != query.input) idx.push_back(i);
    std::vector<Pair> out;
    for (int k = 0; k < n && !idx.empty(); ++k) {
        const size_t j = size_t(rng() % idx.size());
        out.push_back(pool[idx[j]]);
        idx.erase(idx.begin() + std::ptrdiff_t(j));
    }
    if (shuffle && out.size() > 1) {
        std::vector<std::string> labels;
        for (auto& p : out) labels.push_back(p.output);
        for (size_t i = labels.size() - 1; i > 0; --i) std::swap(labels[i], labels[size_t(rng() % (i + 1))]);
        for (size_t i = 0; i < out.size(); ++i) out[i].output = labels[i];
    }
    return out;
}

}  // namespace strata::fv
