#include "controller/reassign/job_runner.h"

#include <chrono>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fs/durable_file.h"
#include "common/log/logging.h"
#include "common/nal/nal_path.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "controller/reassign/job_proto.h"
#include "fmt/format.h"

namespace dpr::reassign {

namespace v1 = ::dpreassign::v1;

namespace {

constexpr char kComponent[] = "SMS_DISTRIBUTION_MANAGER";

std::shared_ptr<spdlog::logger> Log() { return ComponentLogger(kComponent); }

v1::ImportMode AutoMode() { return v1::IMPORT_MODE_AUTO; }

// What became of a converted package's legacy folder, for its status message.
std::string LegacyNote(const v1::PackageDone& p) {
  if (p.legacy_removed()) return "";
  if (p.legacy_kept().empty()) return "; its package share is kept";
  return "; its legacy folder is kept: " + p.legacy_kept();
}

void FillRef(const sitedb::ConversionPackage& p, v1::PackageRef* ref) {
  ref->set_package_id(p.package_id);
  ref->set_source_version(static_cast<uint32_t>(p.source_version));
  ref->set_location(p.location);
  ref->set_keep_package_share(p.keep_package_share);
  ref->set_name(p.name);
}

}  // namespace

JobRunner::JobRunner(sitedb::SiteStore& store, controller::AgentConnector& agents,
                     RunnerOptions options)
    : store_(store), agents_(agents), options_(std::move(options)) {
  if (options_.max_jobs < 1) options_.max_jobs = 1;
}

JobRunner::~JobRunner() { Stop(); }

std::string JobRunner::Now() const {
  if (options_.now) return options_.now();
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

absl::Status JobRunner::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < options_.max_jobs; ++i) workers_.emplace_back([this] { Worker(); });
  }
  ASSIGN_OR_RETURN(auto jobs, store_.ListJobs());
  int resumed = 0;
  for (const auto& job : jobs) {
    if (job.status == JobStatus::kRunning && job.step == kConversionStep) {
      // The conversion was under way (or its .dpu not yet handled): drop
      // the .dpu again; distmgr picks it up and the agent resumes.
      Log()->info(
          "job {} for '{}' was converting when the controller stopped; requesting "
          "conversion again",
          job.job_id, job.server);
      RETURN_IF_ERROR(DropDpu(job));
      ++resumed;
    } else if (job.status == JobStatus::kRunning || job.status == JobStatus::kNotStarted) {
      Log()->info("resuming job {} for '{}' at step {} ({})", job.job_id, job.server, job.step,
                  sitedb::StepName(job.step));
      Enqueue(job.job_id);
      ++resumed;
    }
  }
  if (resumed > 0) Log()->info("{} unfinished reassignment job(s) resumed", resumed);
  return absl::OkStatus();
}

void JobRunner::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    workers.swap(workers_);
    // A conversion or a library check can run for hours: end it; the job
    // stays Running at step 8 or 9 and resumes when the controller starts
    // again.
    for (auto& [job, agent] : long_calls_) agent->Cancel();
  }
  cv_.notify_all();
  for (auto& t : workers) t.join();
}

void JobRunner::Enqueue(int64_t job_id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (active_.count(job_id)) {
      rerun_.insert(job_id);
      return;
    }
    if (!queued_.insert(job_id).second) return;
    queue_.push_back(job_id);
  }
  cv_.notify_one();
}

bool JobRunner::Stopping() const {
  std::lock_guard<std::mutex> l(mu_);
  return stopping_;
}

int JobRunner::running() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(active_.size());
}

int JobRunner::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(queue_.size());
}

void JobRunner::WaitIdle() {
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait(l, [&] { return queue_.empty() && active_.empty(); });
}

void JobRunner::Worker() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const int64_t job_id = queue_.front();
    queue_.pop_front();
    queued_.erase(job_id);
    active_.insert(job_id);
    l.unlock();
    RunJob(job_id);
    l.lock();
    active_.erase(job_id);
    if (rerun_.erase(job_id) && !stopping_ && queued_.insert(job_id).second) {
      queue_.push_back(job_id);
      cv_.notify_one();
    }
    if (queue_.empty() && active_.empty()) idle_cv_.notify_all();
  }
}

