// The merge-method registry: one line per method, in help order. Names are user-facing
// (flags, docs) and never renamed once released.
#include "adapters/merge.h"

namespace strata::adapters {

std::unique_ptr<MergeMethod> make_linear_merge();
std::unique_ptr<MergeMethod> make_task_arithmetic_merge();
std::unique_ptr<MergeMethod> make_ties_merge();
std::unique_ptr<MergeMethod> make_dare_merge();
std::unique_ptr<MergeMethod> make_dare_ties_merge();
std::unique_ptr<MergeMethod> make_tada_merge();

namespace {
struct Entry {
    const char* name;
    std::unique_ptr<MergeMethod> (*make)();
};
constexpr Entry kMethods[] = {
    {"linear", make_linear_merge},  {"task_arithmetic", make_task_arithmetic_merge},
    {"ties", make_ties_merge},      {"dare", make_dare_merge},
    {"dare_ties", make_dare_ties_merge}, {"tada", make_tada_merge},
};
}  // namespace

std::vector<std::string> merge_method_names() {
    std::vector<std::string> v;
    for (const auto& e : kMethods) v.emplace_back(e.name);
    return v;
}

Result<std::unique_ptr<MergeMethod>> make_merge_method(std::string_view name) {
    for (const auto& e : kMethods)
        if (name == e.name) return e.make();
    std::string known;
    for (const auto& n : merge_method_names()) known += (known.empty() ? "" : ", ") + n;
    return invalid_input("--method: unknown method \"{}\" (known: {})", name, known);
}

}  // namespace strata::adapters
