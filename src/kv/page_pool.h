// Memory for the KV cache: a ByteBudget that every allocation of a sequence's cache is
// charged to, and PagePool, fixed-size zeroed pages for one layer handed out by index.
// A LayerCache keeps its page table (page ids in token order); bytes per cached token are
// read from what these two have handed out, not computed from format formulas.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"

namespace strata::kv {

class ByteBudget {
public:
    explicit ByteBudget(size_t limit) : limit_(limit) {}
    Status take(size_t n);
    void give(size_t n) { used_ -= n; }
    size_t used() const { return used_; }
    size_t limit() const { return limit_; }

private:
    size_t limit_, used_ = 0;
};

class PagePool {
public:
    PagePool(size_t page_bytes, ByteBudget& budget) : page_bytes_(page_bytes), budget_(budget) {}
    ~PagePool();
    PagePool(const PagePool&) = delete;
    PagePool& operator=(const PagePool&) = delete;

    Result<uint32_t> alloc();  // a zeroed page
    void release(uint32_t id);
    uint8_t* page(uint32_t id) { return pages_[id].get(); }
    const uint8_t* page(uint32_t id) const { return pages_[id].get(); }
    size_t page_bytes() const { return page_bytes_; }
    size_t bytes_in_use() const { return (pages_.size() - free_.size()) * page_bytes_; }

private:
    size_t page_bytes_;
    ByteBudget& budget_;
    std::vector<std::unique_ptr<uint8_t[]>> pages_;
    std::vector<uint32_t> free_;
};

}  // namespace strata::kv
