// Status and Result<T>: typed failures that carry a one-line message naming the
// file, tensor or key at fault. No exceptions cross module boundaries.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace nibble {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // bad input from the user or a file (malformed, wrong shape)
  kNotFound,         // a file, key or tensor that should exist does not
  kIoError,          // the OS refused (open, mmap, read)
  kUnsupported,      // valid input we do not handle (architecture, dtype, size)
  kOutOfMemory,
  kInternal,         // a bug in nibble
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  template <typename... Args>
  static Status invalid(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kInvalidArgument, fmt::format(f, std::forward<Args>(a)...)};
  }
  template <typename... Args>
  static Status not_found(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kNotFound, fmt::format(f, std::forward<Args>(a)...)};
  }
  template <typename... Args>
  static Status io_error(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kIoError, fmt::format(f, std::forward<Args>(a)...)};
  }
  template <typename... Args>
  static Status unsupported(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kUnsupported, fmt::format(f, std::forward<Args>(a)...)};
  }
  template <typename... Args>
  static Status out_of_memory(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kOutOfMemory, fmt::format(f, std::forward<Args>(a)...)};
  }
  template <typename... Args>
  static Status internal(fmt::format_string<Args...> f, Args&&... a) {
    return {StatusCode::kInternal, fmt::format(f, std::forward<Args>(a)...)};
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefix context ("model.safetensors: ") while keeping the code.
  Status with_context(const std::string& prefix) const {
    if (is_ok()) return *this;
    return {code_, prefix + message_};
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}   // NOLINT: implicit by design

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace nibble

#define NB_CONCAT_INNER(a, b) a##b
#define NB_CONCAT(a, b) NB_CONCAT_INNER(a, b)

// Return the Status if it is not ok.
#define NB_TRY(expr)                                  \
  do {                                                \
    ::nibble::Status nb_status_ = (expr);             \
    if (!nb_status_.is_ok()) return nb_status_;       \
  } while (0)

// auto x = value of a Result, or return its Status.
#define NB_ASSIGN_OR_RETURN(lhs, expr)                         \
  auto NB_CONCAT(nb_result_, __LINE__) = (expr);               \
  if (!NB_CONCAT(nb_result_, __LINE__).is_ok())                \
    return NB_CONCAT(nb_result_, __LINE__).status();           \
  lhs = std::move(NB_CONCAT(nb_result_, __LINE__)).value()
