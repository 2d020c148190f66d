#include "agent/assignment.h"

#include <cerrno>

#include "absl/strings/numbers.h"
#include "common/fs/durable_file.h"
#include "common/ini/ini_file.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::agent {

AssignmentStore::AssignmentStore(std::string data_dir) : data_dir_(std::move(data_dir)) {}

std::string AssignmentStore::path() const { return data_dir_ + "/assignment.ini"; }

absl::Status AssignmentStore::Load() {
  auto text = ReadFileToString(path());
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return absl::OkStatus();  // not assigned yet
    return text.status();
  }
  ASSIGN_OR_RETURN(IniFile ini, IniFile::Parse(*text, path()));
  Assignment a;
  a.site_code = ini.Get("Assignment", "SiteCode").value_or("");
  a.controller_identity = ini.Get("Assignment", "Controller").value_or("");
  a.nal_path = ini.Get("Assignment", "NALPath").value_or("");
  const std::string dpid = ini.Get("Assignment", "DPID").value_or("");
  if (a.site_code.empty() || a.controller_identity.empty() || !absl::SimpleAtoi(dpid, &a.dpid)) {
    return absl::DataLossError(fmt::format(
        "'{}' is malformed (it needs SiteCode, Controller and DPID under [Assignment]); restore "
        "it from a backup or reassign the DP",
        path()));
  }
  std::lock_guard<std::mutex> l(mu_);
  current_ = a;
  return absl::OkStatus();
}

std::optional<Assignment> AssignmentStore::Get() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

absl::StatusOr<bool> AssignmentStore::Assign(const Assignment& a) {
  std::lock_guard<std::mutex> l(mu_);
  if (current_ && current_->controller_identity != a.controller_identity) {
    return absl::PermissionDeniedError(fmt::format(
        "this DP is assigned to site {} under controller '{}'; controller '{}' may not reassign "
        "it",
        current_->site_code, current_->controller_identity, a.controller_identity));
  }
  if (current_ && *current_ == a) return false;
  IniFile ini;
  RETURN_IF_ERROR(ini.Set("Assignment", "SiteCode", a.site_code));
  RETURN_IF_ERROR(ini.Set("Assignment", "Controller", a.controller_identity));
  RETURN_IF_ERROR(ini.Set("Assignment", "DPID", std::to_string(a.dpid)));
  RETURN_IF_ERROR(ini.Set("Assignment", "NALPath", a.nal_path));
  RETURN_IF_ERROR(WriteFileDurably(path(), ini.Serialize()));
  current_ = a;
  return true;
}

}  // namespace dpr::agent
