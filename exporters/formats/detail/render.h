// The five renderers behind Formatter (formatter.cpp picks one and enforces max_message_bytes).
// Each appends one message to `out`, applying `limits` to every free-text value, and marks the
// message truncated when limits.truncated().
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "agent/api/event.h"
#include "exporters/formats/detail/text.h"
#include "exporters/formats/formatter.h"

namespace hsmaudit::exporters::formats::detail {

void render_rfc5424(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out);
void render_cef(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out);
void render_leef(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out);
void render_json(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out);
void render_hec(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out);

/// The syslog header o.syslog_header names (syslog_header.cpp), appended before the message;
/// nothing for SyslogHeader::none.
void render_syslog_header(const agent::Event& e, const FormatOptions& o, std::string& out);
/// The header's PRI: facility * 8 + severity (a syslog message keeps its own facility).
int header_pri(const agent::Event& e, const FormatOptions& o);

}  // namespace hsmaudit::exporters::formats::detail
