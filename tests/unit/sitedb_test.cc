// Scenario tests for the site database. They run against a store factory so
// a PostgreSQL store can be added to INSTANTIATE_TEST_SUITE_P and pass the
// same scenarios.
#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <thread>

#include "common/nal/nal_path.h"
#include "controller/inventory/inventory_json.h"
#include "controller/sitedb/migrations.h"
#include "controller/sitedb/site_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/db_dump.h"
#include "tests/support/site_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr::sitedb {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

struct Backend {
  std::string name;
  // Opens the store at `dir` (same dir = same database).
  std::function<absl::StatusOr<std::unique_ptr<SiteStore>>(const std::string& dir, FaultHook)> open;
  std::function<std::string(const std::string& dir)> dump;
};

Backend SqliteBackend() {
  return {"sqlite",
          [](const std::string& dir, FaultHook hook) {
            return OpenSqliteSiteStore({.path = dir + "/site.db", .fault_hook = std::move(hook)});
          },
          [](const std::string& dir) { return dpr::testing::DumpSiteDb(dir + "/site.db"); }};
}

Inventory Demo(const dpr::testing::DemoSite& d = {}) {
  auto inv = controller::ParseInventory(dpr::testing::DemoInventory(d).dump(), "demo.json");
  EXPECT_TRUE(inv.ok()) << inv.status();
  return *inv;
}

const std::string kDp01Old = FormatNalPath(SiteSystemNal("DP01.CONTOSO.COM", "S07"));
const std::string kDp01New = FormatNalPath(SiteSystemNal("DP01.CONTOSO.COM", "P01"));
const std::string kDp02 = FormatNalPath(SiteSystemNal("DP02.CONTOSO.COM", "S07"));

class SiteDbScenario : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto store = GetParam().open(dir_.path(), nullptr);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto counts = store_->ImportInventory(Demo());
    ASSERT_TRUE(counts.ok()) << counts.status();
  }

  int64_t CountSql(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_.path() + "/site.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* stmt = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }
  int64_t RowsWith(const std::string& table, const std::string& column, const std::string& nal) {
    std::string quoted;
    for (char c : nal) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    return CountSql("SELECT COUNT(*) FROM " + table + " WHERE " + column + " = '" + quoted + "'");
  }

  UpgradeJob MakeJob() {
    auto created = store_->CreateJob(4, "P01", "2026-11-26T00:00:00Z");
    EXPECT_TRUE(created.ok()) << created.status();
    return created->job;
  }

  dpr::testing::TempDir dir_;
  std::unique_ptr<SiteStore> store_;
};

TEST_P(SiteDbScenario, ImportLoadsEveryTableAndIsIdempotent) {
  EXPECT_EQ(RowsWith("PkgServers", "NALPath", kDp01Old), 6);
  EXPECT_EQ(RowsWith("PkgStatus", "PkgServer", kDp01Old), 6);
  EXPECT_EQ(RowsWith("ContentDPMap", "NALPath", kDp01Old), 6);
  EXPECT_EQ(RowsWith("PkgServers", "NALPath", kDp02), 3);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM MigrationDP"), 2);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM SysResList WHERE SiteCode = 'P01'"), 4);
  const std::string before = GetParam().dump(dir_.path());
  auto again = store_->ImportInventory(Demo());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->packages, 6);
  EXPECT_EQ(again->package_locations, 9);
  EXPECT_EQ(GetParam().dump(dir_.path()), before);
}

TEST_P(SiteDbScenario, FailedImportChangesNothing) {
  const std::string before = GetParam().dump(dir_.path());
  Inventory bad = Demo();
  bad.sites.push_back({"X01", "New site", Hierarchy::kSource, ""});
  bad.distribution_points[1].packages.push_back({"S07FFFFF", "SMSPKGD$\\S07FFFFF"});
  EXPECT_THAT(store_->ImportInventory(bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("S07FFFFF")));
  EXPECT_EQ(GetParam().dump(dir_.path()), before);
}

