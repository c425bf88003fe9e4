// The HEC exporter's test peer: tests/integration/exporters/hec/hec_receiver.py (Splunk's documented
// HEC event, ack and health endpoints, over TLS with the RELP tests' throw-away PKI) run as a child
// process on a loopback port, killed (SIGKILL, by pid) by the destructor. The port is chosen once,
// so a restarted receiver listens where the exporter connects.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "exporters/hec/hec_exporter.h"
#include "tests/integration/common/ports.h"
#include "tests/integration/common/process.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::testing::hec {

using relp::Pki;

struct HecReceiverOptions {
    std::string mode = "normal";  // normal | late | out_of_order | never | refuse | reject | no_ack
    int late_ms = 300;
    int busy = 0;  // the first N event POSTs answer 503 code 9
    bool require_client_cert = true;
    bool plain = false;  // HTTP
};

class HecReceiver {
public:
    explicit HecReceiver(HecReceiverOptions o = {}) : options_(std::move(o)) {
        dir_ = relp::make_temp_dir("hec");
        port_ = free_port();
        relp::write_text(token_path(), "5d1a7c52-hec-test-token\n", 0600);
    }
    ~HecReceiver() {
        stop();
        std::error_code ec;
        if (!dir_.empty() && std::getenv("HSMAUDIT_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(dir_, ec);
    }
    HecReceiver(const HecReceiver&) = delete;
    HecReceiver& operator=(const HecReceiver&) = delete;

    void set_mode(std::string mode) { options_.mode = std::move(mode); }
    void set_busy(int n) { options_.busy = n; }

    /// Starts the receiver and waits (up to 15 s) until it listens; false if it did not.
    bool start() {
        stop();
        const std::string ready = dir_ + "/ready";
        ::unlink(ready.c_str());
        std::vector<std::string> argv;
        if (::access("/usr/bin/setpriv", X_OK) == 0) argv = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
        for (const std::string& a :
             {std::string("/usr/bin/python3"),
              std::string(HSMAUDIT_SOURCE_DIR) + "/tests/integration/exporters/hec/hec_receiver.py",
              std::string("--port"),
              std::to_string(port_),
              std::string("--token-file"),
              token_path(),
              std::string("--mode"),
              options_.mode,
              std::string("--late-ms"),
              std::to_string(options_.late_ms),
              std::string("--busy"),
              std::to_string(options_.busy),
              std::string("--received"),
              dir_ + "/received",
              std::string("--indexed"),
              dir_ + "/indexed",
              std::string("--requests"),
              dir_ + "/requests",
              std::string("--ready"),
              ready})
            argv.push_back(a);
        if (options_.plain) {
            argv.emplace_back("--plain");
        } else {
            for (const std::string& a :
                 {std::string("--cert"), Pki::get().server_cert, std::string("--key"), Pki::get().server_key})
                argv.push_back(a);
            if (options_.require_client_cert) {
                argv.emplace_back("--client-ca");
                argv.push_back(Pki::get().ca);
            }
        }
        process_ = std::make_unique<Process>(argv, dir_ + "/receiver.out", dir_ + "/receiver.err");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < deadline) {
            if (!process_->running()) return false;
            if (::access(ready.c_str(), F_OK) == 0) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
    /// SIGKILL: what a crash looks like to the client.
    void kill() {
        if (process_) {
            process_->signal(SIGKILL);
            process_->wait(std::chrono::seconds(10));
        }
    }
    void stop() {
        kill();
        process_.reset();
    }

    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string token_path() const { return dir_ + "/token"; }
    [[nodiscard]] std::string dir() const { return dir_; }
    /// Sequence numbers of the events received (one per event in each accepted POST), in order.
    [[nodiscard]] std::vector<std::uint64_t> received() const {
        return relp::received_seqs(Process::slurp(dir_ + "/received"));
    }
    /// Sequence numbers of the events whose ackId the receiver reported indexed.
    [[nodiscard]] std::vector<std::uint64_t> indexed() const {
        return relp::received_seqs(Process::slurp(dir_ + "/indexed"));
    }
    /// One JSON line per request (path, status, gzip, channel, events, ackId).
    [[nodiscard]] std::string requests() const { return Process::slurp(dir_ + "/requests"); }
    [[nodiscard]] std::string diagnostics() const {
        return "receiver stderr: " + Process::slurp(dir_ + "/receiver.err");
    }

    /// Exporter options for this receiver: TLS with the test CA, server name server.test, the
    /// client certificate, short timeouts.
    [[nodiscard]] exporters::hec::HecOptions exporter_options() const {
        exporters::hec::HecOptions o;
        o.host = "127.0.0.1";
        o.port = std::to_string(port_);
        o.tls = !options_.plain;
        o.server_name = options_.plain ? "" : "server.test";
        o.ca = Pki::get().ca;
        o.cert = Pki::get().client_cert;
        o.key = Pki::get().client_key;
        o.token_file = token_path();
        o.timeout = std::chrono::seconds(3);
        o.connect_timeout = std::chrono::seconds(2);
        o.ack_timeout = std::chrono::seconds(3);
        o.ack_poll_interval = std::chrono::milliseconds(20);
        o.destination = "exporters.splunk";
        return o;
    }

private:
    HecReceiverOptions options_;
    std::string dir_;
    int port_ = 0;
    std::unique_ptr<Process> process_;
};

}  // namespace hsmaudit::testing::hec
