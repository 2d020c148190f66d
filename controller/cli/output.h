// Output helpers for dpctl: aligned tables for people, JSON for scripts.
#pragma once

#include <string>
#include <vector>

#include "dpreassign/v1/admin.pb.h"
#include "google/protobuf/message.h"

namespace dpr::cli {

// A plain text table: a header row and rows, columns padded to fit.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A job status as admins read it: "Completed", "Running", "Failed"...
std::string JobStatusText(dpreassign::v1::JobStatus status);

// An agent's verify progress in the words of `dp-agent verify`.
std::string VerifyProgressText(const dpreassign::v1::VerifyProgress& p);

// A message as one JSON document, proto field names, defaults included.
std::string ToJson(const google::protobuf::Message& message, bool pretty = true);

}  // namespace dpr::cli
