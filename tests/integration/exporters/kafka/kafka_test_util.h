// Shared bits of the Kafka test binaries: temp dirs, kcat as the independent consumer, options.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "exporters/kafka/kafka_config.h"
#include "tests/integration/common/process.h"

namespace hsmaudit::testing::kafka {

/// A temp dir removed at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "hsmaudit-kafka-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// One message as kcat printed it with the format "%k|%p|%o|%s\n".
struct Consumed {
    std::string key;
    int partition = -1;
    long long offset = -1;
    std::string value;
};

/// Consumes `topic` from the beginning to its end with kcat (an independent Kafka client).
inline std::vector<Consumed> kcat_consume(const std::string& brokers, const std::string& topic, const TempDir& tmp,
                                          const std::string& format = "%k|%p|%o|%s\\n") {
    auto [code, out] =
        run({"/usr/bin/kcat", "-C", "-b", brokers, "-t", topic, "-e", "-q", "-f", format}, tmp.file("kcat-" + topic));
    std::vector<Consumed> msgs;
    if (code != 0) {
        msgs.push_back({"KCAT-FAILED", -1, -1, out});
        return msgs;
    }
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        Consumed c;
        const auto a = line.find('|');
        const auto b = line.find('|', a + 1);
        const auto d = line.find('|', b + 1);
        if (a == std::string::npos || b == std::string::npos || d == std::string::npos) continue;
        c.key = line.substr(0, a);
        c.partition = std::stoi(line.substr(a + 1, b - a - 1));
        c.offset = std::stoll(line.substr(b + 1, d - b - 1));
        c.value = line.substr(d + 1);
        msgs.push_back(std::move(c));
    }
    return msgs;
}

/// Producer options for the mock cluster.
inline exporters::kafka::ProducerOptions mock_options(const std::string& brokers) {
    exporters::kafka::ProducerOptions o;
    o.name = "test";
    o.brokers = brokers;
    o.topics = {"hsm.audit", "hsm.syslog", "hsm.alerts", "hsm.checkpoints"};
    o.connect_timeout = std::chrono::milliseconds(5'000);
    o.flush_timeout = std::chrono::milliseconds(5'000);
    o.properties = {{"log_level", "3"}};
    return o;
}

}  // namespace hsmaudit::testing::kafka
