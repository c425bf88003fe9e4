// The examples docs/SIEM.md shows are the formatters' real output: each example block of the
// document must be exactly what the formatter produces for the event below, so the document
// stays true when a format changes (update the document with the output this test prints).
// The document shows the release number (base::project_version()) where the build's full version
// (git describe: base::version()) appears in the CEF and LEEF headers.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "base/version/version.h"
#include "exporters/formats/formatter.h"
#include "tests/unit/exporters/formats/test_events.h"

namespace hsmaudit::exporters::formats {
namespace {

std::string read_doc() {
    std::ifstream in(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/SIEM.md");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void expect_example(const std::string& doc, const std::string& what, std::string output) {
    const std::string built = "|" + std::string(product_version()) + "|";
    if (const auto at = output.find(built); at != std::string::npos)
        output.replace(at, built.size(), "|" + std::string(base::project_version()) + "|");
    const std::string block = "```\n" + output + "\n```\n";
    EXPECT_NE(doc.find(block), std::string::npos)
        << "docs/SIEM.md lacks the current " << what << " example; it is now:\n"
        << block;
}

TEST(Golden, DocumentedExamplesAreTheFormattersOutput) {
    const std::string doc = read_doc();
    ASSERT_FALSE(doc.empty()) << "cannot read docs/SIEM.md";
    const auto login = test::failed_login_event();
    expect_example(doc, "RFC 5424 audit record", test::render(test::options(FormatKind::rfc5424), login));
    expect_example(doc, "RFC 5424 syslog", test::render(test::options(FormatKind::rfc5424), test::syslog_event()));
    expect_example(doc, "RFC 5424 alert", test::render(test::options(FormatKind::rfc5424), test::alert_event()));
    expect_example(doc, "CEF", test::render(test::options(FormatKind::cef), login));
    expect_example(doc, "LEEF", test::render(test::options(FormatKind::leef), login));
    expect_example(doc, "JSON", test::render(test::options(FormatKind::json), login));
    expect_example(doc, "HEC", test::render(test::options(FormatKind::hec), login));
    FormatOptions cef5424 = test::options(FormatKind::cef);
    cef5424.syslog_header = SyslogHeader::rfc5424;
    expect_example(doc, "CEF after an RFC 5424 header", test::render(cef5424, login));
    FormatOptions leef3164 = test::options(FormatKind::leef);
    leef3164.syslog_header = SyslogHeader::rfc3164;
    expect_example(doc, "LEEF after an RFC 3164 header", test::render(leef3164, login));
}

}  // namespace
}  // namespace hsmaudit::exporters::formats
