// What dp-controller's /metrics shows, collected at scrape time: jobs by
// status (from the site database), steps' durations and conversion totals
// (from the job runner's counters), gRPC calls by code.
#pragma once

#include <string>

#include "common/metrics/metrics_server.h"
#include "controller/reassign/job_runner.h"
#include "controller/reassign/runner_stats.h"
#include "controller/sitedb/site_store.h"

namespace dpr::controller {

MetricFamilies CollectControllerMetrics(sitedb::SiteStore& store, const reassign::JobRunner& runner,
                                        const reassign::RunnerStats& stats,
                                        const CallCounts& calls);

// systemd's STATUS= line: "2 job(s) running, 1 queued; job 1 'DP01...':
// step 8 (...), 120/468 packages".
std::string ControllerStatusLine(sitedb::SiteStore& store, const reassign::JobRunner& runner);

}  // namespace dpr::controller
