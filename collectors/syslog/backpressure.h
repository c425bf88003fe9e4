// Backpressure: how a syslog source learns that its sink cannot take more for now (the agent's
// spool is full), so that TCP connections and followed files are not read (nothing is lost: the
// kernel's window closes and the senders slow down) and datagrams are dropped and counted.
//
// Thread-safety: has_room() and room_fd() are called from the sources' threads, concurrently.
#pragma once

namespace hsmaudit::collectors::syslog {

class Backpressure {
public:
    virtual ~Backpressure() = default;
    /// True while the sink takes messages. A source may deliver the rest of what it has read
    /// already (the frames of one read) after this turned false: the sink must take them.
    [[nodiscard]] virtual bool has_room() const = 0;
    /// A descriptor that is readable exactly while has_room() is true (level-triggered): a source
    /// held back adds it to its poll set instead of spinning. Sources never read it.
    [[nodiscard]] virtual int room_fd() const = 0;
};

}  // namespace hsmaudit::collectors::syslog
