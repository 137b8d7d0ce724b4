// A hash map keyed by std::string that is searched with a std::string_view and no copy
// (C++20 heterogeneous lookup). The token text -> id table of tokenizer.cpp, which the BPE
// merge loop and spm.cpp's merge loop query once per candidate pair.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace strata {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace strata