void JobRunner::Message(const sitedb::UpgradeJob& job, int id, char severity, std::string pkg,
                        std::string text) {
  sitedb::StatusMessage m;
  m.job_id = job.job_id;
  m.message_id = id;
  m.severity = severity;
  m.component = kComponent;
  m.time = Now();
  m.dpid = job.new_dpid != 0 && job.step >= kAssignStep ? job.new_dpid : job.dpid;
  m.package_id = std::move(pkg);
  m.text = std::move(text);
  auto level = severity == 'E'   ? spdlog::level::err
               : severity == 'W' ? spdlog::level::warn
                                 : spdlog::level::info;
  Log()->log(level, "[job {} '{}'] {}", job.job_id, job.server, m.text);
  auto record = store_.AddMessage(m);
  if (!record.ok()) {
    Log()->warn("could not record a status message for job {}: {}", job.job_id,
                record.status().ToString());
    return;
  }
  m.record_id = *record;
  v1::JobEvent e;
  MessageToEvent(m, &e);
  {
    std::lock_guard<std::mutex> l(mu_);
    last_seq_[job.job_id] = static_cast<uint64_t>(*record);
  }
  events_.Publish(job.job_id, e);
}

void JobRunner::PublishLive(int64_t job_id, v1::JobEvent event) {
  {
    std::lock_guard<std::mutex> l(mu_);
    event.set_seq(last_seq_[job_id]);
  }
  event.set_job_id(static_cast<uint64_t>(job_id));
  event.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  events_.Publish(job_id, event);
}

void JobRunner::PublishSnapshot(int64_t job_id) {
  auto job = store_.GetJob(job_id);
  if (!job.ok() || !job->has_value()) return;
  v1::JobEvent e;
  JobToProto(**job, e.mutable_snapshot());
  PublishLive(job_id, e);
  const auto status = (*job)->status;
  if (status == JobStatus::kCompleted || status == JobStatus::kFailed ||
      status == JobStatus::kStopped) {
    v1::JobEvent f;
    f.mutable_finished()->set_status(e.snapshot().status());
    if (e.snapshot().has_last_error())
      *f.mutable_finished()->mutable_error() = e.snapshot().last_error();
    PublishLive(job_id, f);
  }
}

