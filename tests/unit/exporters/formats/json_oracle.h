// The JSON and HEC renderers as they were before the streaming writer (an nlohmann::ordered_json
// DOM per event): the reference json_writer_test.cpp compares the writer's bytes with.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "agent/api/event.h"
#include "exporters/formats/detail/text.h"
#include "exporters/formats/formatter.h"

namespace hsmaudit::exporters::formats::test::oracle {

void render_json(const agent::Event& e, const FormatOptions& o, const detail::RenderLimits& limits, std::string& out);
void render_hec(const agent::Event& e, const FormatOptions& o, const detail::RenderLimits& limits, std::string& out);

}  // namespace hsmaudit::exporters::formats::test::oracle
