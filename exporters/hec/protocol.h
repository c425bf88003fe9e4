// Splunk HTTP Event Collector protocol, without the HTTP client: parsing HEC's JSON answers (the
// event endpoint's {"text","code","ackId"} and the ack endpoint's {"acks":{"<id>":bool}}),
// turning an HTTP status and HEC code into this module's error, the acknowledged prefix of a
// connection's requests, the request channel id and gzip. Kept apart from libcurl so it is unit
// tested and fuzzed (tests/fuzz/hec_response_fuzz.cpp) on its own.
//
// HEC's answers come from the network: every parser here bounds the input (kMaxReplyBytes, a
// nesting depth, the number of acks) and never throws; text from the receiver is cut and made
// printable before it reaches a message.
//
// Thread-safety: free functions are reentrant; an AckTracker is used by one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hsmaudit::exporters::hec {

/// Longest HEC answer read (the writer callback aborts the transfer beyond it).
inline constexpr std::size_t kMaxReplyBytes = std::size_t{64} * 1024;
/// Most ackIds asked for in one /services/collector/ack request.
inline constexpr std::size_t kMaxAcksPerPoll = 1000;

/// HEC's status codes (Splunk "Troubleshoot HTTP Event Collector", "Possible error codes").
enum class HecCode : int {
    success = 0,
    token_disabled = 1,
    token_required = 2,
    invalid_authorization = 3,
    invalid_token = 4,
    no_data = 5,
    invalid_data_format = 6,
    incorrect_index = 7,
    internal_error = 8,
    server_busy = 9,
    channel_missing = 10,
    invalid_channel = 11,
    event_required = 12,
    event_blank = 13,
    ack_disabled = 14,
    indexed_fields_error = 15,
    query_auth_disabled = 16,
    healthy = 17,
    unhealthy_queues_full = 18,
    unhealthy_ack_unavailable = 19,
    unhealthy_queues_full_2 = 20,
};

/// An answer of /services/collector/event (or health): {"text":"Success","code":0,"ackId":7}.
struct EventReply {
    std::optional<int> code;  // HEC code, if the body had one
    std::string text;         // printable ASCII, at most 200 characters
    std::optional<std::uint64_t> ack_id;
    std::optional<std::uint64_t> invalid_event_number;  // HEC names the bad event of a batch
};

/// Parses an event (or health) answer. An empty or non-JSON body is an error (protocol_error);
/// unknown members are ignored, members of the wrong type are errors.
Result<EventReply> parse_event_reply(std::string_view body);

/// Parses an ack answer {"acks":{"0":true,"1":false}}: (ackId, indexed) pairs, in the body's order.
Result<std::vector<std::pair<std::uint64_t, bool>>> parse_ack_reply(std::string_view body);

/// The request body of an ack poll: {"acks":[1,2,3]}.
std::string render_ack_request(const std::vector<std::uint64_t>& ids);

/// What an HTTP status and a (parsed or not) reply mean: ok for 200 with code 0 (or none), else
/// the error (token_refused, busy, rejected, ack_disabled, server_error, protocol_error) with a
/// message that starts with `what` ("https://splunk.example:8088/services/collector/event").
Status classify(long http_status, const std::optional<EventReply>& reply, std::string_view what);

/// A random channel id: a version 4 UUID (lower-case, 8-4-4-4-12), from OpenSSL's RAND_bytes.
Result<std::string> make_channel_id();

/// gzip (RFC 1952) of `data` at zlib's default level. Error: errc::internal.
Result<std::string> gzip(std::string_view data);

/// The acknowledged prefix of one connection's requests. Each accepted request (a batch of
/// events) is added in order with its ackId, or as already acknowledged (ack: false); acks may
/// arrive in any order, but prefix() counts only the events of the leading run of acknowledged
/// requests, so it never skips an event the receiver has not confirmed.
class AckTracker {
public:
    using Clock = std::chrono::steady_clock;

    /// A request of `events` events awaiting ackId `id`. Error (protocol_error) if the id is
    /// already awaited: a receiver that reuses an id could confirm the wrong batch.
    Status add_pending(std::uint64_t events, std::uint64_t id, Clock::time_point now);
    /// A request of `events` events the receiver already holds (ack: false).
    void add_acknowledged(std::uint64_t events);
    /// Marks `id` indexed; unknown ids (long confirmed, or never ours) are ignored. Returns
    /// whether it was awaited.
    bool acknowledge(std::uint64_t id);

    /// Events [0, prefix()) of the connection are acknowledged.
    [[nodiscard]] std::uint64_t prefix() const { return prefix_; }
    /// Events added (acknowledged or not).
    [[nodiscard]] std::uint64_t added() const { return added_; }
    /// The awaited ids, oldest first, at most `max`.
    [[nodiscard]] std::vector<std::uint64_t> pending_ids(std::size_t max) const;
    [[nodiscard]] std::size_t pending_count() const { return by_id_.size(); }
    /// When the oldest awaited request was accepted; nullopt if none is awaited.
    [[nodiscard]] std::optional<Clock::time_point> oldest_pending() const;
    void reset();

private:
    struct Request {
        std::uint64_t events = 0;
        std::uint64_t id = 0;
        Clock::time_point sent{};
        bool done = false;
    };
    void advance();

    std::deque<Request> requests_;                  // not yet in the prefix
    std::uint64_t first_ = 0;                       // sequence number of requests_.front()
    std::map<std::uint64_t, std::uint64_t> by_id_;  // awaited ackId -> request sequence number
    std::uint64_t prefix_ = 0;
    std::uint64_t added_ = 0;
};

}  // namespace hsmaudit::exporters::hec
