// Result<T>: the project-wide error model. Errors are values; no exception crosses a
// component boundary. Each module declares its own error enum in its errc.h and plugs it
// into std::error_code, so a caller can test `r.error().code == mac::errc::bad_mac`.
//
// It lives in base/, the bottom of the dependency graph: every other module depends on it.
// (std::expected needs -std=c++23 and does not compile with Debian 12's clang 14, which builds
// the fuzz targets; this type does.)
//
// Thread-safety: a value type; distinct objects may be used from distinct threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace hsmaudit {

/// An error: a machine-testable code plus a message for humans that names what is wrong.
struct Error {
    std::error_code code;
    std::string message;

    /// "message (category: code text)" - what a CLI prints.
    [[nodiscard]] std::string describe() const {
        if (message.empty()) return code.message();
        return message;
    }
};

template <class Enum>
requires std::is_error_code_enum_v<Enum>
[[nodiscard]] Error make_error(Enum e, std::string message) {
    return Error{make_error_code(e), std::move(message)};
}

/// Holds either a T or an Error, like std::expected<T, Error>.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        assert(has_value());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(has_value());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(has_value());
        return std::get<0>(std::move(v_));
    }
    const Error& error() const& {
        assert(!has_value());
        return std::get<1>(v_);
    }
    Error&& error() && {
        assert(!has_value());
        return std::get<1>(std::move(v_));
    }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, Error> v_;
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool has_value() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    const Error& error() const& {
        assert(!has_value());
        return *error_;
    }
    Error&& error() && {
        assert(!has_value());
        return std::move(*error_);
    }

private:
    std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace hsmaudit

/// Propagate an error from an expression returning Result<...>.
#define HSMAUDIT_TRY(expr)                                                                              \
    do {                                                                                                \
        if (auto hsmaudit_try_r_ = (expr); !hsmaudit_try_r_) return std::move(hsmaudit_try_r_).error(); \
    } while (0)