void JobRunner::RunJob(int64_t job_id) {
  // Step durations for the metrics: time this runner spent on the step,
  // not time queued or waiting for distmgr to hand the .dpu back.
  auto step_began = std::chrono::steady_clock::now();
  std::optional<bool> conversion_ok;
  std::optional<bool> check_ok;
  std::string error;
  for (;;) {
    auto loaded = store_.GetJob(job_id);
    if (!loaded.ok() || !loaded->has_value()) {
      Log()->error("job {}: cannot read it from the site database: {}", job_id,
                   loaded.ok() ? "absent" : loaded.status().ToString());
      return;
    }
    sitedb::UpgradeJob job = **loaded;
    if (job.status == JobStatus::kNotStarted) {
      if (auto st = store_.MarkJobRunning(job_id, Now()); !st.ok()) {
        Log()->error("job {}: {}", job_id, st.ToString());
        return;
      }
      Message(job, sitedb::kMsgStepStarted, 'I', "",
              fmt::format("reassignment of '{}' from {} to {} started", job.server, job.source_site,
                          job.destination_site));
      continue;
    }
    JobView view;
    view.status = job.status;
    view.step = job.step;
    {
      std::lock_guard<std::mutex> l(mu_);
      view.dpu_dropped = armed_.count(job_id) > 0;
    }
    view.conversion_ok = conversion_ok;
    view.check_ok = check_ok;
    const Action action = NextAction(view);
    absl::Status st;
    switch (action.kind) {
      case ActionKind::kWait:
        return;
      case ActionKind::kAssignAndCommit:
        st = AssignAgent(job);
        if (!st.ok()) break;
        [[fallthrough]];
      case ActionKind::kCommitStep: {
        if (action.step != kConversionStep && action.step != kCheckStep) {
          Message(job, sitedb::kMsgStepStarted, 'I', "",
                  fmt::format("step {}: {}", action.step, sitedb::StepName(action.step)));
        }
        auto changes = store_.CommitStep(job_id, action.step, Now());
        if (!changes.ok()) {
          st = changes.status();
          break;
        }
        if (options_.stats != nullptr) {
          const auto now = std::chrono::steady_clock::now();
          options_.stats->StepDone(action.step,
                                   std::chrono::duration<double>(now - step_began).count());
          step_began = now;
        }
        std::string summary;
        for (const auto& c : *changes) {
          summary += fmt::format("{}{}: {} row(s) ({})", summary.empty() ? "" : "; ", c.table,
                                 c.rows, c.what);
        }
        Message(job, action.step == kCheckStep ? sitedb::kMsgJobCompleted : sitedb::kMsgStepDone,
                'I', "",
                action.step == kCheckStep
                    ? fmt::format("reassignment of '{}' to {} completed: DataLib, FileLib and "
                                  "PkgLib hold all {} package(s)",
                                  job.server, job.destination_site, job.packages_total)
                    : fmt::format("step {} done{}{}", action.step, summary.empty() ? "" : ": ",
                                  summary));
        PublishSnapshot(job_id);
        if (action.step == kConversionStep) {
          conversion_ok.reset();
          std::lock_guard<std::mutex> l(mu_);
          armed_.erase(job_id);
        }
        break;
      }
      case ActionKind::kDropDpu:
        st = DropDpu(job);
        if (st.ok()) return;  // distmgr takes it from here
        break;
      case ActionKind::kConvert: {
        Message(job, sitedb::kMsgStepStarted, 'I', "",
                fmt::format("step 8: {}", sitedb::StepName(kConversionStep)));
        auto ok = Convert(job, &error);
        if (!ok.ok()) {
          st = ok.status();
          break;
        }
        conversion_ok = *ok;
        {
          std::lock_guard<std::mutex> l(mu_);
          armed_.erase(job_id);
        }
        break;
      }
      case ActionKind::kCheckLibrary: {
        Message(job, sitedb::kMsgStepStarted, 'I', "",
                fmt::format("step 9: {}", sitedb::StepName(kCheckStep)));
        auto ok = CheckLibrary(job, &error);
        if (!ok.ok()) {
          st = ok.status();
          break;
        }
        check_ok = *ok;
        break;
      }
      case ActionKind::kFail:
        st = absl::AbortedError(error.empty() ? "the step failed" : error);
        break;
    }
    if (!st.ok() && st.code() == absl::StatusCode::kCancelled && Stopping()) {
      Log()->info(
          "[job {} '{}'] interrupted by shutdown at step {}; it resumes when the "
          "controller starts again",
          job.job_id, job.server, job.step);
      return;
    }
    if (!st.ok()) {
      const std::string text = fmt::format("step {} ({}) failed: {}", job.step,
                                           sitedb::StepName(job.step), st.message());
      Message(
          job, sitedb::kMsgJobFailed, 'E', "",
          text + (job.step >= kConversionStep
                      ? fmt::format("; fix the cause, then drop {}.dpu into the inbox or run "
                                    "'dpctl dp convert {}'",
                                    job.new_dpid, job.server)
                      : fmt::format("; fix the cause, then run 'dpctl reassign {} --to {}' again",
                                    job.server, job.destination_site)));
      if (auto f = store_.MarkJobFailed(job_id, text, Now()); !f.ok()) {
        Log()->error("job {}: cannot record its failure: {}", job_id, f.ToString());
      }
      PublishSnapshot(job_id);
      return;
    }
  }
}

