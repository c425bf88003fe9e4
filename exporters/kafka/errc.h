// Error codes of the Kafka exporter and the fleet verifier. See base/result.h.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::kafka {

enum class errc {
    ok = 0,
    config_error = 1,       // a key or a pass-through librdkafka property is wrong (the message names it)
    unreachable = 2,        // no broker answered (metadata request failed or timed out)
    unknown_topic = 3,      // a configured topic does not exist on the cluster
    queue_full = 4,         // librdkafka's local queue stayed full past the send timeout
    delivery_failed = 5,    // a delivery report carried an error (the message may have been persisted)
    fatal = 6,              // the producer raised a fatal error (idempotence violated): it must be rebuilt
    consume_failed = 7,     // the fleet verifier's consumer failed
    commit_failed = 8,      // committing verified offsets failed
    io_error = 9,           // a file (keys, secrets) could not be read
    invalid_argument = 10,  // a command-line argument is wrong
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::kafka

template <>
struct std::is_error_code_enum<hsmaudit::exporters::kafka::errc> : std::true_type {};
