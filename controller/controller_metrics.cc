#include "controller/controller_metrics.h"

#include <map>

#include "fmt/format.h"

namespace dpr::controller {
namespace {

using prometheus::MetricType;
using sitedb::JobStatus;

const char* StatusLabel(JobStatus s) {
  switch (s) {
    case JobStatus::kNotStarted:
      return "queued";
    case JobStatus::kRunning:
      return "running";
    case JobStatus::kCompleted:
      return "completed";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

}  // namespace

MetricFamilies CollectControllerMetrics(sitedb::SiteStore& store, const reassign::JobRunner& runner,
                                        const reassign::RunnerStats& stats,
                                        const CallCounts& calls) {
  MetricFamilies out;
  AddCommonMetrics(out, calls);
  // Every status is shown, also at 0, so a query on one never finds nothing.
  std::map<JobStatus, int> by_status = {{JobStatus::kNotStarted, 0},
                                        {JobStatus::kRunning, 0},
                                        {JobStatus::kCompleted, 0},
                                        {JobStatus::kFailed, 0},
                                        {JobStatus::kStopped, 0}};
  auto jobs = store.ListJobs();
  Gauge(out, "dpr_controller_site_database_up", "1 when the site database answered this scrape.",
        jobs.ok() ? 1 : 0);
  if (jobs.ok()) {
    for (const auto& j : *jobs) ++by_status[j.status];
    auto& f = Family(out, "dpr_controller_jobs",
                     "Reassignment jobs in the site database by status.", MetricType::Gauge);
    for (const auto& [status, n] : by_status) Sample(f, n, {{"status", StatusLabel(status)}});
  }
  Gauge(out, "dpr_controller_jobs_waiting_for_slot",
        "Jobs waiting for a slot under max_jobs in this process.", runner.queued());
  auto& steps = Family(out, "dpr_controller_step_duration_seconds",
                       "Time the job runner spent on each of the nine steps since start (step 8 "
                       "from the .dpu handed back to the conversion's end).",
                       MetricType::Summary);
  const auto totals = stats.Steps();
  for (int i = 0; i < reassign::RunnerStats::kSteps; ++i) {
    SummarySample(steps, totals[i].count, totals[i].seconds, {{"step", std::to_string(i + 1)}});
  }
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    Counter(out, name, help, static_cast<double>(v));
  };
  counter("dpr_controller_packages_converted_total",
          "Packages the agents reported converted since start.", stats.packages_converted);
  counter("dpr_controller_packages_failed_total",
          "Packages the agents reported failed since start.", stats.packages_failed);
  counter("dpr_controller_converted_bytes_total", "Bytes of the packages converted since start.",
          stats.bytes_converted);
  counter("dpr_controller_stored_bytes_total",
          "Bytes newly written into the DPs' FileLib since start.", stats.bytes_stored);
  counter("dpr_controller_dedup_saved_bytes_total",
          "Bytes not stored because FileLib held them already (single instance).",
          stats.bytes_deduplicated);
  return out;
}

std::string ControllerStatusLine(sitedb::SiteStore& store, const reassign::JobRunner& runner) {
  std::string line =
      fmt::format("{} job(s) running, {} waiting", runner.running(), runner.queued());
  auto jobs = store.ListJobs();
  if (!jobs.ok()) return line + "; site database unreadable";
  int shown = 0;
  for (const auto& j : *jobs) {
    if (j.status != JobStatus::kRunning || shown++ >= 2) continue;
    line += fmt::format("; job {} '{}': step {} ({}), {}/{} package(s)", j.job_id, j.server, j.step,
                        sitedb::StepName(j.step), j.packages_converted, j.packages_total);
  }
  return line;
}

}  // namespace dpr::controller