absl::Status JobRunner::DropDpu(const sitedb::UpgradeJob& job) {
  const std::string path = fmt::format("{}/{}.dpu", options_.inbox_dir, job.new_dpid);
  RETURN_IF_ERROR(WriteFileDurably(path, ""));
  Message(job, sitedb::kMsgConversionRequested, 'I', "",
          fmt::format("dropped {}.dpu into the distmgr inbox to convert the legacy package "
                      "folders on '{}'",
                      job.new_dpid, job.server));
  return absl::OkStatus();
}

absl::Status JobRunner::AssignAgent(const sitedb::UpgradeJob& job) {
  ASSIGN_OR_RETURN(auto agent, agents_.Connect(job.agent_endpoint, job.server));
  v1::AssignSiteRequest req;
  req.set_site_code(job.destination_site);
  req.set_controller_identity(options_.controller_identity);
  req.set_dpid(static_cast<uint32_t>(job.new_dpid));
  req.set_nal_path(FormatNalPath(SiteSystemNal(job.server, job.destination_site)));
  ASSIGN_OR_RETURN(auto reply, agent->AssignSite(req));
  Log()->info("[job {} '{}'] agent {} site {} (controller '{}')", job.job_id, job.server,
              reply.changed() ? "assigned to" : "already assigned to", job.destination_site,
              options_.controller_identity);
  if (options_.fault_hook) options_.fault_hook("step6.after_assign");
  return absl::OkStatus();
}