TEST_P(SiteDbScenario, FindsDistributionPointsAsTheSeedsQueryDoes) {
  auto dp = store_->FindDistributionPoint("dp01.contoso.com");
  ASSERT_TRUE(dp.ok() && dp->has_value());
  EXPECT_EQ((*dp)->dpid, 4);
  EXPECT_EQ((*dp)->nal_path, kDp01Old);
  EXPECT_EQ((*dp)->packages, 6);
  auto none = store_->FindDistributionPoint("nope.contoso.com");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto list = store_->ListDistributionPoints("S07");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_P(SiteDbScenario, FactsForEligibility) {
  auto facts = store_->GetDpFacts(4, "P01");
  ASSERT_TRUE(facts.ok());
  EXPECT_TRUE(facts->shared_in_destination);
  EXPECT_TRUE(facts->eligible_flag);
  EXPECT_TRUE(facts->site_server_sites.empty());
  EXPECT_EQ(facts->packages, 6);
  EXPECT_EQ(facts->package_bytes, 21000);
  EXPECT_THAT(facts->roles, ::testing::ElementsAre(kRoleDistributionPoint, kRoleSiteSystem));
}

TEST_P(SiteDbScenario, OneJobPerDpEvenWhenAskedTwice) {
  UpgradeJob a = MakeJob();
  auto b = store_->CreateJob(4, "P01", "later");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->job.job_id, a.job_id);
  EXPECT_EQ(a.packages_total, 6);
  EXPECT_EQ(a.bytes_total, 21000);
  EXPECT_EQ(a.new_dpid, 6);  // after DPIDs 4 and 5
  EXPECT_THAT(store_->CreateJob(4, "S07", "x").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(SiteDbScenario, ConcurrentRequestsFromTwoConnectionsMakeOneJob) {
  auto other = GetParam().open(dir_.path(), nullptr);
  ASSERT_TRUE(other.ok());
  std::atomic<int> created{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    SiteStore* s = i % 2 ? store_.get() : other->get();
    threads.emplace_back([&, s] {
      auto r = s->CreateJob(4, "P01", "now");
      if (!r.ok()) {
        ++failed;
      } else if (r->created) {
        ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM DPUpgradeStatus"), 1);
}

TEST_P(SiteDbScenario, StepsOneToSevenMoveTheDpAndReplaysChangeNothing) {
  UpgradeJob job = MakeJob();
  for (int step = 1; step <= 7; ++step) {
    auto plan = store_->PlanStep(4 /* still the source DPID in the plan */, "P01", step);
    auto changes = store_->CommitStep(job.job_id, step, "t");
    ASSERT_TRUE(changes.ok()) << "step " << step << ": " << changes.status();
    ASSERT_FALSE(changes->empty()) << "step " << step;
    if (step == 1 && plan.ok()) {
      ASSERT_EQ(plan->size(), changes->size());
      for (size_t i = 0; i < plan->size(); ++i) EXPECT_EQ((*plan)[i].rows, (*changes)[i].rows);
    }
    const std::string after = GetParam().dump(dir_.path());
    auto replay = store_->CommitStep(job.job_id, step, "t");
    ASSERT_TRUE(replay.ok());
    EXPECT_TRUE(replay->empty()) << "step " << step << " ran twice";
    EXPECT_EQ(GetParam().dump(dir_.path()), after);
  }
  auto j = store_->GetJob(job.job_id);
  ASSERT_TRUE(j.ok() && j->has_value());
  EXPECT_EQ((*j)->step, 8);
  EXPECT_EQ((*j)->nal_path, kDp01New);
  // Source roles gone, destination roles present, the old DP row replaced.
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM SysResList WHERE ServerName = 'DP01.CONTOSO.COM' AND "
                     "SiteCode = 'S07'"),
            0);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM SysResList WHERE ServerName = 'DP01.CONTOSO.COM' AND "
                     "SiteCode = 'P01' AND RoleName IN ('SMS Site System', 'SMS Distribution "
                     "Point')"),
            2);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM SysResList WHERE ServerName = 'DP01.CONTOSO.COM' AND "
                     "RoleName = 'SMS Shared Distribution Point'"),
            0);
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM DistributionPoints WHERE DPID = 4"), 0);
  EXPECT_EQ(CountSql("SELECT SMSSiteCode = 'P01' FROM DistributionPoints WHERE DPID = 6"), 1);
  // Every row of DP01 now names the new DP; DP02's are untouched.
  for (auto [table, column] : {std::pair{"PkgServers", "NALPath"},
                               {"PkgStatus", "PkgServer"},
                               {"ContentDPMap", "NALPath"}}) {
    EXPECT_EQ(RowsWith(table, column, kDp01Old), 0) << table;
    EXPECT_EQ(RowsWith(table, column, kDp01New), 6) << table;
    EXPECT_EQ(RowsWith(table, column, kDp02), 3) << table;
  }
  EXPECT_EQ(CountSql("SELECT COUNT(*) FROM ContentDPMap WHERE URL LIKE "
                     "'MSWNET:[\"SMS_SITE=P01\"]\\\\DP01.CONTOSO.COM\\SMSPKGD$\\S07%'"),
            6);
  auto pkgs = store_->ListConversionPackages(job.job_id);
  ASSERT_TRUE(pkgs.ok()) << pkgs.status();
  ASSERT_EQ(pkgs->size(), 6u);
  EXPECT_EQ((*pkgs)[0].location, "SMSPKGD$\\" + dpr::testing::PackageIdOf(0));
  EXPECT_TRUE((*pkgs)[1].keep_package_share);
}

