// What dp-agent's /metrics and systemd STATUS= line show, read at scrape
// time from the service's AgentActivity.
#pragma once

#include <string>

#include "agent/assignment.h"
#include "agent/service/agent_activity.h"
#include "common/metrics/metrics_server.h"

namespace dpr::agent {

MetricFamilies CollectAgentMetrics(const AgentActivity& activity, const CallCounts& calls,
                                   const std::string& content_root);

// "converting for job 3: 120/468 package(s), 41.2 MiB/s" or "idle; assigned
// to site P01 as DPID 5".
std::string AgentStatusLine(const AgentActivity& activity, const AssignmentStore& assignment);

}  // namespace dpr::agent
