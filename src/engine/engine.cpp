// Engine scheduler: admission by KV budget, per-step prefill chunks and decode tokens,
// prompt-prefix reuse within a slot, stop strings, cancellation.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/generate.h"

namespace strata::engine {

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::kStop: return "stop";
        case FinishReason::kLength: return "length";
        case FinishReason::kCancelled: return "cancelled";
        case FinishReason::kError: return "error";
        default: return "";
    }
}

std::string filter_stop(std::string& pending, const std::vector<std::string>& stops, bool* hit) {
    *hit = false;
    size_t cut = std::string::npos;
    for (const auto& s : stops) {
        if (s.empty()) continue;
        const size_t p = pending.find(s);
        if (p != std::string::npos && p < cut) cut = p;
    }
    if (cut != std::string::npos) {
        *hit = true;
        std::string out = pending.substr(0, cut);
        pending.clear();
        return out;
    }
    // Keep the longest suffix that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const auto& s : stops)
        for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), pending.size()); k > keep; --k)
            if (pending.compare(pending.size() - k, k, s, 0, k) == 0) {
                keep = k;
                break;
            }
    std::string out = pending.substr(0, pending.size() - keep);
    pending.erase(0, pending.size() - keep);
    return out;
}

// log-softmax of the raw logits: the sampled token's logprob and the k most likely tokens.
void token_logprobs(std::span<const float> logits, int32_t t, int32_t k, TokenInfo* out) {
    float mx = -INFINITY;
    for (float v : logits) mx = std::max(mx, v);
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v) - mx);
    const float lse = mx + float(std::log(sum));
    out->logprob = logits[size_t(t)] - lse;
    out->top.clear();
    if (k <= 0) return;
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
    const size_t n = std::min<size_t>(size_t(k), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + int64_t(n), ids.end(), [&](int32_t a, int32_t b) {
        return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    });
    for (size_t i = 0; i < n; ++i) out->top.push_back({ids[i], logits[size_t(ids[i])] - lse});
}

struct Engine::Resume {
    std::unique_ptr<sampling::Chain> chain;  // has accepted the prompt and every generated token
    std::vector<int32_t> generated;
    int32_t n_generated = 0;
    std::string utf8_pending, stop_pending;
};

struct Engine::Slot {
    std::unique_ptr<model::Context> ctx;
    std::shared_ptr<GenRequest> req;
    std::unique_ptr<sampling::Chain> chain;
    std::vector<int32_t> cached;   // tokens whose K/V are in ctx (for prefix reuse)
    std::string hooks_key;         // RequestHooks::key the cached K/V were computed under
    size_t clean_len = SIZE_MAX;   // cached tokens reusable at all (see RequestHooks)
    std::vector<int32_t> target;   // to evaluate before sampling: the prompt (+ generated, if resumed)
    size_t n_prompt_done = 0;      // target tokens evaluated
    bool resumed = false;          // the chain has already accepted the target
    std::vector<int32_t> generated;
    std::vector<float> logits;     // last logits (after prefill or a decode step)
    int32_t n_generated = 0;
    std::string utf8_pending, stop_pending;
    std::vector<int32_t> feed;     // tokens this step evaluates
    uint64_t seq = 0;              // admission order (the newest is preempted first)
    bool active = false;
};

Engine::Engine(const model::Model& m, const Tokenizer& t, EngineOptions o) : model_(m), tok_(t), opts_(o) {}

