// ByteBudget and PagePool (see page_pool.h). Freed pages stay owned by the pool and are
// reused, but their bytes go back to the budget only when the pool dies: what the budget
// reports is what the process holds.
#include "kv/page_pool.h"

#include <cstring>

namespace strata::kv {

Status ByteBudget::take(size_t n) {
    if (n > limit_ - used_)
        return out_of_range("KV cache budget exhausted: {} bytes in use, {} more requested, limit {}", used_, n,
                            limit_);
    used_ += n;
    return ok_status();
}

PagePool::~PagePool() { budget_.give(pages_.size() * page_bytes_); }

Result<uint32_t> PagePool::alloc() {
    if (!free_.empty()) {
        const uint32_t id = free_.back();
        free_.pop_back();
        std::memset(pages_[id].get(), 0, page_bytes_);
        return id;
    }
    STRATA_TRY(budget_.take(page_bytes_));
    pages_.push_back(std::make_unique<uint8_t[]>(page_bytes_));  // value-initialized: zeros
    return uint32_t(pages_.size() - 1);
}

void PagePool::release(uint32_t id) { free_.push_back(id); }

}  // namespace strata::kv