TEST_P(SiteDbScenario, UpgradeDistributionPointIsIdempotent) {
  auto first = store_->UpgradeDistributionPoint(kDp01Old, kDp01New, "P01");
  ASSERT_TRUE(first.ok()) << first.status();
  int64_t total = 0;
  for (const auto& c : *first) total += c.rows;
  EXPECT_EQ(total, 18);
  const std::string after = GetParam().dump(dir_.path());
  auto second = store_->UpgradeDistributionPoint(kDp01Old, kDp01New, "P01");
  ASSERT_TRUE(second.ok());
  for (const auto& c : *second) EXPECT_EQ(c.rows, 0) << c.table;
  EXPECT_EQ(GetParam().dump(dir_.path()), after);
  EXPECT_THAT(store_->UpgradeDistributionPoint("not a nal", kDp01New, "P01").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A crash inside step 7 (simulated by a hook that throws between two of its
// four updates) must leave none of them.
TEST_P(SiteDbScenario, StepSevenIsAllOrNothing) {
  for (const char* point : {"step7.after_PkgServers", "step7.after_PkgStatus",
                            "step7.after_ContentDPMap", "step7.before_commit"}) {
    dpr::testing::TempDir dir;
    auto armed = std::make_shared<bool>(true);
    auto store = GetParam().open(dir.path(), [point, armed](std::string_view p) {
      if (p == point && *armed) {
        *armed = false;
        throw std::runtime_error("crash");
      }
    });
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->ImportInventory(Demo()).ok());
    auto job = (*store)->CreateJob(4, "P01", "t");
    ASSERT_TRUE(job.ok());
    for (int step = 1; step <= 6; ++step)
      ASSERT_TRUE((*store)->CommitStep(job->job.job_id, step, "t").ok());
    const std::string before = GetParam().dump(dir.path());
    EXPECT_THROW((void)(*store)->CommitStep(job->job.job_id, 7, "t"), std::runtime_error) << point;
    EXPECT_EQ(GetParam().dump(dir.path()), before) << point;
    // And it still works afterwards.
    auto again = (*store)->CommitStep(job->job.job_id, 7, "t");
    ASSERT_TRUE(again.ok()) << point;
    EXPECT_EQ(again->size(), 4u) << point;
  }
}

TEST_P(SiteDbScenario, PackageResultsAndRetry) {
  UpgradeJob job = MakeJob();
  for (int step = 1; step <= 7; ++step) ASSERT_TRUE(store_->CommitStep(job.job_id, step, "t").ok());
  ASSERT_TRUE(store_->MarkJobRunning(job.job_id, "t").ok());
  const std::string p0 = dpr::testing::PackageIdOf(0);
  const std::string p1 = dpr::testing::PackageIdOf(1);
  ASSERT_TRUE(store_->RecordPackageStarted(job.job_id, p0, "t").ok());
  ASSERT_TRUE(store_->RecordPackageDone(job.job_id, p0, 1000, "t").ok());
  ASSERT_TRUE(store_->RecordPackageDone(job.job_id, p0, 1000, "t").ok());  // reported twice
  ASSERT_TRUE(store_->RecordPackageFailed(job.job_id, p1, "disk full", "t").ok());
  EXPECT_THAT(store_->RecordPackageDone(job.job_id, "S07FFFFF", 1, "t"),
              StatusIs(absl::StatusCode::kNotFound));
  auto j = store_->GetJob(job.job_id);
  EXPECT_EQ((*j)->packages_converted, 1);
  EXPECT_EQ((*j)->bytes_done, 1000);
  ASSERT_TRUE(store_->MarkJobFailed(job.job_id, "Failed to convert content", "t").ok());
  auto retried = store_->RequestConversion(job.job_id, "t2");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status, JobStatus::kRunning);
  EXPECT_EQ(retried->step, 8);
  auto pkgs = store_->ListConversionPackages(job.job_id);
  EXPECT_EQ((*pkgs)[0].state, PackageState::kConverted);  // kept
  EXPECT_EQ((*pkgs)[1].state, PackageState::kLegacy);     // failed one reset for the retry
  ASSERT_TRUE(store_->CommitStep(job.job_id, 8, "t").ok());
  ASSERT_TRUE(store_->CommitStep(job.job_id, 9, "t").ok());
  j = store_->GetJob(job.job_id);
  EXPECT_EQ((*j)->status, JobStatus::kCompleted);
  EXPECT_EQ(CountSql("SELECT IsUpgraded FROM MigrationDP WHERE ServerName = 'DP01.CONTOSO.COM'"),
            1);
}

TEST_P(SiteDbScenario, ConversionRetryRefusedBeforeStepEight) {
  UpgradeJob job = MakeJob();
  EXPECT_THAT(store_->RequestConversion(job.job_id, "t").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dpctl reassign")));
}

TEST_P(SiteDbScenario, MessagesKeepTheirOrder) {
  UpgradeJob job = MakeJob();
  for (int i = 0; i < 3; ++i) {
    StatusMessage m{.job_id = job.job_id,
                    .message_id = 2300 + i,
                    .severity = 'I',
                    .component = "SMS_DISTRIBUTION_MANAGER",
                    .time = "t",
                    .text = std::to_string(i)};
    ASSERT_TRUE(store_->AddMessage(m).ok());
  }
  auto all = store_->ListMessages(job.job_id, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  auto after = store_->ListMessages(job.job_id, (*all)[0].record_id);
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].text, "1");
}

INSTANTIATE_TEST_SUITE_P(Backends, SiteDbScenario, ::testing::Values(SqliteBackend()),
                         [](const auto& info) { return info.param.name; });

TEST(SqliteSiteDb, RefusesANewerSchemaAndAFileThatIsNotADatabase) {
  dpr::testing::TempDir dir;
  {
    auto store = OpenSqliteSiteStore({.path = dir.path() + "/site.db"});
    ASSERT_TRUE(store.ok());
  }
  sqlite3* db = nullptr;
  sqlite3_open((dir.path() + "/site.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THAT(OpenSqliteSiteStore({.path = dir.path() + "/site.db"}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("schema version 99")));
  dpr::testing::WriteFile(dir.path() + "/junk.db", std::string(4096, 'x'));
  EXPECT_THAT(OpenSqliteSiteStore({.path = dir.path() + "/junk.db"}).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("junk.db")));
}

}  // namespace
}  // namespace dpr::sitedb