absl::StatusOr<bool> JobRunner::Convert(const sitedb::UpgradeJob& job, std::string* error) {
  ASSIGN_OR_RETURN(auto packages, store_.ListConversionPackages(job.job_id));
  v1::ConvertRequest req;
  req.set_job_id(static_cast<uint64_t>(job.job_id));
  req.set_dpid(static_cast<uint32_t>(job.new_dpid));
  req.set_mode(AutoMode());
  for (const auto& p : packages) FillRef(p, req.add_packages());
  Log()->info("[job {} '{}'] converting {} package(s) on the DP", job.job_id, job.server,
              packages.size());
  absl::Status record_error;
  auto record = [&](absl::Status st) {
    if (!st.ok() && record_error.ok()) record_error = st;
  };
  absl::Status stream;
  for (int attempt = 1; attempt <= options_.convert_attempts; ++attempt) {
    ASSIGN_OR_RETURN(auto agent, agents_.Connect(job.agent_endpoint, job.server));
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return absl::CancelledError("the controller is shutting down");
      long_calls_[job.job_id] = agent;
    }
    stream = agent->Convert(req, [&](const v1::ConvertEvent& e) {
      switch (e.event_case()) {
        case v1::ConvertEvent::kPackageProgress: {
          v1::JobEvent live;
          *live.mutable_package_progress() = e.package_progress();
          PublishLive(job.job_id, live);
          break;
        }
        case v1::ConvertEvent::kPackageStarted: {
          const auto& p = e.package_started();
          v1::JobEvent live;
          *live.mutable_package_started() = p;
          PublishLive(job.job_id, live);
          record(store_.RecordPackageStarted(job.job_id, p.package_id(), Now()));
          Message(
              job, sitedb::kMsgPackageProcessingStarted, 'I', p.package_id(),
              fmt::format("started processing package {} ({} file(s), {} byte(s))", p.package_id(),
                          p.progress().files_total(), p.progress().bytes_total()));
          break;
        }
        case v1::ConvertEvent::kPackageDone: {
          const auto& p = e.package_done();
          if (options_.stats != nullptr && !p.already_done()) {
            ++options_.stats->packages_converted;
            options_.stats->bytes_converted += p.progress().bytes_total();
            options_.stats->bytes_stored += p.bytes_stored();
            options_.stats->bytes_deduplicated += p.bytes_deduplicated();
          }
          v1::JobEvent live;
          *live.mutable_package_done() = p;
          PublishLive(job.job_id, live);
          record(store_.RecordPackageDone(job.job_id, p.package_id(),
                                          static_cast<int64_t>(p.progress().bytes_total()), Now()));
          Message(job, sitedb::kMsgPackageDistributedToDp, 'I', p.package_id(),
                  fmt::format("package {} is in the content library on '{}'{}{}", p.package_id(),
                              job.server, p.already_done() ? " (converted earlier)" : "",
                              LegacyNote(p)));
          break;
        }
        case v1::ConvertEvent::kPackageFailed: {
          const auto& p = e.package_failed();
          if (options_.stats != nullptr) ++options_.stats->packages_failed;
          v1::JobEvent live;
          *live.mutable_package_failed() = p;
          PublishLive(job.job_id, live);
          std::string why = p.error().message();
          if (!p.error().cause().empty()) why += ": " + p.error().cause();
          record(store_.RecordPackageFailed(job.job_id, p.package_id(), why, Now()));
          Message(job, sitedb::kMsgPackageProcessed, 'E', p.package_id(),
                  fmt::format("failed to convert content of package {}: {}", p.package_id(), why));
          break;
        }
        default:
          break;
      }
    });
    {
      std::lock_guard<std::mutex> l(mu_);
      long_calls_.erase(job.job_id);
      if (stopping_) return absl::CancelledError("the controller is shutting down");
    }
    if (stream.ok() || (stream.code() != absl::StatusCode::kUnavailable &&
                        stream.code() != absl::StatusCode::kDeadlineExceeded)) {
      break;
    }
    if (attempt < options_.convert_attempts) {
      const int wait_ms = options_.retry_backoff_ms << (attempt - 1);
      Log()->warn("[job {} '{}'] conversion stream broke ({}); retrying in {} ms ({} of {})",
                  job.job_id, job.server, stream.message(), wait_ms, attempt + 1,
                  options_.convert_attempts);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
  }
  RETURN_IF_ERROR(record_error);
  if (!stream.ok()) {
    *error = fmt::format("Failed to convert content: {}", stream.message());
    return false;
  }
  ASSIGN_OR_RETURN(packages, store_.ListConversionPackages(job.job_id));
  int failed = 0;
  std::string first;
  for (const auto& p : packages) {
    if (p.state != sitedb::PackageState::kConverted) {
      if (++failed == 1) {
        first = fmt::format("{}: {}", p.package_id,
                            p.last_error.empty() ? "not reported by the agent" : p.last_error);
      }
    }
  }
  if (failed > 0) {
    *error = fmt::format("Failed to convert content: {} of {} package(s) not converted (first: {})",
                         failed, packages.size(), first);
    return false;
  }
  return true;
}

absl::StatusOr<bool> JobRunner::CheckLibrary(const sitedb::UpgradeJob& job, std::string* error) {
  ASSIGN_OR_RETURN(auto packages, store_.ListConversionPackages(job.job_id));
  ASSIGN_OR_RETURN(auto agent, agents_.Connect(job.agent_endpoint, job.server));
  v1::VerifyLibraryRequest req;
  for (const auto& p : packages) req.add_package_ids(p.package_id);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return absl::CancelledError("the controller is shutting down");
    long_calls_[job.job_id] = agent;
  }
  // The agent re-hashes its whole library: watchers see how far it is.
  auto checked = agent->WatchVerify(req, [&](const v1::VerifyProgress& p) {
    v1::JobEvent live;
    *live.mutable_verify_progress() = p;
    PublishLive(job.job_id, live);
  });
  {
    std::lock_guard<std::mutex> l(mu_);
    long_calls_.erase(job.job_id);
    if (stopping_) return absl::CancelledError("the controller is shutting down");
  }
  ASSIGN_OR_RETURN(auto report, std::move(checked));
  std::vector<std::string> missing;
  if (!report.has_datalib()) missing.push_back("DataLib");
  if (!report.has_filelib()) missing.push_back("FileLib");
  if (!report.has_pkglib()) missing.push_back("PkgLib");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    *error = fmt::format("the content library on '{}' lacks {}; see smsdpprov.log on the DP",
                         job.server, list);
    return false;
  }
  if (!report.ok() || report.packages_checked() < packages.size()) {
    std::string first =
        report.problems_size() > 0
            ? fmt::format("{} {}", report.problems(0).path(), report.problems(0).detail())
            : fmt::format("{} of {} package(s) checked", report.packages_checked(),
                          packages.size());
    *error = fmt::format("the content library on '{}' failed its check ({} problem(s); first: {})",
                         job.server, report.problems_size(), first);
    return false;
  }
  return true;
}

