// Runs reassignment jobs: carries out what the step machine decides, one
// persisted step at a time, at most `max_jobs` at once (the real
// DPUpgradeThreadLimit); the rest queue. Step 8 goes through distmgr's inbox:
// the runner drops <DPID>.dpu, distmgr hands it back through OnDpu, and the
// conversion runs; a .dpu dropped by hand retries it the same way.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/agent_client/agent_client.h"
#include "controller/reassign/job_events.h"
#include "controller/reassign/runner_stats.h"
#include "controller/reassign/step_machine.h"
#include "controller/sitedb/site_store.h"

namespace dpr::reassign {

struct RunnerOptions {
  int max_jobs = 50;
  std::string inbox_dir;             // distmgr.box
  std::string controller_identity;   // told to the agent in step 6
  std::function<std::string()> now;  // timestamps; default: UTC now
  sitedb::FaultHook fault_hook;      // test-only kill points
  int convert_attempts = 3;          // a broken stream is retried this often, with backoff
  int retry_backoff_ms = 1000;
  RunnerStats* stats = nullptr;  // step durations and conversion totals, if set
};

struct PlannedStep {
  int step = 0;
  std::string name;
  std::vector<sitedb::RowChange> changes;
};

struct ReassignResult {
  sitedb::UpgradeJob job;  // unset (job_id 0) for a dry run
  bool existing = false;   // the DP already had this job
  bool dry_run = false;
  std::vector<PlannedStep> plan;
  uint64_t bytes_needed = 0;
  uint64_t bytes_free = 0;
  int64_t packages = 0;
};

class JobRunner {
 public:
  JobRunner(sitedb::SiteStore& store, controller::AgentConnector& agents, RunnerOptions options);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Starts the workers and resumes every unfinished job at its cursor.
  absl::Status Start();
  void Stop();

  // `dpctl reassign DP --to SITE`. DP is a server name or DPID. Checks
  // eligibility and free space before making the job; a second request
  // for the same DP returns the job it has (restarting it if it failed).
  absl::StatusOr<ReassignResult> Reassign(const std::string& dp, const std::string& to_site,
                                          bool dry_run);
  // distmgr found <dpid>.dpu: (re)start that DP's conversion. NotFound for
  // an unknown DP, FailedPrecondition when its job cannot convert yet.
  absl::StatusOr<sitedb::UpgradeJob> OnDpu(int64_t dpid);
  // `dpctl dp convert`: drops the DP's .dpu, as an admin would by hand.
  absl::StatusOr<sitedb::UpgradeJob> RequestConversion(const std::string& dp);
  // The DP's job, by server name or either DPID.
  absl::StatusOr<sitedb::UpgradeJob> FindJob(const std::string& dp);

  // Live events for watchers (WatchJob).
  JobEvents& events() { return events_; }

  int running() const;
  int queued() const;
  // Blocks until no job is running or queued (tests, shutdown).
  void WaitIdle();

 private:
  void Enqueue(int64_t job_id);
  bool Stopping() const;
  void Worker();
  void RunJob(int64_t job_id);
  absl::Status DropDpu(const sitedb::UpgradeJob& job);
  absl::Status AssignAgent(const sitedb::UpgradeJob& job);
  absl::StatusOr<bool> Convert(const sitedb::UpgradeJob& job, std::string* error);
  absl::StatusOr<bool> CheckLibrary(const sitedb::UpgradeJob& job, std::string* error);
  void Message(const sitedb::UpgradeJob& job, int id, char severity, std::string pkg,
               std::string text);
  std::string Now() const;
  // Publishes the job as it stands now (ephemeral) and, when it has ended,
  // a JobFinished event.
  void PublishSnapshot(int64_t job_id);
  // An ephemeral event (agent progress) stamped with the newest durable seq.
  void PublishLive(int64_t job_id, dpreassign::v1::JobEvent event);

  sitedb::SiteStore& store_;
  controller::AgentConnector& agents_;
  RunnerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<int64_t> queue_;
  std::set<int64_t> queued_;
  std::set<int64_t> active_;
  std::set<int64_t> rerun_;  // asked for again while running: run again after
  std::set<int64_t> armed_;  // its .dpu has been handled: convert next
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::map<int64_t, uint64_t> last_seq_;  // newest durable seq per job
  // Agents converting or checking their library now (calls that can run
  // for hours), so Stop() can end them.
  std::map<int64_t, std::shared_ptr<controller::AgentClient>> long_calls_;
  JobEvents events_;
};

}  // namespace dpr::reassign
