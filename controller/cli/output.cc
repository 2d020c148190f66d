#include "controller/cli/output.h"

#include <algorithm>

#include "common/log/verify_progress.h"
#include "google/protobuf/util/json_util.h"

namespace dpr::cli {
namespace {

// Display width: count UTF-8 lead bytes, not bytes, so names with accents
// still line up.
size_t Width(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], Width(row[i]));
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - Width(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(header_);
  for (const auto& r : rows_) emit(r);
  return out;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";
  if (!pretty && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string JobStatusText(dpreassign::v1::JobStatus status) {
  switch (status) {
    case dpreassign::v1::JOB_STATUS_COMPLETED:
      return "Completed";
    case dpreassign::v1::JOB_STATUS_RUNNING:
      return "Running";
    case dpreassign::v1::JOB_STATUS_FAILED:
      return "Failed";
    case dpreassign::v1::JOB_STATUS_STOPPED:
      return "Stopped";
    case dpreassign::v1::JOB_STATUS_QUEUED:
      return "Queued";
    default:
      return "NotStarted";
  }
}

std::string VerifyProgressText(const dpreassign::v1::VerifyProgress& p) {
  VerifyProgress counts;
  counts.contents_done = p.contents_done();
  counts.contents_total = p.contents_total();
  counts.objects_done = p.objects_done();
  counts.objects_expected = p.objects_expected();
  counts.bytes_hashed = p.bytes_hashed();
  counts.bytes_expected = p.bytes_expected();
  switch (p.phase()) {
    case dpreassign::v1::VerifyProgress::PHASE_REPAIR:
      counts.phase = VerifyPhase::kRepair;
      break;
    case dpreassign::v1::VerifyProgress::PHASE_RECHECK:
      counts.phase = VerifyPhase::kRecheck;
      break;
    default:
      counts.phase = VerifyPhase::kCheck;
  }
  counts.objects_damaged = p.objects_damaged();
  counts.objects_repaired = p.objects_repaired();
  counts.legacy_files_seen = p.legacy_files_seen();
  counts.legacy_files_hashed = p.legacy_files_hashed();
  counts.legacy_bytes_hashed = p.legacy_bytes_hashed();
  return dpr::VerifyProgressText(counts, p.seconds());
}

}  // namespace dpr::cli
