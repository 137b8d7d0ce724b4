// Status and Result<T>: the error type every module returns instead of aborting.
// Shaped like C++23 std::expected (value()/error()/has_value()/operator bool) so it can
// be swapped in later. Errors carry a code, a message and optional context that callers
// prepend ("blk.12.attn_k: expected 576x192, file has 576x64").
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace strata {

enum class ErrorCode {
    kOk = 0,
    kInvalidInput,   // malformed data or bad user value (model file, flag, request)
    kUnsupported,    // valid but not implemented (tensor type, architecture)
    kNotFound,       // missing file, key or tensor
    kIo,             // OS-level failure
    kOutOfRange,     // limits: context length, token counts
    kInternal,
};

class Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    bool ok() const { return code_ == ErrorCode::kOk; }
    explicit operator bool() const { return ok(); }
    ErrorCode code() const { return code_; }
    const std::string& message() const { return message_; }

    // Prepends context: "ctx: message".
    Status with_context(std::string_view ctx) const {
        if (ok()) return *this;
        return Status(code_, fmt::format("{}: {}", ctx, message_));
    }

private:
    ErrorCode code_ = ErrorCode::kOk;
    std::string message_;
};

inline Status ok_status() { return {}; }

template <typename... Args>
Status invalid_input(fmt::format_string<Args...> f, Args&&... args) {
    return Status(ErrorCode::kInvalidInput, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status unsupported(fmt::format_string<Args...> f, Args&&... args) {
    return Status(ErrorCode::kUnsupported, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status not_found(fmt::format_string<Args...> f, Args&&... args) {
    return Status(ErrorCode::kNotFound, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status io_error(fmt::format_string<Args...> f, Args&&... args) {
    return Status(ErrorCode::kIo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status out_of_range(fmt::format_string<Args...> f, Args&&... args) {
    return Status(ErrorCode::kOutOfRange, fmt::format(f, std::forward<Args>(args)...));
}

template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit like std::expected
    Result(Status status) : v_(std::move(status)) {
        if (std::get<Status>(v_).ok())
            v_ = Status(ErrorCode::kInternal, "Result constructed from an ok Status");
    }

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Status& error() const { return std::get<Status>(v_); }
    Status status() const { return has_value() ? Status() : error(); }

private:
    std::variant<T, Status> v_;
};

// For our own invariants only (never for outside input). Stays on in release builds.
#define STRATA_ASSERT(cond)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "strata: internal error: %s (%s:%d)\n", #cond, __FILE__, \
                         __LINE__);                                                        \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

#define STRATA_TRY(expr)                     \
    do {                                     \
        ::strata::Status _st = (expr);       \
        if (!_st.ok()) return _st;           \
    } while (0)

}  // namespace strata
