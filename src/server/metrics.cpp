#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata::server {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
    const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    std::lock_guard<std::mutex> lk(mu_);
    counts_[i]++;
    sum_ += v;
    n_++;
}

int64_t Histogram::count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return n_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
    std::lock_guard<std::mutex> lk(mu_);
    std::string m = fmt::format("# HELP strata_{} {}\n# TYPE strata_{} histogram\n", name, help, name);
    int64_t cum = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
        cum += counts_[i];
        m += fmt::format("strata_{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
    }
    cum += counts_.back();
    m += fmt::format("strata_{}_bucket{{le=\"+Inf\"}} {}\nstrata_{}_sum {}\nstrata_{}_count {}\n", name, cum, name,
                     sum_, name, n_);
    return m;
}

ServerMetrics::ServerMetrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5}),
      e2e_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}) {}

void ServerMetrics::count_finish(const std::string& reason) {
    std::lock_guard<std::mutex> lk(mu_);
    finish_[reason]++;
}

void ServerMetrics::count_status(int http_status) {
    std::lock_guard<std::mutex> lk(mu_);
    status_[http_status]++;
}

std::string ServerMetrics::render(const engine::EngineStats& s) const {
    std::string m;
    auto metric = [&](const char* name, const char* type, const char* help, double v) {
        m += fmt::format("# HELP strata_{} {}\n# TYPE strata_{} {}\nstrata_{} {}\n", name, help, name, type, name, v);
    };
    metric("prompt_tokens_total", "counter", "Prompt tokens evaluated.", double(s.prompt_tokens_total));
    metric("generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens_total));
    metric("prompt_tokens_per_second", "gauge", "Mean prompt tokens per second since start.",
           s.uptime_s > 0 ? double(s.prompt_tokens_total) / s.uptime_s : 0);
    metric("generated_tokens_per_second", "gauge", "Mean generated tokens per second since start.",
           s.uptime_s > 0 ? double(s.generated_tokens_total) / s.uptime_s : 0);
    metric("kv_usage_ratio", "gauge", "KV bytes held by running sequences over the KV budget.",
           s.kv_budget_bytes ? double(s.kv_used_bytes) / double(s.kv_budget_bytes) : 0);
    metric("requests_running", "gauge", "Sequences in slots.", double(s.requests_running));
    metric("requests_queued", "gauge", "Requests waiting for a slot.", double(s.requests_queued));
    metric("requests_rejected_total", "counter", "Requests answered 429.", double(s.requests_rejected));
    metric("requests_finished_total", "counter", "Requests finished.", double(s.requests_finished));
    metric("preemptions_total", "counter", "Running sequences preempted (re-queued) when the KV budget ran out.",
           double(s.preemptions));
    m += ttft_.render("time_to_first_token_seconds", "Time from request arrival to its first generated token.");
    m += itl_.render("inter_token_latency_seconds", "Time between consecutive generated tokens of a request.");
    m += e2e_.render("request_duration_seconds", "Time from request arrival to its last token or error.");
    std::lock_guard<std::mutex> lk(mu_);
    m += "# HELP strata_requests_by_finish_reason_total Completions by finish reason.\n"
         "# TYPE strata_requests_by_finish_reason_total counter\n";
    for (const char* r : {"stop", "length", "tool_calls", "cancelled", "error", "timeout"}) {
        auto it = finish_.find(r);
        m += fmt::format("strata_requests_by_finish_reason_total{{reason=\"{}\"}} {}\n", r,
                         it == finish_.end() ? 0 : it->second);
    }
    {
        auto it = finish_.find("cancelled");
        metric("requests_cancelled_total", "counter", "Requests cancelled: client gone, deadline or shutdown.",
               double(it == finish_.end() ? 0 : it->second));
    }
    m += "# HELP strata_http_responses_total HTTP responses by status code.\n"
         "# TYPE strata_http_responses_total counter\n";
    for (const auto& [code, n] : status_) m += fmt::format("strata_http_responses_total{{code=\"{}\"}} {}\n", code, n);
    return m;
}

}  // namespace strata::server
