// Plain rows and documents the site database stores and returns. No SQL and
// no gRPC here: these are what the rest of the controller sees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dpr::sitedb {

// SysResList role names.
inline constexpr char kRoleSiteSystem[] = "SMS Site System";
inline constexpr char kRoleDistributionPoint[] = "SMS Distribution Point";
inline constexpr char kRoleSharedDistributionPoint[] = "SMS Shared Distribution Point";
inline constexpr char kRoleSiteServer[] = "SMS Site Server";

enum class Hierarchy { kSource, kDestination };

struct Site {
  std::string code;
  std::string name;
  Hierarchy hierarchy = Hierarchy::kSource;
  std::string version;
};

struct SiteSystem {
  std::string server;
  std::string site;
  std::vector<std::string> roles;
};

struct PackageOnDp {
  std::string package_id;
  // Below the DP's share root, backslash-separated: `SMSPKGD$\S0700001`.
  std::string location;
};

struct InventoryDp {
  int64_t dpid = 0;
  std::string server;
  std::string site;
  std::string share = "SMSPKGD$";
  std::string drive;
  int64_t min_free_space_mb = 0;
  std::string agent_endpoint;
  std::vector<std::string> roles;  // in its site; must include the DP role
  std::string shared_in_site;      // destination site that shares it; empty: none
  bool eligible = true;
  std::vector<PackageOnDp> packages;
};

struct Package {
  std::string id;
  std::string name;
  int64_t source_version = 1;
  std::string source_site;
  bool keep_package_share = false;
  int64_t bytes = 0;
};

// What migration data gathering knows, as `dpctl inventory import` loads it.
struct Inventory {
  std::vector<Site> sites;
  std::vector<SiteSystem> site_systems;
  std::vector<InventoryDp> distribution_points;
  std::vector<Package> packages;
};

struct ImportCounts {
  int64_t sites = 0;
  int64_t distribution_points = 0;
  int64_t packages = 0;
  int64_t package_locations = 0;
};

struct DistributionPointRow {
  int64_t dpid = 0;
  std::string server;
  std::string nal_path;
  std::string site_code;
  std::string share;
  std::string drive;
  int64_t min_free_space_mb = 0;
  bool is_active = true;
  std::string agent_endpoint;
  int64_t packages = 0;  // PkgServers rows naming it
};

// DPUpgradeStatus.Status, numbered as the real migration job.
enum class JobStatus : int {
  kNotStarted = 0,  // queued: waiting for a slot under the job limit
  kCompleted = 1,
  kRunning = 2,
  kFailed = 3,
  kStopped = 4,
};

struct UpgradeJob {
  int64_t job_id = 0;
  int64_t dpid = 0;      // the DP's ID in the source site
  int64_t new_dpid = 0;  // the DP's ID in the destination site (its row appears in step 6)
  std::string server;
  std::string nal_path;         // the DP's NAL path now (the new one from step 7)
  std::string source_nal_path;  // the DP's NAL path in the source site
  std::string source_site;
  std::string destination_site;
  std::string agent_endpoint;
  std::string share;
  JobStatus status = JobStatus::kNotStarted;
  int step = 1;  // the step running or next to run
  std::string last_error;
  std::string start_time;
  std::string end_time;
  int64_t packages_total = 0;
  int64_t packages_converted = 0;
  int64_t bytes_total = 0;
  int64_t bytes_done = 0;
};

// A row-count line of a step's plan or result: "PkgServers: 120 rows, NAL
// path rewritten to the new DP".
struct RowChange {
  std::string table;
  int64_t rows = 0;
  std::string what;
};

// PkgStatus.State for the DP row of a migrated package (ours).
enum class PackageState : int { kLegacy = 0, kConverting = 1, kConverted = 2, kFailed = 3 };

// One package of a DP's conversion: ContentDPMap's location joined with the
// package's own facts.
struct ConversionPackage {
  std::string package_id;
  std::string name;
  int64_t source_version = 1;
  std::string location;  // below the DP's share root, e.g. `SMSPKGD$\S0700001`
  bool keep_package_share = false;
  PackageState state = PackageState::kLegacy;
  int64_t bytes_converted = 0;
  std::string last_error;
};

struct StatusMessage {
  int64_t record_id = 0;
  int64_t job_id = 0;
  int message_id = 0;
  char severity = 'I';
  std::string component;
  std::string time;
  int64_t dpid = 0;
  std::string package_id;
  std::string text;
};

// Status message IDs: the real distmgr's where they fit, ours (77xx) for
// the job's own milestones.
inline constexpr int kMsgPackageProcessingStarted = 2300;
inline constexpr int kMsgPackageProcessed = 2301;
inline constexpr int kMsgPackageDistributedToDp = 2330;
inline constexpr int kMsgAttemptingAddToDp = 2342;
inline constexpr int kMsgStepStarted = 7701;
inline constexpr int kMsgStepDone = 7702;
inline constexpr int kMsgJobCompleted = 7703;
inline constexpr int kMsgJobFailed = 7704;
inline constexpr int kMsgConversionRequested = 7705;

}  // namespace dpr::sitedb
