#include "controller/service/admin_service.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "common/grpc/peer_identity.h"
#include "common/grpc/status_convert.h"
#include "common/log/logging.h"
#include "common/nal/nal_path.h"
#include "common/pki/pki.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "controller/inventory/inventory_json.h"
#include "controller/reassign/job_proto.h"
#include "fmt/format.h"

namespace dpr::controller {

namespace v1 = ::dpreassign::v1;

namespace {

// Cancels the agent's call once the admin's call is cancelled (a client that
// left, its deadline passed): the synchronous API tells only when asked, so
// it is asked a few times a second, and at once when the call ends.
class CancelWhenCallerLeaves {
 public:
  CancelWhenCallerLeaves(grpc::ServerContext* context, AgentClient* agent)
      : thread_([this, context, agent] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!done_) {
            if (context->IsCancelled()) {
              agent->Cancel();
              return;
            }
            cv_.wait_for(lock, std::chrono::milliseconds(200));
          }
        }) {}
  ~CancelWhenCallerLeaves() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  CancelWhenCallerLeaves(const CancelWhenCallerLeaves&) = delete;
  CancelWhenCallerLeaves& operator=(const CancelWhenCallerLeaves&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: it uses the members above
};

void ToProto(const sitedb::DistributionPointRow& d, v1::DistributionPoint* out) {
  out->set_dpid(static_cast<uint32_t>(d.dpid));
  out->set_server_name(d.server);
  out->set_nal_path(d.nal_path);
  out->set_site_code(d.site_code);
  out->set_agent_endpoint(d.agent_endpoint);
  out->set_is_active(d.is_active);
  out->set_packages(static_cast<uint32_t>(d.packages));
}

// A request field quoted in a message: printable, and short.
std::string Excerpt(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02X}", c);
    }
  }
  if (s.size() > 64) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

// A DP argument is echoed into logs and errors: refuse what cannot be a
// DPID or a server name before it gets there.
absl::Status CheckDpArgument(std::string_view dp) {
  int64_t dpid = 0;
  if ((absl::SimpleAtoi(absl::string_view(dp.data(), dp.size()), &dpid) && dpid > 0) ||
      IsHostName(dp)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      fmt::format("'{}' is neither a DPID nor a server name (like DP01.CONTOSO.COM)", Excerpt(dp)));
}

grpc::Status Fail(const absl::Status& st) {
  SPDLOG_WARN("admin request failed: {}", st.ToString());
  return ToGrpcStatus(st);
}

absl::StatusOr<sitedb::DistributionPointRow> Resolve(sitedb::SiteStore& store,
                                                     const std::string& dp) {
  int64_t dpid = 0;
  absl::StatusOr<std::optional<sitedb::DistributionPointRow>> row =
      absl::SimpleAtoi(dp, &dpid) ? store.GetDistributionPoint(dpid)
                                  : store.FindDistributionPoint(dp);
  if (!row.ok()) return row.status();
  if (!row->has_value()) {
    return absl::NotFoundError(
        fmt::format("no distribution point '{}'; 'dpctl dp list' shows the known ones", dp));
  }
  return **row;
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(ControllerConfig config, std::string server_name,
                                   sitedb::SiteStore& store, reassign::JobRunner& runner,
                                   AgentConnector& agents)
    : config_(std::move(config)),
      server_name_(std::move(server_name)),
      store_(store),
      runner_(runner),
      agents_(agents),
      started_unix_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()) {}

