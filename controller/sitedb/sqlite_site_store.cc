// SiteStore over SQLite. One connection, serialised by a mutex: every public
// function is one transaction (or one read), so callers never see half a
// step. BEGIN IMMEDIATE makes two stores on the same file (two processes)
// serialise too.
#include <algorithm>
#include <mutex>
#include <set>

#include "common/log/logging.h"
#include "common/nal/nal_path.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "controller/sitedb/migrations.h"
#include "controller/sitedb/site_store.h"
#include "controller/sitedb/sqlite_db.h"
#include "fmt/format.h"

namespace dpr::sitedb {

namespace {

constexpr std::string_view kStepNames[] = {
    "",
    "Delete the distribution point role in the source site",
    "Delete the site system record in the source site",
    "Delete the shared distribution point role in the destination site",
    "Delete the shared distribution point site system record in the destination site",
    "Install a new site system in the destination site",
    "Install a new distribution point role in the destination site",
    "Upgrade the distribution point's rows (UpgradeDistributionPoint)",
    "Convert the legacy package folders into the content library",
    "Check the content library and complete the job",
};

std::string SiteSystemNalText(std::string_view server, std::string_view site) {
  return FormatNalPath(SiteSystemNal(server, site));
}
// `MSWNET:["SMS_SITE=S07"]\\DP01\`: the prefix of every share location.
std::string SharePrefix(std::string_view server, std::string_view site) {
  return FormatNalPath(ShareNal(server, site, ""));
}

std::string_view HierarchyText(Hierarchy h) {
  return h == Hierarchy::kSource ? "source" : "destination";
}

// The columns ReadJob expects, in order.
constexpr char kJobColumns[] =
    "JobID, DPID, IFNULL(NewDPID, 0), ServerName, NALPath, SourceNALPath, SourceSiteCode, "
    "DestinationSiteCode, AgentEndpoint, ShareName, Status, Step, LastError, StartTime, EndTime, "
    "PackagesTotal, PackagesConverted, BytesTotal, BytesDone";

UpgradeJob ReadJob(const Statement& s) {
  UpgradeJob j;
  j.job_id = s.Int(0);
  j.dpid = s.Int(1);
  j.new_dpid = s.Int(2);
  j.server = s.Text(3);
  j.nal_path = s.Text(4);
  j.source_nal_path = s.Text(5);
  j.source_site = s.Text(6);
  j.destination_site = s.Text(7);
  j.agent_endpoint = s.Text(8);
  j.share = s.Text(9);
  j.status = static_cast<JobStatus>(s.Int(10));
  j.step = static_cast<int>(s.Int(11));
  j.last_error = s.Text(12);
  j.start_time = s.Text(13);
  j.end_time = s.Text(14);
  j.packages_total = s.Int(15);
  j.packages_converted = s.Int(16);
  j.bytes_total = s.Int(17);
  j.bytes_done = s.Int(18);
  return j;
}

constexpr char kDpColumns[] =
    "d.DPID, d.ServerName, d.NALPath, d.SMSSiteCode, d.ShareName, d.DPDrive, d.MinFreeSpace, "
    "d.IsActive, d.AgentEndpoint, "
    "(SELECT COUNT(*) FROM PkgServers p WHERE p.NALPath = d.NALPath)";

DistributionPointRow ReadDp(const Statement& s) {
  DistributionPointRow d;
  d.dpid = s.Int(0);
  d.server = s.Text(1);
  d.nal_path = s.Text(2);
  d.site_code = s.Text(3);
  d.share = s.Text(4);
  d.drive = s.Text(5);
  d.min_free_space_mb = s.Int(6);
  d.is_active = s.Int(7) != 0;
  d.agent_endpoint = s.Text(8);
  d.packages = s.Int(9);
  return d;
}

// One SQL statement of a step, with the row-count line it reports.
struct StepSql {
  std::string table;
  std::string what;
  std::string sql;                 // the change
  std::string count_sql;           // the same rows, counted (for --dry-run)
  std::vector<std::string> binds;  // for both
};

class SqliteSiteStore final : public SiteStore {
 public:
  SqliteSiteStore(std::unique_ptr<SqliteDb> db, FaultHook hook)
      : db_(std::move(db)), hook_(std::move(hook)) {}

  absl::StatusOr<ImportCounts> ImportInventory(const Inventory& inv) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ImportCounts counts;
    for (const Site& site : inv.sites) {
      ASSIGN_OR_RETURN(auto s,
                       db_->Prepare("INSERT INTO Sites (SiteCode, SiteName, Hierarchy, Version) "
                                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (SiteCode) DO UPDATE SET "
                                    "SiteName = ?2, Hierarchy = ?3, Version = ?4"));
      s.Bind(1, site.code)
          .Bind(2, site.name)
          .Bind(3, HierarchyText(site.hierarchy))
          .Bind(4, site.version);
      RETURN_IF_ERROR(s.Run().status());
      ++counts.sites;
    }
    for (const SiteSystem& sys : inv.site_systems) {
      for (const std::string& role : sys.roles) {
        RETURN_IF_ERROR(
            InsertRole(role, sys.server, sys.site, SiteSystemNalText(sys.server, sys.site)));
      }
    }
    for (const Package& p : inv.packages) {
      ASSIGN_OR_RETURN(
          auto s, db_->Prepare("INSERT INTO Packages (PkgID, Name, SourceVersion, SourceSite, "
                               "KeepPackageShare, Bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                               "ON CONFLICT (PkgID) DO UPDATE SET Name = ?2, SourceVersion = ?3, "
                               "SourceSite = ?4, KeepPackageShare = ?5, Bytes = ?6"));
      s.Bind(1, p.id).Bind(2, p.name).Bind(3, p.source_version).Bind(4, p.source_site);
      s.Bind(5, int64_t{p.keep_package_share}).Bind(6, p.bytes);
      RETURN_IF_ERROR(s.Run().status());
      ++counts.packages;
    }
    for (const InventoryDp& dp : inv.distribution_points) {
      ASSIGN_OR_RETURN(int64_t locations, ImportDp(dp));
      counts.package_locations += locations;
      ++counts.distribution_points;
    }
    RETURN_IF_ERROR(tx->Commit());
    return counts;
  }