Result<std::unique_ptr<Engine>> Engine::create(const model::Model& model, const Tokenizer& tok, EngineOptions o) {
    if (o.n_slots < 1 || o.n_slots > 256) return invalid_input("--parallel: must be in 1..256 (got {})", o.n_slots);
    if (o.n_ctx < 16) return invalid_input("--ctx: must be at least 16 (got {})", o.n_ctx);
    if (o.n_ctx > model.hp.n_ctx_train)
        return invalid_input("--ctx: {} exceeds the model's training context {}", o.n_ctx, model.hp.n_ctx_train);
    std::unique_ptr<Engine> e(new Engine(model, tok, o));
    // Bytes per cached token, measured from the allocator: fill a throwaway cache of this
    // format to the slot length, so fixed per-sequence costs (KVarN's FP sink and tail,
    // page rounding) are amortized the way a full-length request would see them.
    {
        const auto& hp = model.hp;
        kv::CacheShape shape{int(hp.n_layer), int(hp.n_head), int(hp.n_head_kv), int(hp.head_dim), o.n_ctx};
        auto probe = kv::KvCache::create(o.kv, shape);
        if (!probe) return probe.error();
        const int64_t kv_dim = hp.n_head_kv * hp.head_dim;
        std::vector<float> k(size_t(kv_dim * 64)), v(k.size());
        for (size_t i = 0; i < k.size(); ++i) k[i] = float((i * 7919) % 1000) / 500.f - 1.f, v[i] = -k[i];
        for (int64_t t = 0; t < o.n_ctx; t += 64) {
            const int64_t n = std::min<int64_t>(64, o.n_ctx - t);
            for (int l = 0; l < (*probe)->n_layer(); ++l)
                if (Status s = (*probe)->layer(l).append(k.data(), v.data(), n); !s) return s;
        }
        e->kv_bytes_per_token_ = int64_t(((*probe)->bytes() + size_t(o.n_ctx) - 1) / size_t(o.n_ctx));
    }
    if (e->opts_.kv_budget_bytes == 0) e->opts_.kv_budget_bytes = int64_t(o.n_slots) * o.n_ctx * e->kv_bytes_per_token_;
    if (e->opts_.kv_budget_bytes < e->kv_bytes_per_token_ * 16)
        return invalid_input("--kv-budget-mb: {} bytes hold fewer than 16 tokens", e->opts_.kv_budget_bytes);
    e->pool_ = std::make_unique<ThreadPool>(o.n_threads);
    for (int i = 0; i < o.n_slots; ++i) {
        model::ContextParams cp;
        cp.n_ctx = o.n_ctx;
        cp.exact = o.exact;
        cp.flash_attn = o.flash_attn;
        cp.kv = o.kv;
        cp.pool = e->pool_.get();
        auto c = model::Context::create(model, cp);
        if (!c) return c.error();
        auto s = std::make_unique<Slot>();
        s->ctx = std::move(*c);
        e->slots_.push_back(std::move(s));
    }
    e->st_.kv_budget_bytes = e->opts_.kv_budget_bytes;
    e->start_ = std::chrono::steady_clock::now();
    e->thread_ = std::thread([p = e.get()] { p->loop(); });
    return e;
}

Engine::~Engine() {
    stop_ = true;
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

int64_t Engine::max_sequence_tokens() const {
    return std::min<int64_t>(opts_.n_ctx, opts_.kv_budget_bytes / std::max<int64_t>(1, kv_bytes_per_token_));
}

Status Engine::submit(std::shared_ptr<GenRequest> req) {
    if (req->prompt.empty()) return invalid_input("prompt is empty");
    if (req->max_tokens < 0) return invalid_input("max_tokens must be positive");
    if (req->max_tokens == 0) {
        const int64_t room = max_sequence_tokens() - int64_t(req->prompt.size());
        if (room < 1)
            return out_of_range("prompt ({} tokens) leaves no room to generate in the context size {}",
                                req->prompt.size(), max_sequence_tokens());
        req->max_tokens = int32_t(std::min<int64_t>(room, INT32_MAX));
    }
    const int64_t need = int64_t(req->prompt.size()) + req->max_tokens;
    if (need > opts_.n_ctx)
        return out_of_range("prompt ({} tokens) plus max_tokens ({}) exceeds the context size {}", req->prompt.size(),
                            req->max_tokens, opts_.n_ctx);
    if (need * kv_bytes_per_token_ > opts_.kv_budget_bytes)
        return out_of_range("request needs {} KV bytes but the whole budget is {}", need * kv_bytes_per_token_,
                            opts_.kv_budget_bytes);
    if (Status s = req->sampling.validate(); !s) return s;
    std::lock_guard<std::mutex> lk(mu_);
    if (int64_t(queue_.size()) >= opts_.max_queue) {
        st_.requests_rejected++;
        return io_error("server busy: {} requests queued", queue_.size());
    }
    queue_.push_back({std::move(req), nullptr});
    cv_.notify_all();
    return ok_status();
}

EngineStats Engine::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    EngineStats s = st_;
    s.requests_queued = int64_t(queue_.size());
    s.kv_used_bytes = tokens_held_locked() * kv_bytes_per_token_;
    s.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    return s;
}

int64_t Engine::tokens_held_locked() const {
    int64_t n = 0;
    for (const auto& s : slots_)
        if (s->active) n += int64_t(std::max(s->cached.size(), s->target.size())) + 1;
    return n;
}

