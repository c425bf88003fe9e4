// Error codes of the Splunk HEC exporter. See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::hec {

enum class errc {
    ok = 0,
    config_error = 1,      // a key is missing or wrong, a file (CA, key, token) unusable (the message names it)
    connect_failed = 2,    // TCP connect, TLS handshake or certificate verification failed, or timed out
    token_refused = 3,     // HTTP 401/403, HEC codes 1-4: the token is missing, disabled or unknown
    busy = 4,              // HTTP 503/429, HEC code 9 (server busy) or 18-20 (unhealthy): back off
    rejected = 5,          // HTTP 400/413 with a data code (5-7, 12, 13, 15): delivery blocks, nothing dropped
    ack_disabled = 6,      // HEC code 14: indexer acknowledgement is not enabled on the token (set ack: false)
    server_error = 7,      // HTTP 5xx (other than 503), HEC code 8
    protocol_error = 8,    // an answer that is not HEC's (bad JSON, too long, no ackId, unknown status)
    ack_timeout = 9,       // an ackId was not confirmed within ack_timeout
    transfer_failed = 10,  // the connection broke or timed out during a request
    internal = 11,         // libcurl or zlib refused a call that should not fail
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::hec

template <>
struct std::is_error_code_enum<hsmaudit::exporters::hec::errc> : std::true_type {};
