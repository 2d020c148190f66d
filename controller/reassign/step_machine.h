// The nine-step reassignment as pure functions: given what is known of a job,
// what happens next. No database, no agent, no clock: the runner carries the
// decisions out and feeds the results back, and tests drive these directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/sitedb/site_store.h"
#include "controller/sitedb/site_types.h"

namespace dpr::reassign {

using sitedb::JobStatus;

inline constexpr int kFirstStep = 1;
inline constexpr int kAssignStep = 6;      // also tells the agent its new site
inline constexpr int kUpgradeStep = 7;     // UpgradeDistributionPoint
inline constexpr int kConversionStep = 8;  // the .dpu and the agent's import
inline constexpr int kCheckStep = 9;       // DataLib, FileLib, PkgLib hold every package
inline constexpr int kLastStep = 9;

// What the runner knows about a job at a decision point.
struct JobView {
  JobStatus status = JobStatus::kNotStarted;
  int step = kFirstStep;
  // Step 8 only: has a .dpu been dropped for this run of the conversion,
  // and how did the conversion end (unset while it has not)?
  bool dpu_dropped = false;
  std::optional<bool> conversion_ok;
  // Step 9 only: the library check's verdict (unset until it ran).
  std::optional<bool> check_ok;
};

enum class ActionKind {
  kWait,             // nothing to do now (queued, finished, or waiting for the .dpu)
  kCommitStep,       // run the step's database effects and advance, one transaction
  kAssignAndCommit,  // step 6: tell the agent (idempotent), then commit
  kDropDpu,          // step 8: write <DPID>.dpu into distmgr's inbox
  kConvert,          // step 8: distmgr has the .dpu: drive the agent's conversion
  kCheckLibrary,     // step 9: ask the agent for DataLib/FileLib/PkgLib and every package
  kFail,             // record the failure; a retry (.dpu or reassign again) resumes
};

struct Action {
  ActionKind kind = ActionKind::kWait;
  int step = 0;
  bool operator==(const Action&) const = default;
};

Action NextAction(const JobView& job);

// Eligibility (checked before step 1). Empty reason: eligible.
struct Eligibility {
  bool eligible = false;
  std::string reason;  // what is wrong and what to do about it
};
Eligibility CheckEligibility(const sitedb::DpFacts& facts, const std::string& to_site);

// Free space: the conversion needs `bytes_needed` on the DP; refuse with the
// figures when `bytes_free` is short.
Eligibility CheckSpace(uint64_t bytes_needed, uint64_t bytes_free, const std::string& server);

// What a retry request does to a job: the step it resumes at, or a refusal.
struct RetryDecision {
  bool allowed = false;
  int resume_step = 0;
  std::string reason;
};
RetryDecision DecideReassignRetry(const sitedb::UpgradeJob& job);

}  // namespace dpr::reassign
