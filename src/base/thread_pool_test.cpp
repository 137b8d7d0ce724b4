// ThreadPool: every index is visited exactly once, for many sizes and grains, repeatedly.
#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace strata {
namespace {

TEST(ThreadPool, ParallelForCoversEachIndexOnce) {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        for (int64_t n : {1, 2, 7, 64, 1000}) {
            for (int64_t grain : {1, 4, 32}) {
                std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                for (int rep = 0; rep < 20; ++rep)
                    pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
                        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
                    });
                for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 20) << n << " " << grain;
            }
        }
    }
}

TEST(ThreadPool, RunCallsEveryThread) {
    ThreadPool pool(3);
    std::atomic<int> mask{0};
    pool.run([&](int ti, int nt) {
        EXPECT_EQ(nt, 3);
        mask |= 1 << ti;
    });
    EXPECT_EQ(mask.load(), 7);
}

}  // namespace
}  // namespace strata
