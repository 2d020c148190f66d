// RELIABILITY row 6 for the controller's job state: power loss at every
// write and sync SQLite makes while a reassignment runs (through the
// "dpr-crash" VFS, which keeps unsynced data only in memory and drops it at
// the crash). After each, the database is reopened normally, the admin asks
// for the reassignment again, distmgr hands back the .dpu, and the site
// database must end exactly as after an uninterrupted run.
// Every crash point runs by default; DPR_POWER_LOSS_STRIDE=n tries every
// n-th one.
#include <cstdlib>
#include <filesystem>
#include <map>

#include "controller/inventory/inventory_json.h"
#include "controller/reassign/job_runner.h"
#include "gtest/gtest.h"
#include "tests/support/crash_vfs.h"
#include "tests/support/db_dump.h"
#include "tests/support/fake_agent.h"
#include "tests/support/site_fixture.h"
#include "tests/support/test_support.h"

namespace dpr::reassign {
namespace {

namespace v1 = ::dpreassign::v1;

class SiteDbPowerLossTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::crash_vfs::Register(); }

  std::unique_ptr<sitedb::SiteStore> Open(const std::string& dir, bool crash_vfs) {
    auto store = sitedb::OpenSqliteSiteStore(
        {.path = dir + "/site.db", .vfs = crash_vfs ? testing::crash_vfs::kName : ""});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // What an admin and distmgr do: ask for the reassignment (again), let the
  // runner work, hand the .dpu back. Errors are expected once crashed.
  // Returns the durable events the runner published (seq -> text): each
  // was committed before it was published, so each must survive.
  std::map<uint64_t, std::string> Drive(sitedb::SiteStore& store, const std::string& dir) {
    std::map<uint64_t, std::string> published;
    std::filesystem::create_directories(dir + "/distmgr.box");
    JobRunner runner(
        store, agent_,
        {.max_jobs = 2, .inbox_dir = dir + "/distmgr.box", .controller_identity = "site01"});
    auto sub = runner.events().Subscribe(1);  // a fresh site's first job
    Run(runner, store);
    v1::JobEvent e;
    while (sub->Next(&e, 0)) {
      if (e.has_message()) published[e.seq()] = e.message().text();
    }
    return published;
  }

  void Run(JobRunner& runner, sitedb::SiteStore& store) {
    if (!runner.Start().ok()) return;
    auto r = runner.Reassign("DP01.CONTOSO.COM", "P01", false);
    if (!r.ok()) return;
    runner.WaitIdle();
    auto job = store.GetJob(r->job.job_id);
    if (job.ok() && job->has_value() && (*job)->step == 8 &&
        (*job)->status == sitedb::JobStatus::kRunning) {
      if (runner.OnDpu((*job)->new_dpid).ok()) runner.WaitIdle();
    }
    runner.Stop();
  }

  // The StatusMessages rows of job 1: RecordID -> Text.
  std::map<uint64_t, std::string> Messages(sitedb::SiteStore& store) {
    std::map<uint64_t, std::string> out;
    auto rows = store.ListMessages(1, 0);
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (const auto& m : *rows) out[static_cast<uint64_t>(m.record_id)] = m.text;
    }
    return out;
  }

  // A fresh site database with the demo inventory, made without crashes.
  std::string NewSite(const testing::TempDir& t) {
    testing::crash_vfs::Reset();
    auto store = Open(t.path(), true);
    auto inv = controller::ParseInventory(testing::DemoInventory().dump(), "demo");
    EXPECT_TRUE(inv.ok());
    EXPECT_TRUE(store->ImportInventory(*inv).ok());
    return t.path();
  }

  testing::FakeAgent agent_;
};

TEST_F(SiteDbPowerLossTest, EveryCrashPointEndsAsAnUninterruptedRun) {
  std::string reference;
  int64_t total = 0;
  {
    testing::TempDir t;
    const std::string dir = NewSite(t);
    auto store = Open(dir, true);
    testing::crash_vfs::CrashAfter(-1);
    Drive(*store, dir);
    total = testing::crash_vfs::Mutations();
    auto job = store->GetJob(1);
    ASSERT_TRUE(job.ok() && job->has_value());
    ASSERT_EQ((*job)->status, sitedb::JobStatus::kCompleted);
    store.reset();
    reference = testing::DumpSiteDb(dir + "/site.db");
  }
  ASSERT_GT(total, 20);
  const char* stride_env = std::getenv("DPR_POWER_LOSS_STRIDE");
  const int64_t stride = stride_env != nullptr ? std::max(1, std::atoi(stride_env)) : 1;
  int64_t tried = 0, crashed = 0, lost = 0;
  for (int64_t k = 0; k < total; k += stride) {
    SCOPED_TRACE("power loss after " + std::to_string(k) + " of " + std::to_string(total) +
                 " writes and syncs");
    testing::TempDir t;
    const std::string dir = NewSite(t);
    std::map<uint64_t, std::string> acknowledged;
    {
      auto store = Open(dir, true);
      testing::crash_vfs::CrashAfter(k);
      acknowledged = Drive(*store, dir);
      if (testing::crash_vfs::Crashed()) ++crashed;
    }  // the crashed connection closes; its writes fail
    testing::crash_vfs::PowerLoss();
    {
      auto store = Open(dir, false);
      ASSERT_NE(store, nullptr);
      // Nothing published before the power went is lost.
      const auto survived = Messages(*store);
      for (const auto& [seq, text] : acknowledged) {
        auto it = survived.find(seq);
        if (it == survived.end() || it->second != text) {
          ++lost;
          ADD_FAILURE() << "message " << seq << " was published but is gone: " << text;
        }
      }
      Drive(*store, dir);
      auto job = store->FindJobByDpid(4);
      ASSERT_TRUE(job.ok() && job->has_value());
      EXPECT_EQ((*job)->status, sitedb::JobStatus::kCompleted);
    }
    EXPECT_EQ(testing::DumpSiteDb(dir + "/site.db"), reference);
    ++tried;
    if (HasFailure()) break;
  }
  std::printf(
      "site database: power loss at %lld of %lld crash points (%lld crashed mid-run); "
      "published messages lost: %lld; every run ended as the uninterrupted one\n",
      static_cast<long long>(tried), static_cast<long long>(total), static_cast<long long>(crashed),
      static_cast<long long>(lost));
}

}  // namespace
}  // namespace dpr::reassign
