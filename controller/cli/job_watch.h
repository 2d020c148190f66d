// Following a job's events from dpctl (reassign, job watch).
#pragma once

#include <cstdint>
#include <string>

#include "controller/cli/cli_context.h"
#include "dpreassign/v1/admin.grpc.pb.h"

namespace dpr::cli {

// Streams job `job_id` after event `after_seq` until it ends (exit 0 when
// Completed, 1 when Failed) or the user presses Ctrl-C (exit 0, detached).
int WatchJob(dpreassign::v1::AdminService::Stub& stub, const std::string& controller,
             uint64_t job_id, uint64_t after_seq, OutputFormat format);

// The last event seen per controller and job, under $XDG_CACHE_HOME/dpctl.
uint64_t LoadLastSeq(const std::string& controller, uint64_t job_id);
void SaveLastSeq(const std::string& controller, uint64_t job_id, uint64_t seq);

}  // namespace dpr::cli
