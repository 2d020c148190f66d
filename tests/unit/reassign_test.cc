// The step machine (pure), eligibility, the inventory parser, the .dpu name
// rules, and the inbox over a real folder.
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "common/fs/durable_file.h"
#include "controller/distmgr/dpu_name.h"
#include "controller/distmgr/inbox.h"
#include "controller/inventory/inventory_json.h"
#include "controller/reassign/step_machine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/site_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

using ::dpr::testing::StatusIs;
using reassign::Action;
using reassign::ActionKind;
using reassign::JobView;
using sitedb::JobStatus;
using ::testing::HasSubstr;

// --- step machine ------------------------------------------------------------

TEST(StepMachine, WalksTheNineStepsInOrder) {
  // Drive the machine as the runner does, feeding results back, and record
  // what it asks for: this is the whole happy path without a database.
  JobView job{.status = JobStatus::kRunning, .step = 1};
  std::vector<Action> seen;
  for (int guard = 0; guard < 30; ++guard) {
    Action a = reassign::NextAction(job);
    seen.push_back(a);
    if (a.kind == ActionKind::kWait) break;
    switch (a.kind) {
      case ActionKind::kCommitStep:
      case ActionKind::kAssignAndCommit:
        if (job.step == 9) {
          job.status = JobStatus::kCompleted;
        } else {
          ++job.step;
        }
        job.conversion_ok.reset();
        job.check_ok.reset();
        job.dpu_dropped = false;
        break;
      case ActionKind::kDropDpu:
        job.dpu_dropped = true;  // distmgr hands it back
        break;
      case ActionKind::kConvert:
        job.conversion_ok = true;
        break;
      case ActionKind::kCheckLibrary:
        job.check_ok = true;
        break;
      default:
        FAIL() << "unexpected action";
    }
  }
  std::vector<Action> want = {
      {ActionKind::kCommitStep, 1},   {ActionKind::kCommitStep, 2},
      {ActionKind::kCommitStep, 3},   {ActionKind::kCommitStep, 4},
      {ActionKind::kCommitStep, 5},   {ActionKind::kAssignAndCommit, 6},
      {ActionKind::kCommitStep, 7},   {ActionKind::kDropDpu, 8},
      {ActionKind::kConvert, 8},      {ActionKind::kCommitStep, 8},
      {ActionKind::kCheckLibrary, 9}, {ActionKind::kCommitStep, 9},
      {ActionKind::kWait, 9},
  };
  EXPECT_EQ(seen, want);
}

TEST(StepMachine, FailuresAndIdleStates) {
  EXPECT_EQ(
      reassign::NextAction(
          {.status = JobStatus::kRunning, .step = 8, .dpu_dropped = true, .conversion_ok = false})
          .kind,
      ActionKind::kFail);
  EXPECT_EQ(
      reassign::NextAction({.status = JobStatus::kRunning, .step = 9, .check_ok = false}).kind,
      ActionKind::kFail);
  for (auto s :
       {JobStatus::kNotStarted, JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kStopped}) {
    EXPECT_EQ(reassign::NextAction({.status = s, .step = 3}).kind, ActionKind::kWait);
  }
  EXPECT_EQ(reassign::NextAction({.status = JobStatus::kRunning, .step = 12}).kind,
            ActionKind::kFail);
}

TEST(StepMachine, RetryDecisions) {
  sitedb::UpgradeJob job;
  job.status = JobStatus::kFailed;
  job.step = 4;
  auto d = reassign::DecideReassignRetry(job);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.resume_step, 4);
  job.status = JobStatus::kRunning;
  EXPECT_FALSE(reassign::DecideReassignRetry(job).allowed);
  job.status = JobStatus::kCompleted;
  EXPECT_THAT(reassign::DecideReassignRetry(job).reason, HasSubstr("already completed"));
}

sitedb::DpFacts EligibleFacts() {
  sitedb::DpFacts f;
  f.dp = sitedb::DistributionPointRow{.dpid = 4, .server = "DP01.CONTOSO.COM", .site_code = "S07"};
  f.dp_site = sitedb::Site{"S07", "old", sitedb::Hierarchy::kSource, ""};
  f.to_site = sitedb::Site{"P01", "new", sitedb::Hierarchy::kDestination, ""};
  f.roles = {sitedb::kRoleDistributionPoint, sitedb::kRoleSiteSystem};
  f.shared_in_destination = true;
  f.eligible_flag = true;
  return f;
}