absl::StatusOr<sitedb::UpgradeJob> JobRunner::FindJob(const std::string& dp) {
  int64_t dpid = 0;
  if (absl::SimpleAtoi(dp, &dpid)) {
    ASSIGN_OR_RETURN(auto job, store_.FindJobByDpid(dpid));
    if (job) return *job;
    return absl::NotFoundError(fmt::format("no reassignment job for DPID {}", dpid));
  }
  ASSIGN_OR_RETURN(auto jobs, store_.ListJobs());
  for (const auto& j : jobs) {
    if (SameServer(j.server, dp)) return j;
  }
  return absl::NotFoundError(fmt::format("no reassignment job for '{}'", dp));
}

absl::StatusOr<ReassignResult> JobRunner::Reassign(const std::string& dp,
                                                   const std::string& to_site, bool dry_run) {
  ReassignResult result;
  result.dry_run = dry_run;
  if (auto job = FindJob(dp); job.ok()) {
    if (job->destination_site != to_site) {
      return absl::FailedPreconditionError(
          fmt::format("'{}' already has reassignment job {} to site {}", job->server, job->job_id,
                      job->destination_site));
    }
    result.job = *job;
    result.existing = true;
    if (dry_run) return result;
    RetryDecision retry = DecideReassignRetry(*job);
    if (!retry.allowed) {
      if (!retry.reason.empty() && job->status != JobStatus::kCompleted) {
        return absl::FailedPreconditionError(retry.reason);
      }
      return result;
    }
    if (job->step == kConversionStep || job->step == kCheckStep) {
      ASSIGN_OR_RETURN(result.job, RequestConversion(std::to_string(job->new_dpid)));
      return result;
    }
    RETURN_IF_ERROR(store_.MarkJobRunning(job->job_id, Now()));
    Message(*job, sitedb::kMsgStepStarted, 'I', "",
            fmt::format("reassignment retried at step {} ({})", job->step,
                        sitedb::StepName(job->step)));
    Enqueue(job->job_id);
    ASSIGN_OR_RETURN(auto again, store_.GetJob(job->job_id));
    if (again) result.job = *again;
    return result;
  }

  std::optional<sitedb::DistributionPointRow> row;
  int64_t dpid = 0;
  if (absl::SimpleAtoi(dp, &dpid)) {
    ASSIGN_OR_RETURN(row, store_.GetDistributionPoint(dpid));
  } else {
    ASSIGN_OR_RETURN(row, store_.FindDistributionPoint(dp));
  }
  // A concurrent request may have made the job (and its step 1 removed the
  // DP's row) since the lookup above: then this request gets that job.
  auto concurrent = [&](absl::Status refusal) -> absl::StatusOr<ReassignResult> {
    if (auto job = FindJob(dp); job.ok() && job->destination_site == to_site) {
      result.job = *job;
      result.existing = true;
      return result;
    }
    return refusal;
  };
  if (!row) {
    return concurrent(absl::NotFoundError(fmt::format(
        "no distribution point '{}' in the site database; 'dpctl dp list' shows the known ones",
        dp)));
  }
  ASSIGN_OR_RETURN(auto facts, store_.GetDpFacts(row->dpid, to_site));
  Eligibility elig = CheckEligibility(facts, to_site);
  if (!elig.eligible) {
    return concurrent(absl::FailedPreconditionError(
        fmt::format("'{}' cannot be reassigned to {}: {}", row->server, to_site, elig.reason)));
  }

  // Free space, from the agent's own preflight over the DP's packages.
  ASSIGN_OR_RETURN(auto agent, agents_.Connect(row->agent_endpoint, row->server));
  v1::PreflightRequest preq;
  preq.set_mode(AutoMode());
  auto packages = store_.ListDpPackages(row->dpid);
  if (!packages.ok()) return concurrent(packages.status());
  for (const auto& p : *packages) FillRef(p, preq.add_packages());
  auto preflight = agent->Preflight(preq);
  if (!preflight.ok()) {
    const bool down = preflight.status().code() == absl::StatusCode::kUnavailable;
    return absl::Status(
        preflight.status().code(),
        fmt::format("cannot ask the agent of '{}' for its free space: {}{}", row->server,
                    preflight.status().message(), down ? "; is dp-agent running there?" : ""));
  }
  if (!preflight->ok() && preflight->has_refusal()) {
    return absl::FailedPreconditionError(
        fmt::format("'{}' cannot be reassigned: {}", row->server, preflight->refusal().message()));
  }
  result.bytes_needed = preflight->bytes_needed();
  result.bytes_free = preflight->bytes_free();
  result.packages = facts.packages;
  Eligibility space = CheckSpace(result.bytes_needed, result.bytes_free, row->server);
  if (!space.eligible) return absl::ResourceExhaustedError(space.reason);

  if (dry_run) {
    for (int step = kFirstStep; step <= kLastStep; ++step) {
      ASSIGN_OR_RETURN(auto changes, store_.PlanStep(row->dpid, to_site, step));
      result.plan.push_back({step, std::string(sitedb::StepName(step)), std::move(changes)});
    }
    return result;
  }
  ASSIGN_OR_RETURN(auto created, store_.CreateJob(row->dpid, to_site, Now()));
  result.job = created.job;
  result.existing = !created.created;
  if (created.created) {
    Message(created.job, sitedb::kMsgStepStarted, 'I', "",
            fmt::format("reassignment of '{}' (DPID {}) to site {} queued: {} package(s), {} "
                        "byte(s) to convert",
                        created.job.server, created.job.dpid, to_site, created.job.packages_total,
                        created.job.bytes_total));
    Enqueue(created.job.job_id);
  }
  return result;
}

