// Serving metrics in Prometheus text format: the engine's counters, plus what SLOs are
// written against -- histograms of time to first token, inter-token latency and end-to-end
// latency, requests by finish reason and by HTTP status, cancelled requests. Nothing here is
// per request (no prefix-reuse figures): a public /metrics must not let one client learn
// about another's prompts.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace strata::server {

class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double v);
    // "# HELP/# TYPE" lines, cumulative buckets (le="..."), +Inf, _sum and _count.
    std::string render(const std::string& name, const std::string& help) const;
    int64_t count() const;

private:
    std::vector<double> bounds_;
    std::vector<int64_t> counts_;  // per bucket, not cumulative; last is +Inf
    double sum_ = 0;
    int64_t n_ = 0;
    mutable std::mutex mu_;
};

class ServerMetrics {
public:
    ServerMetrics();
    void observe_ttft(double s) { ttft_.observe(s); }
    void observe_itl(double s) { itl_.observe(s); }
    void observe_e2e(double s) { e2e_.observe(s); }
    void count_finish(const std::string& reason);  // stop, length, tool_calls, cancelled, error, timeout
    void count_status(int http_status);
    std::string render(const engine::EngineStats& s) const;

private:
    Histogram ttft_, itl_, e2e_;
    mutable std::mutex mu_;
    std::map<std::string, int64_t> finish_;
    std::map<int, int64_t> status_;
};

}  // namespace strata::server