// Moves queued requests into free slots while the budget holds their tokens (prompt, or
// prompt and generated tokens of a resumed request, plus the next one) on top of what the
// running slots hold. A slot whose cached tokens share the longest prefix is preferred.
void Engine::admit_locked() {
    while (!queue_.empty()) {
        auto& q = queue_.front();
        auto& req = q.req;
        if (req->cancelled->load()) {
            req->on_event(Event{"", FinishReason::kCancelled, q.resume ? q.resume->n_generated : 0, nullptr});
            queue_.pop_front();
            continue;
        }
        std::vector<int32_t> target = req->prompt;
        if (q.resume) target.insert(target.end(), q.resume->generated.begin(), q.resume->generated.end());
        const int64_t need = int64_t(target.size()) + 1;
        if ((tokens_held_locked() + need) * kv_bytes_per_token_ > opts_.kv_budget_bytes) return;
        Slot* best = nullptr;
        size_t best_common = 0;
        for (auto& s : slots_) {
            if (s->active) continue;
            size_t common = 0;
            const size_t reusable = s->hooks_key == req->hooks.key ? std::min(s->cached.size(), s->clean_len) : 0;
            while (common < reusable && common + 1 < target.size() && s->cached[common] == target[common]) ++common;
            if (!best || common > best_common) best = s.get(), best_common = common;
        }
        if (!best) return;
        Slot& s = *best;
        s.req = req;
        s.target = std::move(target);
        s.active = true;
        s.seq = ++admit_seq_;
        s.ctx->truncate(int64_t(best_common));
        s.cached.resize(best_common);
        s.ctx->clear_hooks();
        for (auto& h : req->hooks.every_token) s.ctx->add_matmul_hook(h.get());
        if (req->hooks.answer) {
            req->hooks.answer->attach(*s.ctx);
            req->hooks.answer->set_active(false);
        }
        s.hooks_key = req->hooks.key;
        s.clean_len = req->hooks.answer ? req->prompt.size() - 1 : SIZE_MAX;
        s.n_prompt_done = best_common;
        st_.prefix_reused_tokens += int64_t(best_common);
        if (q.resume) {
            s.resumed = true;
            s.chain = std::move(q.resume->chain);
            s.generated = std::move(q.resume->generated);
            s.n_generated = q.resume->n_generated;
            s.utf8_pending = std::move(q.resume->utf8_pending);
            s.stop_pending = std::move(q.resume->stop_pending);
        } else {
            s.resumed = false;
            s.chain = sampling::make_chain(s.req->sampling);
            if (s.req->constraint) s.chain->add_front(s.req->constraint());
            for (size_t i = 0; i < best_common; ++i) s.chain->accept(s.target[i]);
            s.generated.clear();
            s.n_generated = 0;
            s.utf8_pending.clear();
            s.stop_pending.clear();
        }
        queue_.pop_front();
        st_.requests_running++;
    }
}

// Frees a running slot's cache and puts its request back at the front of the queue with
// everything needed to continue: it is recomputed from prompt + generated tokens later.
void Engine::preempt_locked(Slot& s) {
    // Nothing generated yet (still in prefill): it starts over as a new request, so its chain
    // accepts the whole prompt again; otherwise it resumes with its generation state.
    std::shared_ptr<Resume> r;
    if (s.resumed || s.n_generated > 0 || !s.generated.empty()) {
        r = std::make_shared<Resume>();
        r->chain = std::move(s.chain);
        r->generated = std::move(s.generated);
        r->n_generated = s.n_generated;
        r->utf8_pending = std::move(s.utf8_pending);
        r->stop_pending = std::move(s.stop_pending);
    }
    s.ctx->clear_hooks();
    s.ctx->truncate(0);
    s.cached.clear();
    s.target.clear();
    s.active = false;
    queue_.push_front({std::move(s.req), std::move(r)});
    st_.requests_running--;
    st_.preemptions++;
}

void Engine::finish(Slot& s, FinishReason r) {
    if ((!s.stop_pending.empty() || !s.utf8_pending.empty()) && r != FinishReason::kStop &&
        r != FinishReason::kCancelled)
        s.req->on_event(Event{s.stop_pending + s.utf8_pending, FinishReason::kNone, s.n_generated, nullptr});
    s.req->on_event(Event{"", r, s.n_generated, nullptr});
    s.ctx->clear_hooks();  // the request owns its hooks
    std::lock_guard<std::mutex> lk(mu_);
    s.active = false;
    s.target.clear();
    s.req.reset();
    st_.requests_running--;
    st_.requests_finished++;
}