TEST(Eligibility, EachRefusalSaysWhy) {
  EXPECT_TRUE(reassign::CheckEligibility(EligibleFacts(), "P01").eligible);
  struct Case {
    std::function<void(sitedb::DpFacts&)> mutate;
    std::string says;
  };
  std::vector<Case> cases = {
      {[](auto& f) { f.dp.reset(); }, "no such distribution point"},
      {[](auto& f) { f.to_site.reset(); }, "not in the site database"},
      {[](auto& f) { f.to_site->hierarchy = sitedb::Hierarchy::kSource; },
       "not a destination site"},
      {[](auto& f) { f.dp_site->hierarchy = sitedb::Hierarchy::kDestination; },
       "not a source site"},
      {[](auto& f) { f.shared_in_destination = false; }, "not shared with site P01"},
      {[](auto& f) { f.site_server_sites = {"S07"}; }, "site server"},
      {[](auto& f) { f.roles.push_back("SMS Management Point"); }, "'SMS Management Point'"},
      {[](auto& f) { f.roles = {sitedb::kRoleSiteSystem}; }, "no distribution point role"},
      {[](auto& f) { f.eligible_flag = false; }, "not eligible"},
  };
  for (const auto& c : cases) {
    auto f = EligibleFacts();
    c.mutate(f);
    auto e = reassign::CheckEligibility(f, "P01");
    EXPECT_FALSE(e.eligible) << c.says;
    EXPECT_THAT(e.reason, HasSubstr(c.says));
  }
}

TEST(Eligibility, SpaceNamesTheFigures) {
  EXPECT_TRUE(reassign::CheckSpace(100, 100, "DP01").eligible);
  auto e = reassign::CheckSpace(uint64_t{300} << 20, uint64_t{100} << 20, "DP01");
  EXPECT_FALSE(e.eligible);
  EXPECT_THAT(e.reason, HasSubstr("needs 300 MiB, 100 MiB are free"));
}

// --- inventory ----------------------------------------------------------------

TEST(Inventory, ParsesTheDemo) {
  auto inv = controller::ParseInventory(testing::DemoInventory().dump(), "demo.json");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->sites.size(), 2u);
  EXPECT_EQ(inv->packages.size(), 6u);
  ASSERT_EQ(inv->distribution_points.size(), 2u);
  EXPECT_EQ(inv->distribution_points[1].packages[0].location,
            "SMSPKGD$\\" + testing::PackageIdOf(0));  // default location
  EXPECT_TRUE(inv->packages[1].keep_package_share);
}

TEST(Inventory, TheDocumentedExampleParses) {
  auto inv = controller::ParseInventory(
      testing::ReadFile(std::string(DPR_SOURCE_DIR) + "/docs/inventory.example.json"),
      "inventory.example.json");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->distribution_points.size(), 2u);
  EXPECT_EQ(inv->distribution_points[0].packages[0].location, "SMSPKGD$\\S0700001");
  EXPECT_TRUE(inv->packages[2].keep_package_share);
}