grpc::Status AdminServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const v1::GetControllerStatusRequest*,
                                         v1::ControllerStatus* response) {
  response->set_version(DPR_VERSION);
  response->set_server_name(server_name_);
  response->set_data_dir(config_.daemon.data_dir);
  response->set_started_unix_ms(started_unix_ms_);
  response->set_jobs_running(static_cast<uint32_t>(runner_.running()));
  response->set_jobs_queued(static_cast<uint32_t>(runner_.queued()));
  if (auto sites = store_.ListSites(); sites.ok()) {
    for (const auto& s : *sites) response->add_site_codes(s.code);
  }
  if (auto peer = PeerFromAuthContext(*context->auth_context()); peer.ok()) {
    response->set_peer_identity(peer->Describe());
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ImportInventory(grpc::ServerContext*,
                                               const v1::ImportInventoryRequest* request,
                                               v1::ImportInventoryResponse* response) {
  auto inv = ParseInventory(request->json(),
                            request->source_name().empty() ? "inventory" : request->source_name());
  if (!inv.ok()) return Fail(inv.status());
  if (request->dry_run()) {
    response->set_sites(static_cast<uint32_t>(inv->sites.size()));
    response->set_distribution_points(static_cast<uint32_t>(inv->distribution_points.size()));
    response->set_packages(static_cast<uint32_t>(inv->packages.size()));
    return grpc::Status::OK;
  }
  auto counts = store_.ImportInventory(*inv);
  if (!counts.ok()) return Fail(counts.status());
  SPDLOG_INFO("inventory '{}' imported: {} site(s), {} DP(s), {} package(s), {} location(s)",
              request->source_name(), counts->sites, counts->distribution_points, counts->packages,
              counts->package_locations);
  response->set_sites(static_cast<uint32_t>(counts->sites));
  response->set_distribution_points(static_cast<uint32_t>(counts->distribution_points));
  response->set_packages(static_cast<uint32_t>(counts->packages));
  response->set_package_locations(static_cast<uint32_t>(counts->package_locations));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListDistributionPoints(
    grpc::ServerContext*, const v1::ListDistributionPointsRequest* request,
    v1::ListDistributionPointsResponse* response) {
  auto dps = store_.ListDistributionPoints(request->site_code());
  if (!dps.ok()) return Fail(dps.status());
  for (const auto& d : *dps) {
    auto* out = response->add_distribution_points();
    ToProto(d, out);
    if (auto job = store_.FindJobByDpid(d.dpid); job.ok() && job->has_value()) {
      out->set_upgrade_status(static_cast<v1::JobStatus>(static_cast<int>((*job)->status)));
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::GetDistributionPoint(grpc::ServerContext*,
                                                    const v1::GetDistributionPointRequest* request,
                                                    v1::DistributionPointDetail* response) {
  if (auto st = CheckDpArgument(request->dp()); !st.ok()) return Fail(st);
  auto dp = Resolve(store_, request->dp());
  auto job = runner_.FindJob(request->dp());
  if (!dp.ok() && !job.ok()) return Fail(dp.status());
  if (dp.ok()) ToProto(*dp, response->mutable_distribution_point());
  if (job.ok()) {
    reassign::JobToProto(*job, response->mutable_job());
    if (auto pkgs = store_.ListConversionPackages(job->job_id); pkgs.ok()) {
      static constexpr const char* kStates[] = {"legacy", "converting", "converted", "failed"};
      for (const auto& p : *pkgs) {
        auto* out = response->add_packages();
        out->set_package_id(p.package_id);
        out->set_name(p.name);
        out->set_source_version(static_cast<uint32_t>(p.source_version));
        out->set_location(p.location);
        out->set_keep_package_share(p.keep_package_share);
        out->set_state(kStates[static_cast<int>(p.state) & 3]);
        if (!p.last_error.empty()) out->mutable_error()->set_message(p.last_error);
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::StartReassignment(grpc::ServerContext* context,
                                                 const v1::StartReassignmentRequest* request,
                                                 v1::StartReassignmentResponse* response) {
  std::string who = "?";
  if (auto peer = PeerFromAuthContext(*context->auth_context()); peer.ok()) who = peer->Describe();
  if (auto st = CheckDpArgument(request->dp()); !st.ok()) {
    return Fail(absl::InvalidArgumentError(fmt::format("{}: {}", who, st.message())));
  }
  if (!IsValidSiteCode(request->to_site())) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not a site code (three letters or digits)", who,
                    Excerpt(request->to_site()))));
  }
  SPDLOG_INFO("{} asks to reassign '{}' to {}{}", who, request->dp(), request->to_site(),
              request->dry_run() ? " (dry run)" : "");
  auto result = runner_.Reassign(request->dp(), request->to_site(), request->dry_run());
  if (!result.ok()) return Fail(result.status());
  if (result->job.job_id != 0) reassign::JobToProto(result->job, response->mutable_job());
  response->set_existing(result->existing);
  auto* plan = response->mutable_plan();
  plan->set_eligible(true);
  plan->set_bytes_needed(result->bytes_needed);
  plan->set_bytes_free(result->bytes_free);
  plan->set_packages(static_cast<uint32_t>(result->packages));
  for (const auto& step : result->plan) {
    auto* s = plan->add_steps();
    s->set_step(static_cast<uint32_t>(step.step));
    s->set_name(step.name);
    for (const auto& c : step.changes) {
      auto* rc = s->add_changes();
      rc->set_table(c.table);
      rc->set_rows(static_cast<uint32_t>(c.rows));
      rc->set_what(c.what);
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::WatchJob(grpc::ServerContext* context,
                                        const v1::WatchJobRequest* request,
                                        grpc::ServerWriter<v1::JobEvent>* writer) {
  const auto job_id = static_cast<int64_t>(request->job_id());
  // Subscribe before reading history, so nothing falls between the two;
  // durable events seen twice are skipped by seq.
  auto sub = runner_.events().Subscribe(job_id);
  auto job = store_.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  if (!job->has_value()) {
    return Fail(absl::NotFoundError(
        fmt::format("no job {}; 'dpctl job list' shows them", request->job_id())));
  }
  auto history = store_.ListMessages(job_id, static_cast<int64_t>(request->after_seq()));
  if (!history.ok()) return Fail(history.status());
  uint64_t last = request->after_seq();
  v1::JobEvent snapshot;
  snapshot.set_job_id(request->job_id());
  reassign::JobToProto(**job, snapshot.mutable_snapshot());
  snapshot.set_seq(history->empty() ? last : static_cast<uint64_t>(history->back().record_id));
  if (!writer->Write(snapshot)) return grpc::Status::OK;
  for (const auto& m : *history) {
    v1::JobEvent e;
    reassign::MessageToEvent(m, &e);
    if (!writer->Write(e)) return grpc::Status::OK;
    last = e.seq();
  }
  auto ended = [](v1::JobStatus s) {
    return s == v1::JOB_STATUS_COMPLETED || s == v1::JOB_STATUS_FAILED ||
           s == v1::JOB_STATUS_STOPPED;
  };
  if (ended(snapshot.snapshot().status())) {
    v1::JobEvent f;
    f.set_seq(last);
    f.set_job_id(request->job_id());
    f.mutable_finished()->set_status(snapshot.snapshot().status());
    if (snapshot.snapshot().has_last_error()) {
      *f.mutable_finished()->mutable_error() = snapshot.snapshot().last_error();
    }
    writer->Write(f);
    return grpc::Status::OK;
  }
  while (!context->IsCancelled()) {
    v1::JobEvent e;
    if (!sub->Next(&e, 500)) continue;
    if (e.has_message()) {
      if (e.seq() <= last) continue;
      last = e.seq();
    }
    if (!writer->Write(e)) break;
    if (e.has_finished()) break;
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                        v1::ListJobsResponse* response) {
  auto jobs = store_.ListJobs();
  if (!jobs.ok()) return Fail(jobs.status());
  for (const auto& j : *jobs) reassign::JobToProto(j, response->add_jobs());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                      v1::Job* response) {
  auto job = store_.GetJob(static_cast<int64_t>(request->job_id()));
  if (!job.ok()) return Fail(job.status());
  if (!job->has_value()) {
    return Fail(absl::NotFoundError(
        fmt::format("no job {}; 'dpctl job list' shows them", request->job_id())));
  }
  reassign::JobToProto(**job, response);
  if (auto last = store_.LastMessageId(static_cast<int64_t>(request->job_id())); last.ok()) {
    response->set_last_seq(static_cast<uint64_t>(*last));
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::RetryConversion(grpc::ServerContext*,
                                               const v1::RetryConversionRequest* request,
                                               v1::Job* response) {
  if (auto st = CheckDpArgument(request->dp()); !st.ok()) return Fail(st);
  auto job = runner_.RequestConversion(request->dp());
  if (!job.ok()) return Fail(job.status());
  reassign::JobToProto(*job, response);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::VerifyDistributionPoint(
    grpc::ServerContext* context, const v1::VerifyDistributionPointRequest* request,
    v1::VerifyReport* response) {
  auto report = VerifyDp(context, *request, {});
  if (!report.ok()) return Fail(report.status());
  *response = *report;
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::WatchVerifyDistributionPoint(
    grpc::ServerContext* context, const v1::VerifyDistributionPointRequest* request,
    grpc::ServerWriter<v1::VerifyEvent>* writer) {
  // A watcher that left (Ctrl-C) ends the agent's verify too (VerifyDp).
  auto report = VerifyDp(context, *request, [&](const v1::VerifyProgress& p) {
    v1::VerifyEvent e;
    *e.mutable_progress() = p;
    writer->Write(e);  // fails once the watcher left; then the call is cancelled
  });
  if (!report.ok()) return Fail(report.status());
  v1::VerifyEvent last;
  *last.mutable_report() = *std::move(report);
  writer->Write(last);
  return grpc::Status::OK;
}

absl::StatusOr<v1::VerifyReport> AdminServiceImpl::VerifyDp(
    grpc::ServerContext* context, const v1::VerifyDistributionPointRequest& request,
    const std::function<void(const v1::VerifyProgress&)>& on_progress) {
  RETURN_IF_ERROR(CheckDpArgument(request.dp()));
  ASSIGN_OR_RETURN(auto dp, Resolve(store_, request.dp()));
  ASSIGN_OR_RETURN(auto agent, agents_.Connect(dp.agent_endpoint, dp.server));
  CancelWhenCallerLeaves guard(context, agent.get());
  v1::VerifyLibraryRequest req;
  req.set_repair(request.repair());
  auto report = on_progress ? agent->WatchVerify(req, on_progress) : agent->Verify(req);
  // An agent from before repairs ignores the field: say so rather than
  // report a plain verify as if it had tried.
  if (report.ok() && request.repair() && !report->ok() && !report->has_repair()) {
    return absl::FailedPreconditionError(fmt::format(
        "the agent of '{}' did not repair (an older agent?); its verify found {} problem(s)",
        dp.server, report->problems_size()));
  }
  return report;
}

}  // namespace dpr::controller
