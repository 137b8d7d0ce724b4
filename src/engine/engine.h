// Engine: the serving core. Requests enter a bounded queue; a scheduler thread admits
// them into slots while the KV budget holds their current tokens, and every step advances
// each running sequence by one prefill chunk or one decoded token, so new requests join
// between steps (continuous batching at step granularity) and long prompts never stall
// running decodes. When the budget cannot hold the next step's tokens, the newest running
// sequence is preempted: its cache is freed and it goes back to the front of the queue with
// its sampler state and generated tokens, to be recomputed and continued (never dropped).
// Results stream back through a per-request callback. The server (src/server) and any
// other front end talk to this class only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kv/kv_cache.h"
#include "model/forward.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace strata::engine {

struct EngineOptions {
    int n_slots = 4;               // --parallel: sequences decoded concurrently
    int64_t n_ctx = 2048;          // --ctx: tokens per sequence (prompt + output)
    int64_t kv_budget_bytes = 0;   // --kv-budget-mb: 0 = n_slots * n_ctx tokens' worth
    int64_t max_queue = 64;        // queued requests beyond which submit() answers "busy"
    int64_t prefill_chunk = 64;    // prompt tokens evaluated per step per sequence
    int n_threads = 2;
    bool exact = false;
    bool flash_attn = true;  // 8-bit mode: llama.cpp's flash-attention op (model::ContextParams)
    kv::KvSpec kv;                 // --kv / --kv-k / --kv-v
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason r);

// A request's hook that acts on its answer positions only: the last prompt token and every
// generated token (function vectors steer the answer, not the prompt). The engine attaches it
// to the slot's context and says before each step whether that step's rows reach the answer
// (with prefill in chunks, only the final chunk does). Implementations forward to the real
// hook while active and do nothing otherwise.
class AnswerHook {
public:
    virtual ~AnswerHook() = default;
    virtual void attach(model::Context& ctx) = 0;
    virtual void set_active(bool on) = 0;
};

// Per-request model hooks (runtime LoRA adapters, function vectors) chosen by the front end.
// `key` names their combined effect: cached K/V are reused across requests only under an
// equal key, and never past the first answer position of a request with an answer hook.
struct RequestHooks {
    std::string key;
    std::vector<std::shared_ptr<model::MatmulHook>> every_token;  // e.g. LoRA: all positions
    std::shared_ptr<AnswerHook> answer;                           // e.g. function vectors
};

// One generated token as the sampler saw it: its log-probability under the model's own
// distribution (log-softmax of the raw logits, before penalties, constraints and temperature)
// and the most likely alternatives, when the request asked for logprobs.
struct TokenLogprob {
    int32_t id = -1;
    float logprob = 0;
};
struct TokenInfo {
    int32_t id = -1;
    float logprob = 0;
    std::vector<TokenLogprob> top;  // best first; empty unless GenRequest::logprobs > 0
};

// What a request's callback receives: after each generated token the text it released
// (may be empty: incomplete UTF-8 or a possible stop-string prefix) and the token itself,
// and once more with finish != kNone (token null).
struct Event {
    std::string_view piece;
    FinishReason finish = FinishReason::kNone;
    int64_t n_generated = 0;
    const TokenInfo* token = nullptr;
};

struct GenRequest {
    std::vector<int32_t> prompt;
    sampling::SamplingParams sampling;
    int32_t max_tokens = 0;         // 0: the room left in the context (and KV budget) after the prompt
    std::vector<std::string> stop;  // stop strings (not included in the output)
    bool ignore_eos = false;        // keep generating past end-of-generation tokens
    int32_t logprobs = -1;          // -1: none; k >= 0: the token's logprob and k alternatives
    RequestHooks hooks;             // none by default: the base model
    // A sampler stage placed first in the chain (e.g. a grammar constraint), made per request.
    std::function<std::unique_ptr<sampling::Sampler>()> constraint;
    // Called from the scheduler thread; returning false cancels the request.
    std::function<bool(const Event&)> on_event;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
};

struct EngineStats {
    int64_t prompt_tokens_total = 0, generated_tokens_total = 0;
    int64_t requests_running = 0, requests_queued = 0, requests_rejected = 0, requests_finished = 0;
    int64_t preemptions = 0, prefix_reused_tokens = 0;
    int64_t kv_used_bytes = 0, kv_budget_bytes = 0;
    double uptime_s = 0;
};

class Engine {
public:
    static Result<std::unique_ptr<Engine>> create(const model::Model& model, const Tokenizer& tok,
                                                  EngineOptions opts);
    ~Engine();

    // Queues a request (max_tokens 0 becomes the room left). Errors: kOutOfRange when
    // prompt + max_tokens cannot fit one sequence or the whole KV budget; "busy"
    // (ErrorCode::kIo) when the queue is full.
    Status submit(std::shared_ptr<GenRequest> req);
    EngineStats stats() const;
    const EngineOptions& options() const { return opts_; }
    int64_t kv_bytes_per_token() const { return kv_bytes_per_token_; }
    // Tokens one sequence can hold: the context, or less when the KV budget is smaller.
    int64_t max_sequence_tokens() const;

private:
    struct Slot;
    struct Resume;  // a preempted request's generation state
    struct Queued {
        std::shared_ptr<GenRequest> req;
        std::shared_ptr<Resume> resume;  // null for a new request
    };
    Engine(const model::Model& m, const Tokenizer& t, EngineOptions o);
    void loop();
    void admit_locked();
    bool prepare_slot(Slot& s);
    void complete_slot(Slot& s, std::span<const float> logits);
    void finish(Slot& s, FinishReason r);
    void preempt_locked(Slot& s);
    int64_t tokens_held_locked() const;  // KV tokens the running slots hold after this step

    const model::Model& model_;
    const Tokenizer& tok_;
    EngineOptions opts_;
    int64_t kv_bytes_per_token_ = 0;
    std::unique_ptr<ThreadPool> pool_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::deque<Queued> queue_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<bool> stop_{false};
    EngineStats st_;
    uint64_t admit_seq_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::thread thread_;
};

// Fills out->logprob (token t) and out->top (the k most likely tokens, best first) from the
// log-softmax of raw logits.
void token_logprobs(std::span<const float> logits, int32_t t, int32_t k, TokenInfo* out);

// Holds back text that may be the start of a stop string; returns what is safe to emit
// and sets *hit when a stop string completed (the output then ends before it).
std::string filter_stop(std::string& pending, const std::vector<std::string>& stops, bool* hit);

}  // namespace strata::engine