TEST(Inventory, BadDocumentsNameTheElement) {
  struct Case {
    std::function<void(nlohmann::json&)> mutate;
    std::string path;
  };
  std::vector<Case> cases = {
      {[](auto& j) { j["format"] = 2; }, "/format"},
      {[](auto& j) { j["sites"][0]["code"] = "TOOLONG"; }, "/sites/0/code"},
      {[](auto& j) { j["sites"][1]["hierarchy"] = "middle"; }, "/sites/1/hierarchy"},
      {[](auto& j) { j["packages"][2]["id"] = "S07-0001"; }, "/packages/2/id"},
      {[](auto& j) { j["packages"][2]["keep_pakage_share"] = true; },
       "/packages/2/keep_pakage_share"},
      {[](auto& j) { j["packages"][3]["source_version"] = "2"; }, "/packages/3/source_version"},
      {[](auto& j) { j["distribution_points"][0]["dpid"] = -1; }, "/distribution_points/0/dpid"},
      {[](auto& j) { j["distribution_points"][1]["dpid"] = 4; }, "/distribution_points/1/dpid"},
      {[](auto& j) { j["distribution_points"][0]["agent_endpoint"] = "nohost"; },
       "/distribution_points/0/agent_endpoint"},
      {[](auto& j) { j["distribution_points"][0]["site"] = "P01"; }, "/distribution_points/0/site"},
      {[](auto& j) { j["distribution_points"][0]["shared_in"] = "S07"; },
       "/distribution_points/0/shared_in"},
      {[](auto& j) { j["distribution_points"][0]["packages"][1]["id"] = "S07FFFFF"; },
       "/distribution_points/0/packages/1/id"},
      {[](auto& j) {
         j["distribution_points"][0]["packages"][1]["location"] = "SMSPKGD$\\..\\..\\Windows";
       },
       "/distribution_points/0/packages/1/location"},
      {[](auto& j) { j["distribution_points"][0]["packages"][1]["location"] = "C:\\SMSPKGD$\\X"; },
       "/distribution_points/0/packages/1/location"},
      {[](auto& j) { j["distribution_points"][0]["server"] = "bad name!"; },
       "/distribution_points/0/server"},
  };
  for (const auto& c : cases) {
    auto j = testing::DemoInventory();
    c.mutate(j);
    EXPECT_THAT(
        controller::ParseInventory(j.dump(), "inv.json").status(),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("inv.json: " + c.path + ":")))
        << c.path;
  }
  EXPECT_THAT(controller::ParseInventory("{\"format\": 1,", "x.json").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON at byte")));
  // Found by inventory_fuzz: an overflowing number threw out_of_range,
  // which nothing caught (the controller terminated).
  EXPECT_THAT(controller::ParseInventory("{\"format\": 1e4666666666}", "x.json").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.json")));
  EXPECT_THAT(controller::ParseInventory("[]", "x.json").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON object")));
  // Found by tests/fault/hostile_client.py: 15 MiB of '[' made the parser
  // build 15 million nested arrays (1.2 GB) before it failed. Refused at
  // depth 33 now, whether or not the rest would parse.
  EXPECT_THAT(controller::ParseInventory(std::string(15 << 20, '['), "x.json").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nested more than 32")));
  EXPECT_THAT(
      controller::ParseInventory(
          "{\"format\": 1, \"x\": " + std::string(40, '[') + std::string(40, ']') + "}", "x.json")
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.json: nested more than 32")));
}

// --- .dpu names and the inbox ---------------------------------------------------

TEST(DpuName, Classifies) {
  using distmgr::DpuNameKind;
  EXPECT_EQ(distmgr::ClassifyDpuName("4.dpu").kind, DpuNameKind::kTrigger);
  EXPECT_EQ(distmgr::ClassifyDpuName("4.dpu").dpid, 4);
  EXPECT_EQ(distmgr::ClassifyDpuName("17.DPU").dpid, 17);
  EXPECT_EQ(distmgr::ClassifyDpuName("x.dpu").kind, DpuNameKind::kBad);
  EXPECT_EQ(distmgr::ClassifyDpuName(".dpu").kind, DpuNameKind::kIgnore);
  EXPECT_EQ(distmgr::ClassifyDpuName("0.dpu").kind, DpuNameKind::kBad);
  EXPECT_EQ(distmgr::ClassifyDpuName("-4.dpu").kind, DpuNameKind::kBad);
  EXPECT_EQ(distmgr::ClassifyDpuName("12345678901.dpu").kind, DpuNameKind::kBad);
  EXPECT_EQ(distmgr::ClassifyDpuName("4.dpu.dprtmp.1").kind, DpuNameKind::kIgnore);
  EXPECT_EQ(distmgr::ClassifyDpuName("bad").kind, DpuNameKind::kIgnore);
  EXPECT_EQ(distmgr::ClassifyDpuName("").kind, DpuNameKind::kIgnore);
}

TEST(Inbox, HandlesSetsAsideAndKeeps) {
  testing::TempDir dir;
  const std::string box = dir.path() + "/distmgr.box";
  std::vector<int64_t> seen;
  distmgr::Inbox inbox({.dir = box, .scan_interval = std::chrono::milliseconds(100000)},
                       [&](int64_t dpid) -> absl::Status {
                         seen.push_back(dpid);
                         if (dpid == 9) return absl::NotFoundError("unknown DP");
                         if (dpid == 7) return absl::UnavailableError("database busy");
                         return absl::OkStatus();
                       });
  // Not started: drive scans by hand (the folder must exist).
  ASSERT_TRUE(MakeDirs(box + "/bad", 0750).ok());
  testing::WriteFile(box + "/4.dpu", "");
  testing::WriteFile(box + "/9.dpu", "");
  testing::WriteFile(box + "/7.dpu", "");
  testing::WriteFile(box + "/abc.dpu", "");
  testing::WriteFile(box + "/5.dpu", std::string(10000, 'x'));
  testing::WriteFile(box + "/notes.txt", "hello");
  ::mkdir((box + "/6.dpu").c_str(), 0750);
  auto counts = inbox.ScanOnce(/*respect_settle=*/false);
  EXPECT_EQ(counts.handled, 1);
  EXPECT_EQ(counts.set_aside, 4);  // 9 (unknown), abc, 5 (huge), 6 (a folder)
  EXPECT_EQ(counts.kept, 1);       // 7: transient
  EXPECT_FALSE(Exists(box + "/4.dpu"));
  EXPECT_TRUE(Exists(box + "/7.dpu"));
  EXPECT_TRUE(Exists(box + "/notes.txt"));
  EXPECT_FALSE(Exists(box + "/abc.dpu"));
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre(4, 9, 7));
}

TEST(Inbox, WakesOnANewFileAndSkipsFreshFilesOnAScan) {
  testing::TempDir dir;
  const std::string box = dir.path() + "/distmgr.box";
  std::mutex mu;
  std::vector<int64_t> seen;
  distmgr::Inbox inbox({.dir = box, .scan_interval = std::chrono::milliseconds(100000)},
                       [&](int64_t dpid) {
                         std::lock_guard<std::mutex> l(mu);
                         seen.push_back(dpid);
                         return absl::OkStatus();
                       });
  ASSERT_TRUE(inbox.Start().ok());
  testing::WriteFile(box + "/12.dpu", "");
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!seen.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  inbox.Stop();
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_THAT(seen, ::testing::ElementsAre(12));
  }
  // A scan leaves a file that is still fresh (maybe being written) alone.
  distmgr::Inbox scanner({.dir = box, .settle = std::chrono::milliseconds(60000)},
                         [&](int64_t) { return absl::OkStatus(); });
  testing::WriteFile(box + "/13.dpu", "");
  EXPECT_EQ(scanner.ScanOnce(true).handled, 0);
  EXPECT_EQ(scanner.ScanOnce(false).handled, 1);
}

// RELIABILITY row 12: a flood of 10,000 files, good and bad, in one scan.
TEST(Inbox, SurvivesAFloodOfTenThousandFiles) {
  testing::TempDir dir;
  const std::string box = dir.path() + "/distmgr.box";
  ASSERT_TRUE(MakeDirs(box + "/bad", 0750).ok());
  int64_t calls = 0;
  distmgr::Inbox inbox({.dir = box}, [&](int64_t dpid) {
    ++calls;
    return dpid % 2 == 0 ? absl::OkStatus() : absl::NotFoundError("unknown DP");
  });
  for (int i = 1; i <= 10000; ++i) {
    testing::WriteFile(box + "/" + (i % 10 == 0 ? "x" : "") + std::to_string(i) + ".dpu", "");
  }
  const auto start = std::chrono::steady_clock::now();
  auto counts = inbox.ScanOnce(false);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  EXPECT_EQ(calls, 9000);
  EXPECT_EQ(counts.handled, 4000);    // even IDs that are not multiples of 10
  EXPECT_EQ(counts.set_aside, 6000);  // 5000 unknown + 1000 malformed names
  EXPECT_EQ(counts.kept, 0);
  std::printf("10,000 .dpu files scanned and handled in %lld ms\n", static_cast<long long>(ms));
}

}  // namespace
}  // namespace dpr
