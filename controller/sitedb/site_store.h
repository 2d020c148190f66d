// The site database as the controller uses it: one named function per query
// or transaction. SqliteSiteStore is the embedded default; a PostgreSQL
// store implements the same interface and runs the same scenario tests
// (tests/unit/sitedb_scenario_test.cc takes a factory).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/sitedb/site_types.h"

namespace dpr::sitedb {

// Called at named points inside transactions ("step3.before_commit",
// "step7.after_PkgServers", ...). Production passes nothing; tests use it to
// kill the process there.
using FaultHook = std::function<void(std::string_view point)>;

// Everything eligibility depends on, read in one go.
struct DpFacts {
  std::optional<DistributionPointRow> dp;
  std::optional<Site> dp_site;
  std::optional<Site> to_site;
  std::vector<std::string> roles;              // of the DP's server in its own site
  std::vector<std::string> site_server_sites;  // sites where the server is a site server
  bool shared_in_destination = false;          // MigrationDP row: shared with to_site
  bool eligible_flag = false;                  // MigrationDP.EligibleForUpgrade
  int64_t packages = 0;
  int64_t package_bytes = 0;
};

struct CreateJobResult {
  UpgradeJob job;
  bool created = false;  // false: the DP already had a job, returned as it is
};

class SiteStore {
 public:
  virtual ~SiteStore() = default;

  // --- inventory -----------------------------------------------------------
  // All or nothing. Re-importing the same document changes nothing; a DP
  // with an upgrade job cannot be re-imported.
  virtual absl::StatusOr<ImportCounts> ImportInventory(const Inventory& inventory) = 0;
  virtual absl::StatusOr<std::vector<Site>> ListSites() = 0;

  // --- distribution points -------------------------------------------------
  // Empty site: all sites.
  virtual absl::StatusOr<std::vector<DistributionPointRow>> ListDistributionPoints(
      std::string_view site_code) = 0;
  // The seed's `select * from DistributionPoints where ServerName = '...'`.
  virtual absl::StatusOr<std::optional<DistributionPointRow>> FindDistributionPoint(
      std::string_view server) = 0;
  virtual absl::StatusOr<std::optional<DistributionPointRow>> GetDistributionPoint(
      int64_t dpid) = 0;
  virtual absl::StatusOr<DpFacts> GetDpFacts(int64_t dpid, std::string_view to_site) = 0;

  // --- upgrade jobs (DPUpgradeStatus) --------------------------------------
  // Makes the DP's job (queued, step 1) or returns the one it has. Safe
  // against concurrent callers: exactly one job per DP.
  virtual absl::StatusOr<CreateJobResult> CreateJob(int64_t dpid, std::string_view to_site,
                                                    std::string_view now) = 0;
  virtual absl::StatusOr<std::optional<UpgradeJob>> GetJob(int64_t job_id) = 0;
  // By the DP's ID in either site (the `.dpu` names the current one).
  virtual absl::StatusOr<std::optional<UpgradeJob>> FindJobByDpid(int64_t dpid) = 0;
  virtual absl::StatusOr<std::vector<UpgradeJob>> ListJobs() = 0;
  // Queued or failed -> Running (keeps the cursor; clears the last error).
  virtual absl::Status MarkJobRunning(int64_t job_id, std::string_view now) = 0;
  virtual absl::Status MarkJobFailed(int64_t job_id, std::string_view error,
                                     std::string_view now) = 0;
  // A retry of conversion: cursor back to step 8, Running. Allowed for jobs
  // that reached step 8 (also Completed ones: conversion is idempotent).
  virtual absl::StatusOr<UpgradeJob> RequestConversion(int64_t job_id, std::string_view now) = 0;

  // Runs `step`'s effects and advances the cursor in one transaction. If
  // the cursor is already past `step` nothing happens (the step was done
  // before a crash): the result is empty. Step 9 marks the job Completed.
  virtual absl::StatusOr<std::vector<RowChange>> CommitStep(int64_t job_id, int step,
                                                            std::string_view now) = 0;
  // What `step` would change for a reassignment of `dpid` to `to_site`,
  // counted without changing anything (for --dry-run).
  virtual absl::StatusOr<std::vector<RowChange>> PlanStep(int64_t dpid, std::string_view to_site,
                                                          int step) = 0;
  // sp_MIG_UpgradeDistributionPoint: rewrites `old_nal` to `new_nal` (and the
  // rows' site code to `new_site`) in PkgServers, PkgStatus, ContentDPMap and
  // DPUpgradeStatus, in one transaction. Idempotent.
  virtual absl::StatusOr<std::vector<RowChange>> UpgradeDistributionPoint(
      std::string_view old_nal, std::string_view new_nal, std::string_view new_site) = 0;

  // --- conversion (step 8) --------------------------------------------------
  virtual absl::StatusOr<std::vector<ConversionPackage>> ListConversionPackages(int64_t job_id) = 0;
  // The same for a DP that has no job yet (preflight before step 1).
  virtual absl::StatusOr<std::vector<ConversionPackage>> ListDpPackages(int64_t dpid) = 0;
  virtual absl::Status RecordPackageStarted(int64_t job_id, std::string_view package_id,
                                            std::string_view now) = 0;
  virtual absl::Status RecordPackageDone(int64_t job_id, std::string_view package_id,
                                         int64_t bytes_converted, std::string_view now) = 0;
  virtual absl::Status RecordPackageFailed(int64_t job_id, std::string_view package_id,
                                           std::string_view error, std::string_view now) = 0;

  // --- history (StatusMessages) ---------------------------------------------
  virtual absl::StatusOr<int64_t> AddMessage(const StatusMessage& message) = 0;
  virtual absl::StatusOr<std::vector<StatusMessage>> ListMessages(int64_t job_id,
                                                                  int64_t after_record_id) = 0;
  // The newest message's RecordID (0: none), without reading the history.
  virtual absl::StatusOr<int64_t> LastMessageId(int64_t job_id) = 0;
};

struct SqliteStoreOptions {
  std::string path;
  // Verbose: every SQL statement and its duration to this logger.
  bool trace_sql = false;
  std::string trace_component = "SMS_DISTRIBUTION_MANAGER";
  FaultHook fault_hook;
  std::string vfs;  // SqliteDb::Options::vfs
};

// Opens (creating if needed) and migrates the SQLite site database.
absl::StatusOr<std::unique_ptr<SiteStore>> OpenSqliteSiteStore(const SqliteStoreOptions& options);

// The step names, as logs and dpctl show them (1-9).
std::string_view StepName(int step);

}  // namespace dpr::sitedb
