// The job runner over a real SQLite site database and an in-process agent:
// the job limit queues the rest, the .dpu round trip, and a restart resuming
// a queued job.
#include "controller/reassign/job_runner.h"

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "controller/inventory/inventory_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_agent.h"
#include "tests/support/site_fixture.h"
#include "tests/support/test_support.h"

namespace dpr::reassign {
namespace {

namespace v1 = ::dpreassign::v1;

// An agent that can hold AssignSite until released, to keep a job busy.
class HeldAgent final : public testing::FakeAgent {
 public:
  absl::StatusOr<v1::AssignSiteResponse> AssignSite(const v1::AssignSiteRequest&) override {
    std::unique_lock<std::mutex> l(mu);
    ++inside;
    max_inside = std::max(max_inside, inside);
    cv.notify_all();
    cv.wait(l, [&] { return released; });
    --inside;
    return v1::AssignSiteResponse();
  }

  void WaitInside(int n) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return inside >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu);
    released = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  int max_inside = 0;
  bool released = false;
};

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = sitedb::OpenSqliteSiteStore({.path = dir_.path() + "/site.db"});
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    auto inv = controller::ParseInventory(testing::DemoInventory().dump(), "demo");
    ASSERT_TRUE(inv.ok());
    ASSERT_TRUE(store_->ImportInventory(*inv).ok());
    inbox_ = dir_.path() + "/distmgr.box";
    std::filesystem::create_directories(inbox_);
  }
  std::unique_ptr<JobRunner> MakeRunner(int max_jobs) {
    return std::make_unique<JobRunner>(
        *store_, agent_,
        RunnerOptions{.max_jobs = max_jobs, .inbox_dir = inbox_, .controller_identity = "site01"});
  }
  sitedb::JobStatus StatusOf(int64_t job_id) { return (*store_->GetJob(job_id))->status; }

  testing::TempDir dir_;
  std::unique_ptr<sitedb::SiteStore> store_;
  HeldAgent agent_;
  std::string inbox_;
};

TEST_F(JobRunnerTest, TheJobLimitQueuesTheRestAndTheDpuRoundTripCompletesThem) {
  auto runner = MakeRunner(1);
  ASSERT_TRUE(runner->Start().ok());
  auto a = runner->Reassign("DP01.CONTOSO.COM", "P01", false);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = runner->Reassign("5", "P01", false);
  ASSERT_TRUE(b.ok()) << b.status();
  agent_.WaitInside(1);
  EXPECT_EQ(runner->running(), 1);
  EXPECT_EQ(runner->queued(), 1);
  EXPECT_EQ(StatusOf(b->job.job_id), sitedb::JobStatus::kNotStarted);  // queued
  agent_.Release();
  runner->WaitIdle();
  EXPECT_EQ(agent_.max_inside, 1);
  // Both stopped at step 8 with their .dpu dropped: distmgr's turn.
  for (const auto* r : {&*a, &*b}) {
    auto job = *store_->GetJob(r->job.job_id);
    EXPECT_EQ(job->step, 8);
    EXPECT_TRUE(std::filesystem::exists(inbox_ + "/" + std::to_string(job->new_dpid) + ".dpu"));
    ASSERT_TRUE(runner->OnDpu(job->new_dpid).ok());
  }
  runner->WaitIdle();
  EXPECT_EQ(StatusOf(a->job.job_id), sitedb::JobStatus::kCompleted);
  EXPECT_EQ(StatusOf(b->job.job_id), sitedb::JobStatus::kCompleted);
  EXPECT_EQ((*store_->GetJob(a->job.job_id))->packages_converted, 6);
  // Unknown DP: NotFound, which distmgr turns into "set aside".
  EXPECT_EQ(runner->OnDpu(77).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobRunnerTest, RefusesWhenTheDpHasTooLittleSpaceAndMakesNoJob) {
  agent_.needed = uint64_t{5} << 30;
  agent_.free = uint64_t{1} << 30;
  auto runner = MakeRunner(2);
  ASSERT_TRUE(runner->Start().ok());
  auto r = runner->Reassign("DP01.CONTOSO.COM", "P01", false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("needs 5120 MiB, 1024 MiB are free"));
  EXPECT_TRUE(store_->ListJobs()->empty());
}

TEST_F(JobRunnerTest, DryRunPlansWithoutAJob) {
  auto runner = MakeRunner(2);
  ASSERT_TRUE(runner->Start().ok());
  auto r = runner->Reassign("4", "P01", true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->job.job_id, 0);
  ASSERT_EQ(r->plan.size(), 9u);
  EXPECT_EQ(r->plan[6].changes[0].table, "PkgServers");
  EXPECT_EQ(r->plan[6].changes[0].rows, 6);
  EXPECT_TRUE(store_->ListJobs()->empty());
}

TEST_F(JobRunnerTest, ARestartResumesAQueuedJob) {
  int64_t job_id = 0;
  {
    auto runner = MakeRunner(1);
    // Not started: the job is made and queued but no worker runs it.
    auto created = store_->CreateJob(4, "P01", "t");
    ASSERT_TRUE(created.ok());
    job_id = created->job.job_id;
  }
  agent_.Release();
  auto runner = MakeRunner(1);
  ASSERT_TRUE(runner->Start().ok());
  runner->WaitIdle();
  auto job = *store_->GetJob(job_id);
  EXPECT_EQ(job->step, 8);
  EXPECT_EQ(job->status, sitedb::JobStatus::kRunning);
}

}  // namespace
}  // namespace dpr::reassign