// Phase 1 of a step for one slot: pick the tokens it feeds this step -- a prefill chunk,
// or the token sampled from its last logits (streamed out here). Returns false when the
// slot finished instead (cancelled, end of generation, stop string, length).
bool Engine::prepare_slot(Slot& s) {
    GenRequest& r = *s.req;
    s.feed.clear();
    if (r.cancelled->load()) {
        finish(s, FinishReason::kCancelled);
        return false;
    }
    if (s.n_prompt_done < s.target.size()) {
        const size_t n = std::min<size_t>(size_t(opts_.prefill_chunk), s.target.size() - s.n_prompt_done);
        s.feed.assign(s.target.begin() + int64_t(s.n_prompt_done), s.target.begin() + int64_t(s.n_prompt_done + n));
        if (r.hooks.answer) r.hooks.answer->set_active(s.n_prompt_done + n == s.target.size());
        return true;
    }
    // The reply starts here: presence/frequency penalties count tokens from now on (a
    // resumed request that already generated keeps its counts).
    if (s.n_generated == 0) s.chain->begin_generation();
    const int32_t t = s.chain->sample(s.logits);
    s.chain->accept(t);
    TokenInfo info;
    info.id = t;
    if (r.logprobs >= 0) token_logprobs(s.logits, t, r.logprobs, &info);
    if (!r.ignore_eos && tok_.is_eog(t)) {
        finish(s, FinishReason::kStop);
        return false;
    }
    s.n_generated++;
    {
        std::lock_guard<std::mutex> lk(mu_);
        st_.generated_tokens_total++;
    }
    s.utf8_pending += tok_.token_to_piece(t, false);
    s.stop_pending += take_complete_utf8(s.utf8_pending);
    bool hit = false;
    const std::string out = filter_stop(s.stop_pending, r.stop, &hit);
    if (!r.on_event(Event{out, FinishReason::kNone, s.n_generated, &info})) r.cancelled->store(true);
    if (hit) {
        finish(s, FinishReason::kStop);
        return false;
    }
    if (s.n_generated >= r.max_tokens) {
        finish(s, FinishReason::kLength);
        return false;
    }
    s.feed.push_back(t);
    s.generated.push_back(t);
    if (r.hooks.answer) r.hooks.answer->set_active(true);
    return true;
}

// Phase 2: record what the batched eval did for this slot.
void Engine::complete_slot(Slot& s, std::span<const float> logits) {
    s.cached.insert(s.cached.end(), s.feed.begin(), s.feed.end());
    if (s.n_prompt_done < s.target.size()) {
        if (!s.resumed)
            for (int32_t t : s.feed) s.chain->accept(t);
        s.n_prompt_done += s.feed.size();
        {
            std::lock_guard<std::mutex> lk(mu_);
            st_.prompt_tokens_total += int64_t(s.feed.size());
        }
        if (s.n_prompt_done < s.target.size()) return;
    }
    s.logits.assign(logits.begin(), logits.end());
}

void Engine::loop() {
    std::vector<model::BatchItem> items;
    std::vector<Slot*> in_batch;
    while (!stop_) {
        {
            std::unique_lock<std::mutex> lk(mu_);
            // The next step holds one more token per decoding slot: when the budget cannot
            // take it, preempt the newest sequences (the oldest keep their progress).
            while (tokens_held_locked() * kv_bytes_per_token_ > opts_.kv_budget_bytes) {
                Slot* newest = nullptr;
                int n_active = 0;
                for (auto& s : slots_)
                    if (s->active && (++n_active, !newest || s->seq > newest->seq)) newest = s.get();
                if (n_active < 2) break;  // submit() checked that one request fits alone
                preempt_locked(*newest);
            }
            admit_locked();
            const bool any = std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->active; });
            if (!any) {
                cv_.wait_for(lk, std::chrono::milliseconds(50));
                continue;
            }
        }
        // Every running sequence advances by one prefill chunk or one token, all in one
        // batched forward pass: the weights are read once per step for the whole batch.
        items.clear();
        in_batch.clear();
        for (auto& s : slots_)
            if (s->active && prepare_slot(*s)) {
                in_batch.push_back(s.get());
                items.push_back({s->ctx.get(), std::span<const int32_t>(s->feed), false, {}});
            }
        if (items.empty()) continue;
        if (Status st = model::Context::eval_batch(items); !st) {
            for (Slot* s : in_batch) finish(*s, FinishReason::kError);
            continue;
        }
        for (size_t i = 0; i < items.size(); ++i) complete_slot(*in_batch[i], items[i].logits);
    }
    for (auto& s : slots_)
        if (s->active) finish(*s, FinishReason::kCancelled);
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& q : queue_)
        q.req->on_event(Event{"", FinishReason::kCancelled, q.resume ? q.resume->n_generated : 0, nullptr});
    queue_.clear();
}

}  // namespace strata::engine
