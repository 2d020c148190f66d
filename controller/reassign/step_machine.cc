#include "controller/reassign/step_machine.h"

#include <algorithm>

#include "common/nal/nal_path.h"
#include "fmt/format.h"

namespace dpr::reassign {

Action NextAction(const JobView& job) {
  if (job.status != JobStatus::kRunning) return {ActionKind::kWait, job.step};
  if (job.step < kFirstStep || job.step > kLastStep) return {ActionKind::kFail, job.step};
  switch (job.step) {
    case kAssignStep:
      return {ActionKind::kAssignAndCommit, job.step};
    case kConversionStep:
      if (job.conversion_ok.has_value()) {
        return {*job.conversion_ok ? ActionKind::kCommitStep : ActionKind::kFail, job.step};
      }
      return {job.dpu_dropped ? ActionKind::kConvert : ActionKind::kDropDpu, job.step};
    case kCheckStep:
      if (job.check_ok.has_value()) {
        return {*job.check_ok ? ActionKind::kCommitStep : ActionKind::kFail, job.step};
      }
      return {ActionKind::kCheckLibrary, job.step};
    default:
      return {ActionKind::kCommitStep, job.step};
  }
}

Eligibility CheckEligibility(const sitedb::DpFacts& f, const std::string& to_site) {
  auto no = [](std::string reason) { return Eligibility{false, std::move(reason)}; };
  if (!f.dp) return no("no such distribution point in the site database; check 'dpctl dp list'");
  const auto& dp = *f.dp;
  if (!f.to_site) {
    return no(fmt::format(
        "site '{}' is not in the site database; import it with 'dpctl inventory import'", to_site));
  }
  if (f.to_site->hierarchy != sitedb::Hierarchy::kDestination) {
    return no(
        fmt::format("site '{}' is not a destination site: a DP can only be reassigned into "
                    "the destination hierarchy",
                    to_site));
  }
  if (!f.dp_site || f.dp_site->hierarchy != sitedb::Hierarchy::kSource) {
    return no(
        fmt::format("'{}' belongs to site {}, which is not a source site; it is not a "
                    "shared DP of the source hierarchy",
                    dp.server, dp.site_code));
  }
  if (!f.shared_in_destination) {
    return no(
        fmt::format("'{}' is not shared with site {}: share the source site's DPs with "
                    "the destination (distribution point sharing) and gather data again",
                    dp.server, to_site));
  }
  if (!f.site_server_sites.empty()) {
    return no(
        fmt::format("'{}' is the site server of site {}: a DP on a site server cannot be "
                    "reassigned",
                    dp.server, f.site_server_sites.front()));
  }
  std::vector<std::string> other;
  for (const auto& role : f.roles) {
    if (role != sitedb::kRoleSiteSystem && role != sitedb::kRoleDistributionPoint) {
      other.push_back(role);
    }
  }
  if (!other.empty()) {
    std::string list;
    for (const auto& r : other) list += (list.empty() ? "'" : ", '") + r + "'";
    return no(
        fmt::format("'{}' has other site system roles in {} ({}); remove them first: only "
                    "a DP with no other role can be reassigned",
                    dp.server, dp.site_code, list));
  }
  if (std::find(f.roles.begin(), f.roles.end(), sitedb::kRoleDistributionPoint) == f.roles.end()) {
    return no(
        fmt::format("'{}' has no distribution point role in site {}", dp.server, dp.site_code));
  }
  if (!f.eligible_flag) {
    return no(
        fmt::format("the destination marks '{}' as not eligible for upgrade "
                    "(MigrationDP.EligibleForUpgrade = 0); fix what data gathering reported "
                    "and gather again",
                    dp.server));
  }
  return {true, ""};
}

Eligibility CheckSpace(uint64_t bytes_needed, uint64_t bytes_free, const std::string& server) {
  if (bytes_needed <= bytes_free) return {true, ""};
  constexpr uint64_t kMiB = 1 << 20;
  return {false, fmt::format("the content library on '{}' is too small: the conversion needs "
                             "{} MiB, {} MiB are free; free {} MiB on the DP and try again",
                             server, (bytes_needed + kMiB - 1) / kMiB, bytes_free / kMiB,
                             (bytes_needed - bytes_free + kMiB - 1) / kMiB)};
}

RetryDecision DecideReassignRetry(const sitedb::UpgradeJob& job) {
  switch (job.status) {
    case JobStatus::kCompleted:
      return {false, 0,
              fmt::format("job {} for '{}' is already completed", job.job_id, job.server)};
    case JobStatus::kRunning:
    case JobStatus::kNotStarted:
      return {false, job.step, ""};  // already going: the caller gets the job as it is
    case JobStatus::kFailed:
    case JobStatus::kStopped:
      return {true, job.step, ""};
  }
  return {false, 0, "unknown job status"};
}

}  // namespace dpr::reassign