  absl::StatusOr<std::vector<Site>> ListSites() override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("SELECT SiteCode, SiteName, Hierarchy, Version FROM Sites ORDER BY "
                             "SiteCode"));
    std::vector<Site> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(Site{s.Text(0), s.Text(1),
                         s.Text(2) == "source" ? Hierarchy::kSource : Hierarchy::kDestination,
                         s.Text(3)});
    }
    return out;
  }

  absl::StatusOr<std::vector<DistributionPointRow>> ListDistributionPoints(
      std::string_view site_code) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare(fmt::format("SELECT {} FROM DistributionPoints d WHERE ?1 = '' OR "
                                         "d.SMSSiteCode = ?1 ORDER BY d.DPID",
                                         kDpColumns)));
    s.Bind(1, site_code);
    std::vector<DistributionPointRow> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadDp(s));
    }
    return out;
  }

  absl::StatusOr<std::optional<DistributionPointRow>> FindDistributionPoint(
      std::string_view server) override {
    std::lock_guard<std::mutex> l(mu_);
    // A server can have a row in each site while a job runs (after step 6
    // the destination's, which is the one to act on): newest first.
    return OneDp("d.ServerName = ?1 ORDER BY d.DPID DESC LIMIT 1", server);
  }

  absl::StatusOr<std::optional<DistributionPointRow>> GetDistributionPoint(int64_t dpid) override {
    std::lock_guard<std::mutex> l(mu_);
    return OneDp("d.DPID = ?1", std::to_string(dpid));
  }

  absl::StatusOr<DpFacts> GetDpFacts(int64_t dpid, std::string_view to_site) override {
    std::lock_guard<std::mutex> l(mu_);
    DpFacts f;
    ASSIGN_OR_RETURN(f.dp, OneDp("d.DPID = ?1", std::to_string(dpid)));
    ASSIGN_OR_RETURN(f.to_site, OneSite(to_site));
    if (!f.dp) return f;
    ASSIGN_OR_RETURN(f.dp_site, OneSite(f.dp->site_code));
    {
      ASSIGN_OR_RETURN(auto s,
                       db_->Prepare("SELECT RoleName FROM SysResList WHERE ServerName = ?1 AND "
                                    "SiteCode = ?2 ORDER BY RoleName"));
      s.Bind(1, f.dp->server).Bind(2, f.dp->site_code);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        f.roles.push_back(s.Text(0));
      }
    }
    {
      ASSIGN_OR_RETURN(auto s,
                       db_->Prepare("SELECT SiteCode FROM SysResList WHERE ServerName = ?1 AND "
                                    "RoleName = ?2 ORDER BY SiteCode"));
      s.Bind(1, f.dp->server).Bind(2, kRoleSiteServer);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        f.site_server_sites.push_back(s.Text(0));
      }
    }
    {
      ASSIGN_OR_RETURN(
          auto s, db_->Prepare("SELECT EligibleForUpgrade FROM MigrationDP WHERE ServerName = ?1 "
                               "AND SiteCode = ?2 AND AttachingSiteCode = ?3"));
      s.Bind(1, f.dp->server).Bind(2, to_site).Bind(3, f.dp->site_code);
      ASSIGN_OR_RETURN(bool row, s.Step());
      f.shared_in_destination = row;
      f.eligible_flag = row && s.Int(0) != 0;
    }
    {
      ASSIGN_OR_RETURN(
          auto s, db_->Prepare("SELECT COUNT(*), IFNULL(SUM(p.Bytes), 0) FROM ContentDPMap c "
                               "JOIN Packages p ON p.PkgID = c.ContentID WHERE c.NALPath = ?1"));
      s.Bind(1, f.dp->nal_path);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        f.packages = s.Int(0);
        f.package_bytes = s.Int(1);
      }
    }
    return f;
  }

  absl::StatusOr<CreateJobResult> CreateJob(int64_t dpid, std::string_view to_site,
                                            std::string_view now) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto existing, JobWhere("DPID = ?1 OR NewDPID = ?1", std::to_string(dpid)));
    if (existing) {
      if (existing->destination_site != to_site) {
        return absl::FailedPreconditionError(fmt::format(
            "distribution point {} ('{}') already has reassignment job {} to site {}; it cannot "
            "also move to {}",
            dpid, existing->server, existing->job_id, existing->destination_site, to_site));
      }
      return CreateJobResult{*existing, false};
    }
    ASSIGN_OR_RETURN(auto dp, OneDp("d.DPID = ?1", std::to_string(dpid)));
    if (!dp) return absl::NotFoundError(fmt::format("no distribution point with DPID {}", dpid));
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("INSERT INTO DPUpgradeStatus (DPID, ServerName, NALPath, "
                             "SourceNALPath, SourceSiteCode, DestinationSiteCode, AgentEndpoint, "
                             "ShareName, Status, Step, StartTime, PackagesTotal, BytesTotal, "
                             "NewDPID) "
                             "SELECT ?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, 0, 1, ?8, COUNT(*), "
                             "IFNULL(SUM(p.Bytes), 0), "
                             // The DP's ID in the destination is fixed now, not in step
                             // 6, so the agent can be told it before step 6 commits.
                             "1 + MAX((SELECT IFNULL(MAX(DPID), 0) FROM DistributionPoints), "
                             "(SELECT IFNULL(MAX(NewDPID), 0) FROM DPUpgradeStatus), "
                             "(SELECT IFNULL(MAX(seq), 0) FROM sqlite_sequence WHERE name = "
                             "'DistributionPoints')) "
                             "FROM ContentDPMap c JOIN Packages p ON "
                             "p.PkgID = c.ContentID WHERE c.NALPath = ?3"));
    s.Bind(1, dpid).Bind(2, dp->server).Bind(3, dp->nal_path).Bind(4, dp->site_code);
    s.Bind(5, to_site).Bind(6, dp->agent_endpoint).Bind(7, dp->share).Bind(8, now);
    RETURN_IF_ERROR(s.Run().status());
    ASSIGN_OR_RETURN(auto job, JobWhere("DPID = ?1", std::to_string(dpid)));
    RETURN_IF_ERROR(tx->Commit());
    return CreateJobResult{*job, true};
  }

  absl::StatusOr<std::optional<UpgradeJob>> GetJob(int64_t job_id) override {
    std::lock_guard<std::mutex> l(mu_);
    return JobWhere("JobID = ?1", std::to_string(job_id));
  }

  absl::StatusOr<std::optional<UpgradeJob>> FindJobByDpid(int64_t dpid) override {
    std::lock_guard<std::mutex> l(mu_);
    return JobWhere("NewDPID = ?1 OR DPID = ?1 ORDER BY (NewDPID = ?1) DESC LIMIT 1",
                    std::to_string(dpid));
  }

  absl::StatusOr<std::vector<UpgradeJob>> ListJobs() override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto s, db_->Prepare(fmt::format(
                                 "SELECT {} FROM DPUpgradeStatus ORDER BY JobID", kJobColumns)));
    std::vector<UpgradeJob> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadJob(s));
    }
    return out;
  }

  absl::Status MarkJobRunning(int64_t job_id, std::string_view now) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("UPDATE DPUpgradeStatus SET Status = 2, LastError = '', EndTime = '', "
                             "StartTime = CASE WHEN StartTime = '' THEN ?2 ELSE StartTime END "
                             "WHERE JobID = ?1 AND Status IN (0, 2, 3, 4)"));
    s.Bind(1, job_id).Bind(2, now);
    ASSIGN_OR_RETURN(int64_t n, s.Run());
    if (n == 0)
      return absl::FailedPreconditionError(
          fmt::format("job {} cannot run: it is completed or absent", job_id));
    return absl::OkStatus();
  }

  absl::Status MarkJobFailed(int64_t job_id, std::string_view error,
                             std::string_view now) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("UPDATE DPUpgradeStatus SET Status = 3, LastError = ?2, EndTime = ?3 "
                             "WHERE JobID = ?1"));
    s.Bind(1, job_id).Bind(2, error).Bind(3, now);
    return s.Run().status();
  }

  absl::StatusOr<UpgradeJob> RequestConversion(int64_t job_id, std::string_view now) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto job, JobWhere("JobID = ?1", std::to_string(job_id)));
    if (!job) return absl::NotFoundError(fmt::format("no job {}", job_id));
    if (job->step < 8) {
      return absl::FailedPreconditionError(fmt::format(
          "job {} for '{}' has not reached conversion (it is at step {}: {}); retry the "
          "reassignment itself with 'dpctl reassign {} --to {}'",
          job_id, job->server, job->step, StepName(job->step), job->server, job->destination_site));
    }
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("UPDATE DPUpgradeStatus SET Status = 2, Step = 8, LastError = '', "
                             "EndTime = '' WHERE JobID = ?1"));
    s.Bind(1, job_id);
    RETURN_IF_ERROR(s.Run().status());
    // Packages that failed last time are tried again; converted ones stay
    // converted (the agent reports them as already done).
    ASSIGN_OR_RETURN(auto reset,
                     db_->Prepare("UPDATE PkgStatus SET State = 0, LastError = '', UpdateTime = ?2 "
                                  "WHERE Type = 2 AND PkgServer = ?1 AND State IN (1, 3)"));
    reset.Bind(1, job->nal_path).Bind(2, now);
    RETURN_IF_ERROR(reset.Run().status());
    ASSIGN_OR_RETURN(job, JobWhere("JobID = ?1", std::to_string(job_id)));
    RETURN_IF_ERROR(tx->Commit());
    return *job;
  }

  absl::StatusOr<std::vector<RowChange>> CommitStep(int64_t job_id, int step,
                                                    std::string_view now) override {
    std::lock_guard<std::mutex> l(mu_);
    if (step < 1 || step > 9) return absl::InvalidArgumentError(fmt::format("no step {}", step));
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto job, JobWhere("JobID = ?1", std::to_string(job_id)));
    if (!job) return absl::NotFoundError(fmt::format("no job {}", job_id));
    if (job->step != step || job->status == JobStatus::kCompleted) {
      return std::vector<RowChange>{};  // done before; a replay changes nothing
    }
    std::vector<RowChange> changes;
    const std::string prefix = fmt::format("step{}.", step);
    if (step == 7) {
      ASSIGN_OR_RETURN(
          changes,
          UpgradeRows(job->source_nal_path, SiteSystemNalText(job->server, job->destination_site),
                      job->destination_site, job->server, job->source_site, true));
    } else {
      for (const StepSql& sql : StepStatements(*job, step)) {
        ASSIGN_OR_RETURN(int64_t n, sql.sql.empty() ? Count(sql) : Change(sql));
        changes.push_back({sql.table, n, sql.what});
      }
    }
    std::string advance =
        step == 9
            ? "UPDATE DPUpgradeStatus SET Status = 1, EndTime = ?2, LastError = '' WHERE JobID = ?1"
            : "UPDATE DPUpgradeStatus SET Step = Step + 1 WHERE JobID = ?1";
    ASSIGN_OR_RETURN(auto s, db_->Prepare(advance));
    s.Bind(1, job_id);
    if (step == 9) s.Bind(2, now);
    RETURN_IF_ERROR(s.Run().status());
    Fault(prefix + "before_commit");
    RETURN_IF_ERROR(tx->Commit());
    Fault(prefix + "after_commit");
    return changes;
  }

  absl::StatusOr<std::vector<RowChange>> PlanStep(int64_t dpid, std::string_view to_site,
                                                  int step) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto dp, OneDp("d.DPID = ?1", std::to_string(dpid)));
    if (!dp) return absl::NotFoundError(fmt::format("no distribution point with DPID {}", dpid));
    UpgradeJob job;
    job.dpid = dp->dpid;
    job.server = dp->server;
    job.nal_path = job.source_nal_path = dp->nal_path;
    job.source_site = dp->site_code;
    job.destination_site = std::string(to_site);
    job.agent_endpoint = dp->agent_endpoint;
    job.share = dp->share;
    std::vector<StepSql> sqls =
        step == 7 ? UpgradeStatements(job.source_nal_path, SiteSystemNalText(job.server, to_site),
                                      to_site, job.server, job.source_site)
                  : StepStatements(job, step);
    std::vector<RowChange> out;
    for (const StepSql& sql : sqls) {
      int64_t n = 1;  // an insert adds one row
      if (!sql.count_sql.empty()) {
        ASSIGN_OR_RETURN(n, Count(sql));
      }
      out.push_back({sql.table, n, sql.what});
    }
    return out;
  }

  absl::StatusOr<std::vector<RowChange>> UpgradeDistributionPoint(
      std::string_view old_nal, std::string_view new_nal, std::string_view new_site) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(NalPath old_parsed, ParseNalPath(old_nal));
    ASSIGN_OR_RETURN(NalPath new_parsed, ParseNalPath(new_nal));
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto changes, UpgradeRows(old_nal, new_nal, new_site, new_parsed.server,
                                               old_parsed.site_code, false));
    RETURN_IF_ERROR(tx->Commit());
    return changes;
  }

  absl::StatusOr<std::vector<ConversionPackage>> ListConversionPackages(int64_t job_id) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto job, JobWhere("JobID = ?1", std::to_string(job_id)));
    if (!job) return absl::NotFoundError(fmt::format("no job {}", job_id));
    return PackagesAt(job->nal_path);
  }

  absl::StatusOr<std::vector<ConversionPackage>> ListDpPackages(int64_t dpid) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto dp, OneDp("d.DPID = ?1", std::to_string(dpid)));
    if (!dp) return absl::NotFoundError(fmt::format("no distribution point with DPID {}", dpid));
    return PackagesAt(dp->nal_path);
  }

  absl::Status RecordPackageStarted(int64_t job_id, std::string_view package_id,
                                    std::string_view now) override {
    return RecordPackage(job_id, package_id, PackageState::kConverting, 4, 0, "", now);
  }

  absl::Status RecordPackageDone(int64_t job_id, std::string_view package_id,
                                 int64_t bytes_converted, std::string_view now) override {
    return RecordPackage(job_id, package_id, PackageState::kConverted, 3, bytes_converted, "", now);
  }

  absl::Status RecordPackageFailed(int64_t job_id, std::string_view package_id,
                                   std::string_view error, std::string_view now) override {
    return RecordPackage(job_id, package_id, PackageState::kFailed, 5, 0, error, now);
  }

  absl::StatusOr<int64_t> AddMessage(const StatusMessage& m) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("INSERT INTO StatusMessages (JobID, MessageID, Severity, Component, "
                             "Time, DPID, PkgID, Text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    s.Bind(1, m.job_id).Bind(2, int64_t{m.message_id}).Bind(3, std::string(1, m.severity));
    s.Bind(4, m.component).Bind(5, m.time).Bind(6, m.dpid).Bind(7, m.package_id).Bind(8, m.text);
    RETURN_IF_ERROR(s.Run().status());
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_->handle()));
  }

  absl::StatusOr<std::vector<StatusMessage>> ListMessages(int64_t job_id,
                                                          int64_t after_record_id) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("SELECT RecordID, JobID, MessageID, Severity, Component, Time, "
                             "IFNULL(DPID, 0), PkgID, Text FROM StatusMessages WHERE JobID = ?1 "
                             "AND RecordID > ?2 ORDER BY RecordID"));
    s.Bind(1, job_id).Bind(2, after_record_id);
    std::vector<StatusMessage> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      StatusMessage m;
      m.record_id = s.Int(0);
      m.job_id = s.Int(1);
      m.message_id = static_cast<int>(s.Int(2));
      const std::string sev = s.Text(3);
      m.severity = sev.empty() ? 'I' : sev[0];
      m.component = s.Text(4);
      m.time = s.Text(5);
      m.dpid = s.Int(6);
      m.package_id = s.Text(7);
      m.text = s.Text(8);
      out.push_back(std::move(m));
    }
    return out;
  }

  absl::StatusOr<int64_t> LastMessageId(int64_t job_id) override {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(
        auto s,
        db_->Prepare("SELECT IFNULL(MAX(RecordID), 0) FROM StatusMessages WHERE JobID = ?1"));
    s.Bind(1, job_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

 private:
  // Binds a step statement's values; a statement may use only the first few.
  static void BindAll(Statement& s, const std::vector<std::string>& binds) {
    for (size_t i = 0; i < binds.size() && static_cast<int>(i) < s.ParameterCount(); ++i) {
      s.Bind(static_cast<int>(i + 1), binds[i]);
    }
  }
  absl::StatusOr<int64_t> Change(const StepSql& sql) {
    ASSIGN_OR_RETURN(auto s, db_->Prepare(sql.sql));
    BindAll(s, sql.binds);
    return s.Run();
  }
  absl::StatusOr<int64_t> Count(const StepSql& sql) {
    ASSIGN_OR_RETURN(auto s, db_->Prepare(sql.count_sql));
    BindAll(s, sql.binds);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  void Fault(const std::string& point) {
    if (hook_) hook_(point);
  }

  absl::Status InsertRole(std::string_view role, std::string_view server, std::string_view site,
                          std::string_view nal) {
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("INSERT INTO SysResList (RoleName, ServerName, SiteCode, NALPath) "
                             "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"));
    s.Bind(1, role).Bind(2, server).Bind(3, site).Bind(4, nal);
    return s.Run().status();
  }

  absl::StatusOr<int64_t> ImportDp(const InventoryDp& dp) {
    const std::string nal = SiteSystemNalText(dp.server, dp.site);
    {
      ASSIGN_OR_RETURN(
          auto s, db_->Prepare("SELECT JobID FROM DPUpgradeStatus WHERE DPID = ?1 OR NewDPID = ?1 "
                               "OR ServerName = ?2"));
      s.Bind(1, dp.dpid).Bind(2, dp.server);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        return absl::FailedPreconditionError(fmt::format(
            "distribution point {} ('{}') has reassignment job {}: its rows belong to that job "
            "now and are not re-imported",
            dp.dpid, dp.server, s.Int(0)));
      }
    }
    {
      ASSIGN_OR_RETURN(auto s,
                       db_->Prepare("SELECT DPID FROM DistributionPoints WHERE (DPID = ?1) != "
                                    "(NALPath = ?2) AND (DPID = ?1 OR NALPath = ?2)"));
      s.Bind(1, dp.dpid).Bind(2, nal);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) {
        return absl::FailedPreconditionError(fmt::format(
            "distribution point {} ('{}' in {}) clashes with DPID {} already in the site database",
            dp.dpid, dp.server, dp.site, s.Int(0)));
      }
    }
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("INSERT INTO DistributionPoints (DPID, ServerName, NALPath, "
                             "SMSSiteCode, ShareName, DPDrive, MinFreeSpace, AgentEndpoint) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (DPID) DO UPDATE "
                             "SET ServerName = ?2, SMSSiteCode = ?4, ShareName = ?5, DPDrive = ?6, "
                             "MinFreeSpace = ?7, AgentEndpoint = ?8"));
    s.Bind(1, dp.dpid).Bind(2, dp.server).Bind(3, nal).Bind(4, dp.site).Bind(5, dp.share);
    s.Bind(6, dp.drive).Bind(7, dp.min_free_space_mb).Bind(8, dp.agent_endpoint);
    RETURN_IF_ERROR(s.Run().status());
    for (const std::string& role : dp.roles) {
      RETURN_IF_ERROR(InsertRole(role, dp.server, dp.site, nal));
    }
    if (!dp.shared_in_site.empty()) {
      // The destination sees the DP under its source NAL path.
      RETURN_IF_ERROR(InsertRole(kRoleSiteSystem, dp.server, dp.shared_in_site, nal));
      RETURN_IF_ERROR(InsertRole(kRoleSharedDistributionPoint, dp.server, dp.shared_in_site, nal));
    }
    ASSIGN_OR_RETURN(auto site_name_stmt,
                     db_->Prepare("SELECT SiteName FROM Sites WHERE SiteCode = ?1"));
    site_name_stmt.Bind(1, dp.site);
    ASSIGN_OR_RETURN(bool has_site, site_name_stmt.Step());
    if (!has_site) {
      return absl::InvalidArgumentError(
          fmt::format("distribution point {} names site '{}', which is not in the sites list",
                      dp.dpid, dp.site));
    }
    const std::string site_name = site_name_stmt.Text(0);
    int64_t bytes = 0;
    for (const PackageOnDp& p : dp.packages) {
      ASSIGN_OR_RETURN(auto pkg,
                       db_->Prepare("SELECT SourceVersion, SourceSite, Bytes FROM Packages WHERE "
                                    "PkgID = ?1"));
      pkg.Bind(1, p.package_id);
      ASSIGN_OR_RETURN(bool found, pkg.Step());
      if (!found) {
        return absl::InvalidArgumentError(fmt::format(
            "distribution point {} holds package '{}', which is not in the packages list", dp.dpid,
            p.package_id));
      }
      const int64_t version = pkg.Int(0);
      const std::string source_site = pkg.Text(1);
      bytes += pkg.Int(2);
      const std::string location = FormatNalPath(ShareNal(dp.server, dp.site, p.location));
      ASSIGN_OR_RETURN(
          auto a, db_->Prepare("INSERT INTO PkgServers (PkgID, NALPath, SiteCode, SiteName, "
                               "SourceSite) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET "
                               "SiteCode = ?3, SiteName = ?4, SourceSite = ?5"));
      a.Bind(1, p.package_id).Bind(2, nal).Bind(3, dp.site).Bind(4, site_name).Bind(5, source_site);
      RETURN_IF_ERROR(a.Run().status());
      ASSIGN_OR_RETURN(
          auto b,
          db_->Prepare("INSERT INTO PkgStatus (ID, Type, SiteCode, PkgServer, Status, "
                       "Location, SourceVersion, State) VALUES (?1, 2, ?2, ?3, 3, ?4, ?5, 0) "
                       "ON CONFLICT DO UPDATE SET SiteCode = ?2, Location = ?4, "
                       "SourceVersion = ?5"));
      b.Bind(1, p.package_id).Bind(2, dp.site).Bind(3, nal).Bind(4, location).Bind(5, version);
      RETURN_IF_ERROR(b.Run().status());
      ASSIGN_OR_RETURN(
          auto c, db_->Prepare("INSERT INTO ContentDPMap (ContentID, Version, ServerName, NALPath, "
                               "SiteCode, URL, URLSubPath) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1) "
                               "ON CONFLICT DO UPDATE SET Version = ?2, SiteCode = ?5, URL = ?6"));
      c.Bind(1, p.package_id).Bind(2, version).Bind(3, dp.server).Bind(4, nal).Bind(5, dp.site);
      c.Bind(6, location);
      RETURN_IF_ERROR(c.Run().status());
    }
    if (!dp.shared_in_site.empty()) {
      ASSIGN_OR_RETURN(
          auto m,
          db_->Prepare("INSERT INTO MigrationDP (NALPath, ServerName, SiteCode, "
                       "AttachingSiteCode, EligibleForUpgrade, HostedPackageNum, "
                       "MBytesPackageSize) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT "
                       "DO UPDATE SET NALPath = ?1, AttachingSiteCode = ?4, "
                       "EligibleForUpgrade = ?5, HostedPackageNum = ?6, MBytesPackageSize = ?7"));
      m.Bind(1, nal).Bind(2, dp.server).Bind(3, dp.shared_in_site).Bind(4, dp.site);
      m.Bind(5, int64_t{dp.eligible}).Bind(6, static_cast<int64_t>(dp.packages.size()));
      m.Bind(7, (bytes + (1 << 20) - 1) >> 20);
      RETURN_IF_ERROR(m.Run().status());
    }
    return static_cast<int64_t>(dp.packages.size());
  }

  absl::StatusOr<std::vector<ConversionPackage>> PackagesAt(const std::string& nal) {
    // The location is the share part of ContentDPMap.URL, below the DP.
    ASSIGN_OR_RETURN(
        auto s,
        db_->Prepare("SELECT c.ContentID, p.Name, c.Version, c.URL, p.KeepPackageShare, "
                     "IFNULL(st.State, 0), IFNULL(st.BytesConverted, 0), IFNULL(st.LastError, '') "
                     "FROM ContentDPMap c JOIN Packages p ON p.PkgID = c.ContentID "
                     "LEFT JOIN PkgStatus st ON st.ID = c.ContentID AND st.Type = 2 AND "
                     "st.PkgServer = c.NALPath WHERE c.NALPath = ?1 ORDER BY c.ContentID"));
    s.Bind(1, nal);
    std::vector<ConversionPackage> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ConversionPackage p;
      p.package_id = s.Text(0);
      p.name = s.Text(1);
      p.source_version = s.Int(2);
      auto url = ParseNalPath(s.Text(3));
      if (!url.ok()) {
        return Annotate(url.status(),
                        fmt::format("ContentDPMap location of package '{}'", p.package_id));
      }
      p.location = url->share;
      while (!p.location.empty() && p.location.back() == '\\') p.location.pop_back();
      p.keep_package_share = s.Int(4) != 0;
      p.state = static_cast<PackageState>(s.Int(5));
      p.bytes_converted = s.Int(6);
      p.last_error = s.Text(7);
      out.push_back(std::move(p));
    }
    return out;
  }

  absl::StatusOr<std::optional<Site>> OneSite(std::string_view code) {
    ASSIGN_OR_RETURN(auto s,
                     db_->Prepare("SELECT SiteCode, SiteName, Hierarchy, Version FROM Sites WHERE "
                                  "SiteCode = ?1"));
    s.Bind(1, code);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Site>();
    return Site{s.Text(0), s.Text(1),
                s.Text(2) == "source" ? Hierarchy::kSource : Hierarchy::kDestination, s.Text(3)};
  }

  absl::StatusOr<std::optional<DistributionPointRow>> OneDp(std::string_view where,
                                                            std::string_view arg) {
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare(fmt::format("SELECT {} FROM DistributionPoints d WHERE {}", kDpColumns,
                                         where)));
    s.Bind(1, arg);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<DistributionPointRow>();
    return ReadDp(s);
  }

  absl::StatusOr<std::optional<UpgradeJob>> JobWhere(std::string_view where, std::string_view arg) {
    ASSIGN_OR_RETURN(auto s, db_->Prepare(fmt::format("SELECT {} FROM DPUpgradeStatus WHERE {}",
                                                      kJobColumns, where)));
    s.Bind(1, arg);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<UpgradeJob>();
    return ReadJob(s);
  }

  // Steps 1-6, 8, 9: what each changes. The NAL paths come from the job
  // row, never from the DP rows the steps delete.
  std::vector<StepSql> StepStatements(const UpgradeJob& job, int step) {
    const std::string new_nal = SiteSystemNalText(job.server, job.destination_site);
    auto role_delete = [&](std::string_view role, std::string_view site, std::string what) {
      std::string where = "RoleName = ?1 AND ServerName = ?2 AND SiteCode = ?3";
      return StepSql{"SysResList",
                     std::move(what),
                     fmt::format("DELETE FROM SysResList WHERE {}", where),
                     fmt::format("SELECT COUNT(*) FROM SysResList WHERE {}", where),
                     {std::string(role), job.server, std::string(site)}};
    };
    switch (step) {
      case 1:
        return {
            role_delete(kRoleDistributionPoint, job.source_site,
                        fmt::format("DP role of '{}' in {} deleted", job.server, job.source_site)),
            StepSql{"DistributionPoints",
                    fmt::format("DPID {} deleted from {}", job.dpid, job.source_site),
                    "DELETE FROM DistributionPoints WHERE DPID = ?1",
                    "SELECT COUNT(*) FROM DistributionPoints WHERE DPID = ?1",
                    {std::to_string(job.dpid)}}};
      case 2:
        return {role_delete(
            kRoleSiteSystem, job.source_site,
            fmt::format("site system '{}' deleted from {}", job.server, job.source_site))};
      case 3:
        return {role_delete(kRoleSharedDistributionPoint, job.destination_site,
                            fmt::format("shared DP role of '{}' deleted from {}", job.server,
                                        job.destination_site))};
      case 4:
        return {role_delete(kRoleSiteSystem, job.destination_site,
                            fmt::format("shared DP site system '{}' deleted from {}", job.server,
                                        job.destination_site))};
      case 5:
        return {StepSql{
            "SysResList",
            fmt::format("site system '{}' installed in {}", job.server, job.destination_site),
            "INSERT INTO SysResList (RoleName, ServerName, SiteCode, NALPath) VALUES "
            "(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            "",
            {kRoleSiteSystem, job.server, job.destination_site, new_nal}}};
      case 6:
        return {StepSql{"SysResList",
                        fmt::format("DP role of '{}' installed in {}", job.server,
                                    job.destination_site),
                        "INSERT INTO SysResList (RoleName, ServerName, SiteCode, NALPath) VALUES "
                        "(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                        "",
                        {kRoleDistributionPoint, job.server, job.destination_site, new_nal}},
                StepSql{"DistributionPoints",
                        fmt::format("DP '{}' added to {}", job.server, job.destination_site),
                        "INSERT INTO DistributionPoints (DPID, ServerName, NALPath, SMSSiteCode, "
                        "ShareName, AgentEndpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO "
                        "NOTHING",
                        "",
                        {std::to_string(job.new_dpid), job.server, new_nal, job.destination_site,
                         job.share, job.agent_endpoint}}};
      case 8:
        return {StepSql{"PkgStatus",
                        "packages converted into the content library",
                        "",  // recorded per package as the agent reports them
                        "SELECT COUNT(*) FROM ContentDPMap WHERE NALPath = ?1",
                        {job.nal_path}}};
      case 9:
        return {StepSql{"MigrationDP",
                        fmt::format("shared DP '{}' marked upgraded", job.server),
                        "UPDATE MigrationDP SET IsUpgraded = 1, EligibleForUpgrade = 0 WHERE "
                        "ServerName = ?1 AND SiteCode = ?2",
                        "SELECT COUNT(*) FROM MigrationDP WHERE ServerName = ?1 AND SiteCode = ?2",
                        {job.server, job.destination_site}}};
      default:
        return {};
    }
  }

  std::vector<StepSql> UpgradeStatements(std::string_view old_nal, std::string_view new_nal,
                                         std::string_view new_site, std::string_view server,
                                         std::string_view old_site) {
    const std::string old_prefix = SharePrefix(server, old_site);
    const std::string new_prefix = SharePrefix(server, new_site);
    std::vector<std::string> binds = {std::string(old_nal), std::string(new_nal),
                                      std::string(new_site), old_prefix, new_prefix};
    // Only the prefix of a share location is the DP's; replace() on the
    // whole string could touch a folder name that happens to contain it.
    constexpr char kRelocate[] =
        "CASE WHEN substr({0}, 1, length(?4)) = ?4 THEN ?5 || substr({0}, length(?4) + 1) ELSE {0} "
        "END";
    return {
        StepSql{"PkgServers", "NAL path rewritten to the new DP",
                "UPDATE PkgServers SET NALPath = ?2, SiteCode = ?3, SiteName = IFNULL((SELECT "
                "SiteName FROM Sites WHERE SiteCode = ?3), SiteName) WHERE NALPath = ?1 ",
                "SELECT COUNT(*) FROM PkgServers WHERE NALPath = ?1 ", binds},
        StepSql{"PkgStatus", "package server rewritten to the new DP",
                fmt::format("UPDATE PkgStatus SET PkgServer = ?2, SiteCode = ?3, Location = {} "
                            "WHERE PkgServer = ?1",
                            fmt::format(fmt::runtime(kRelocate), "Location")),
                "SELECT COUNT(*) FROM PkgStatus WHERE PkgServer = ?1 ", binds},
        StepSql{"ContentDPMap", "content locations rewritten to the new DP",
                fmt::format("UPDATE ContentDPMap SET NALPath = ?2, SiteCode = ?3, URL = {} WHERE "
                            "NALPath = ?1",
                            fmt::format(fmt::runtime(kRelocate), "URL")),
                "SELECT COUNT(*) FROM ContentDPMap WHERE NALPath = ?1 ", binds},
        StepSql{"DPUpgradeStatus", "upgrade job pointed at the new DP",
                "UPDATE DPUpgradeStatus SET NALPath = ?2 WHERE NALPath = ?1 ",
                "SELECT COUNT(*) FROM DPUpgradeStatus WHERE NALPath = ?1 ", binds},
    };
  }

  // The body of sp_MIG_UpgradeDistributionPoint, inside the caller's
  // transaction.
  absl::StatusOr<std::vector<RowChange>> UpgradeRows(std::string_view old_nal,
                                                     std::string_view new_nal,
                                                     std::string_view new_site,
                                                     std::string_view server,
                                                     std::string_view old_site, bool in_step) {
    std::vector<RowChange> changes;
    for (const StepSql& sql : UpgradeStatements(old_nal, new_nal, new_site, server, old_site)) {
      ASSIGN_OR_RETURN(int64_t n, Change(sql));
      changes.push_back({sql.table, n, sql.what});
      if (in_step) Fault("step7.after_" + sql.table);
    }
    return changes;
  }

  absl::Status RecordPackage(int64_t job_id, std::string_view package_id, PackageState state,
                             int64_t pkg_status, int64_t bytes, std::string_view error,
                             std::string_view now) {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    ASSIGN_OR_RETURN(auto job, JobWhere("JobID = ?1", std::to_string(job_id)));
    if (!job) return absl::NotFoundError(fmt::format("no job {}", job_id));
    // The package's state before, so the job's totals move only when it
    // enters or leaves "converted": a package reported twice (a resumed
    // conversion) is counted once, without recounting the whole DP.
    ASSIGN_OR_RETURN(auto before, db_->Prepare("SELECT st.State, p.Bytes FROM PkgStatus st JOIN "
                                               "Packages p ON p.PkgID = st.ID WHERE st.ID = ?1 "
                                               "AND st.Type = 2 AND st.PkgServer = ?2"));
    before.Bind(1, package_id).Bind(2, job->nal_path);
    ASSIGN_OR_RETURN(bool found, before.Step());
    if (!found) {
      return absl::NotFoundError(fmt::format("package '{}' is not on the DP of job {} ('{}')",
                                             package_id, job_id, job->server));
    }
    const bool was_converted = before.Int(0) == static_cast<int64_t>(PackageState::kConverted);
    const int64_t package_bytes = before.Int(1);
    ASSIGN_OR_RETURN(
        auto s, db_->Prepare("UPDATE PkgStatus SET State = ?3, Status = ?4, BytesConverted = ?5, "
                             "LastError = ?6, UpdateTime = ?7 WHERE ID = ?1 AND Type = 2 AND "
                             "PkgServer = ?2"));
    s.Bind(1, package_id).Bind(2, job->nal_path).Bind(3, static_cast<int64_t>(state));
    s.Bind(4, pkg_status).Bind(5, bytes).Bind(6, error).Bind(7, now);
    RETURN_IF_ERROR(s.Run().status());
    const bool is_converted = state == PackageState::kConverted;
    if (was_converted != is_converted) {
      const int64_t sign = is_converted ? 1 : -1;
      ASSIGN_OR_RETURN(auto t, db_->Prepare("UPDATE DPUpgradeStatus SET PackagesConverted = "
                                            "PackagesConverted + ?2, BytesDone = BytesDone + ?3 "
                                            "WHERE JobID = ?1"));
      t.Bind(1, job_id).Bind(2, sign).Bind(3, sign * package_bytes);
      RETURN_IF_ERROR(t.Run().status());
    }
    RETURN_IF_ERROR(tx->Commit());
    if (state == PackageState::kConverted) Fault("step8.package_done");
    return absl::OkStatus();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;
  FaultHook hook_;
};

}  // namespace

std::string_view StepName(int step) {
  if (step < 1 || step > 9) return "unknown step";
  return kStepNames[step];
}

absl::StatusOr<std::unique_ptr<SiteStore>> OpenSqliteSiteStore(const SqliteStoreOptions& options) {
  SqliteDb::Options db_options;
  if (options.trace_sql) db_options.trace_logger = ComponentLogger(options.trace_component);
  db_options.vfs = options.vfs;
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(options.path, db_options));
  RETURN_IF_ERROR(ApplyMigrations(*db));
  return std::unique_ptr<SiteStore>(new SqliteSiteStore(std::move(db), options.fault_hook));
}

}  // namespace dpr::sitedb