absl::StatusOr<sitedb::UpgradeJob> JobRunner::OnDpu(int64_t dpid) {
  ASSIGN_OR_RETURN(auto job, store_.FindJobByDpid(dpid));
  if (!job) {
    return absl::NotFoundError(fmt::format(
        "DPID {} has no reassignment job (select * from DistributionPoints shows the DP IDs; "
        "a .dpu retries conversion of a DP that has been reassigned)",
        dpid));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (active_.count(job->job_id) && armed_.count(job->job_id)) {
      Log()->info("[job {} '{}'] conversion already under way; .dpu noted", job->job_id,
                  job->server);
      return *job;
    }
  }
  ASSIGN_OR_RETURN(auto updated, store_.RequestConversion(job->job_id, Now()));
  {
    std::lock_guard<std::mutex> l(mu_);
    armed_.insert(job->job_id);
  }
  Message(updated, sitedb::kMsgConversionRequested, 'I', "",
          fmt::format("DP upgrade notification {}.dpu received: converting the legacy package "
                      "folders on '{}'",
                      dpid, updated.server));
  Enqueue(updated.job_id);
  return updated;
}

absl::StatusOr<sitedb::UpgradeJob> JobRunner::RequestConversion(const std::string& dp) {
  ASSIGN_OR_RETURN(auto job, FindJob(dp));
  if (job.step < kConversionStep) {
    return absl::FailedPreconditionError(
        fmt::format("'{}' has not reached conversion (job {} is at step {}: {})", job.server,
                    job.job_id, job.step, sitedb::StepName(job.step)));
  }
  RETURN_IF_ERROR(DropDpu(job));
  return job;
}

}  // namespace dpr::reassign
