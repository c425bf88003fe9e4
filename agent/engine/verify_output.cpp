#include "agent/engine/verify_output.h"
#include "base/json_text.h"

#include "mac/record.h"

namespace hsmaudit::agent {
namespace {

std::string fault_summary(const mac::VerifyReport& r) {
    std::string s;
    for (std::size_t k = 0; k < mac::kFaultKindCount; ++k) {
        if (r.fault_counts[k] == 0) continue;
        if (!s.empty()) s += ", ";
        s += std::to_string(r.fault_counts[k]) + " " + std::string(mac::to_string(static_cast<mac::FaultKind>(k)));
    }
    return s;
}

/// The anchors line(s) of the text summary (mac/anchors.h), "" without anchors.
std::string render_anchor_summary(const mac::VerifyReport& r) {
    std::string out;
    if (r.anchors_checked > 0 || r.anchors_skipped > 0 || r.anchors_other_chains > 0 || r.anchors_unchecked > 0) {
        out += "anchors   " + std::to_string(r.anchors_checked) + " checkpoints matched a record of the trail";
        if (r.anchors_unchecked > 0) out += ", " + std::to_string(r.anchors_unchecked) + " before the trail";
        if (r.anchors_other_chains > 0)
            out += ", " + std::to_string(r.anchors_other_chains) + " of other chains ignored";
        if (r.anchors_skipped > 0)
            out += ", " + std::to_string(r.anchors_skipped) + " lines without a checkpoint skipped";
        out += "\n";
    }
    if (r.retained_seq > 0)
        out +=
            "retained  the newest checkpoint says the store held records from " + std::to_string(r.retained_seq) + "\n";
    for (const auto& c : r.anchor_chains)
        out += "other     chain " + c.chain_hex + " serial " + c.serial + ": " + std::to_string(c.checkpoints) +
               " checkpoints, newest for record " + std::to_string(c.newest_seq) + " at " +
               mac::format_time(c.newest_time_ms) + " (not checked)\n";
    return out;
}

void add_anchor_fields(const mac::VerifyReport& r, nlohmann::json& j) {
    j["anchors_checked"] = r.anchors_checked;
    j["anchors_skipped"] = r.anchors_skipped;
    j["anchors_other_chains"] = r.anchors_other_chains;
    j["anchors_unchecked"] = r.anchors_unchecked;
    if (r.retained_seq > 0) j["retained_seq"] = r.retained_seq;
    if (!r.anchor_chains.empty()) {
        nlohmann::json chains = nlohmann::json::array();
        for (const auto& c : r.anchor_chains)
            chains.push_back({{"chain", c.chain_hex},
                              {"serial", c.serial},
                              {"checkpoints", c.checkpoints},
                              {"newest_seq", c.newest_seq},
                              {"newest_time", mac::format_time(c.newest_time_ms)}});
        j["anchor_chains"] = std::move(chains);
    }
}

/// A file name or message as shown to a person: control bytes and bytes that are not UTF-8 as
/// `\xHH`, a backslash doubled, so that no name can forge a line of the summary or move the cursor.
std::string shown(std::string_view text) {
    std::string esc;
    mac::append_escaped(text, esc);
    std::string out;
    out.reserve(esc.size());
    for (std::size_t i = 0; i < esc.size(); ++i) {
        if (esc[i] == '\\' && i + 1 < esc.size() && esc[i + 1] == 's') {
            out += ' ';  // spaces are shown as spaces
            ++i;
        } else if (esc[i] == '\\' && i + 1 < esc.size()) {
            out += esc[i];
            out += esc[++i];
        } else {
            out += esc[i];
        }
    }
    return out;
}

std::string_view verdict_name(const mac::VerifyReport& r) {
    if (!r.verified()) return "failed";
    return r.proven() ? "verified" : "unproven";
}

}  // namespace

std::string render_report_text(const mac::VerifyReport& r) {
    std::string out;
    out += "chain     " + r.chain_hex + "\n";
    out += "serial    " + (r.serial.empty() ? std::string("(none read)") : shown(r.serial)) + "\n";
    out +=
        "checked   " + std::string(r.macs_checked ? "record MACs (audit secret)" : "no record MACs (no audit secret)") +
        ", " +
        std::string(r.signatures_checked ? (r.macs_checked ? "seal MACs and signatures" : "seal signatures and digests")
                                         : "no seal signatures") +
        "\n";
    out += "segments  " + std::to_string(r.segments.size()) + " (" + std::to_string(r.sealed_segments) + " sealed, " +
           std::to_string(r.open_segments) + " open)\n";
    out += "records   " + std::to_string(r.records);
    if (r.records > 0) out += " (sequence " + std::to_string(r.first_seq) + " to " + std::to_string(r.last_seq) + ")";
    out += "\n";
    if (r.records > 0)
        out += "time      " + mac::format_time(r.first_time_ms) + " to " + mac::format_time(r.last_time_ms) + "\n";
    out += render_anchor_summary(r);
    for (const auto& s : r.segments) {
        if (s.open_tail)
            out += "open      " + shown(s.file) + ": " + std::to_string(s.records) +
                   " records, not sealed yet (its tail cannot be proven complete until it is" +
                   (s.authenticated ? "" : "; without the audit secret its records are not authenticated") + ")\n";
    }
    for (const auto& c : r.identical_copies)
        out += "copy      " + shown(c.file) + ": the same bytes as " + shown(c.same_as) + " (verified once)\n";
    for (const auto& f : r.faults) {
        out += "FAULT     " + std::string(mac::to_string(f.kind)) + " " + shown(f.file);
        if (f.line != 0) out += ":" + std::to_string(f.line);
        if (f.seq != 0) out += " seq " + std::to_string(f.seq);
        out += ": " + shown(f.message) + "\n";
    }
    if (r.faults_total > r.faults.size())
        out += "          (" + std::to_string(r.faults_total - r.faults.size()) + " more faults not listed)\n";
    if (r.proven())
        out += "verdict   VERIFIED\n";
    else if (r.verified())
        out += "verdict   UNPROVEN: no fault, but " + std::to_string(r.unproven_records) +
               " records of the open tail are not authenticated (no audit secret: anyone holding audit.pub could "
               "have written them)\n";
    else
        out += "verdict   FAILED: " + std::to_string(r.faults_total) + " fault" + (r.faults_total == 1 ? "" : "s") +
               " (" + fault_summary(r) + ")\n";
    return out;
}

nlohmann::json render_report_json(const mac::VerifyReport& r) {
    using nlohmann::json;
    json j;
    j["verdict"] = verdict_name(r);
    j["chain"] = r.chain_hex;
    j["serial"] = r.serial;
    j["unproven_records"] = r.unproven_records;
    j["identical_copies"] = json::array();
    for (const auto& c : r.identical_copies)
        j["identical_copies"].push_back({{"file", c.file}, {"same_as", c.same_as}});
    j["macs_checked"] = r.macs_checked;
    j["signatures_checked"] = r.signatures_checked;
    j["records"] = r.records;
    j["bytes"] = r.bytes;
    if (r.records > 0) {
        j["first_seq"] = r.first_seq;
        j["last_seq"] = r.last_seq;
        j["first_time"] = mac::format_time(r.first_time_ms);
        j["last_time"] = mac::format_time(r.last_time_ms);
    }
    j["sealed_segments"] = r.sealed_segments;
    j["open_segments"] = r.open_segments;
    json segs = json::array();
    for (const auto& s : r.segments) {
        segs.push_back({{"file", s.file},
                        {"serial", s.serial},
                        {"epoch", s.epoch},
                        {"first_seq", s.first_seq},
                        {"last_seq", s.last_seq},
                        {"records", s.records},
                        {"bytes", s.bytes},
                        {"sealed", s.sealed},
                        {"open_tail", s.open_tail},
                        {"authenticated", s.authenticated}});
    }
    j["segments"] = std::move(segs);
    json faults = json::array();
    for (const auto& f : r.faults) {
        json jf = {{"kind", mac::to_string(f.kind)}, {"file", f.file}, {"message", f.message}};
        if (f.line != 0) jf["line"] = f.line;
        if (f.seq != 0) jf["seq"] = f.seq;
        faults.push_back(std::move(jf));
    }
    j["faults"] = std::move(faults);
    json counts = json::object();
    for (std::size_t k = 0; k < mac::kFaultKindCount; ++k)
        if (r.fault_counts[k] != 0)
            counts[std::string(mac::to_string(static_cast<mac::FaultKind>(k)))] = r.fault_counts[k];
    j["fault_counts"] = std::move(counts);
    add_anchor_fields(r, j);
    j["faults_total"] = r.faults_total;
    j["faults_truncated"] = r.faults_total > r.faults.size();
    return j;
}

}  // namespace hsmaudit::agent
