#include "agent/service/agent_service.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <thread>

#include "agent/contentlib/content_library.h"
#include "agent/contentlib/file_system.h"
#include "agent/importer/preflight.h"
#include "agent/importer/repair.h"
#include "common/grpc/peer_identity.h"
#include "common/grpc/status_convert.h"
#include "common/log/logging.h"
#include "common/nal/nal_path.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::agent {
namespace {

namespace v1 = ::dpreassign::v1;

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<spdlog::logger> Log() { return ComponentLogger("SMS_DP_PROVIDER"); }

importer::ImportMode ModeFrom(v1::ImportMode m) {
  switch (m) {
    case v1::IMPORT_MODE_COPY:
      return importer::ImportMode::kCopy;
    case v1::IMPORT_MODE_LINK:
      return importer::ImportMode::kLink;
    default:
      return importer::ImportMode::kAuto;
  }
}

v1::ImportMode ModeTo(importer::ImportMode m) {
  switch (m) {
    case importer::ImportMode::kCopy:
      return v1::IMPORT_MODE_COPY;
    case importer::ImportMode::kLink:
      return v1::IMPORT_MODE_LINK;
    default:
      return v1::IMPORT_MODE_AUTO;
  }
}

void SetError(const absl::Status& st, v1::Error* out) {
  out->set_code(static_cast<int32_t>(st.code()));
  out->set_message(std::string(st.message()));
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

}  // namespace

AgentServiceImpl::AgentServiceImpl(AgentConfig config, std::string server_name,
                                   AssignmentStore& assignment)
    : config_(std::move(config)),
      server_name_(std::move(server_name)),
      assignment_(assignment),
      started_unix_ms_(NowUnixMs()) {
  if (const char* delay = std::getenv("DPR_TEST_AGENT_PACKAGE_DELAY_MS")) {
    test_package_delay_ms_ = std::atoi(delay);
    SPDLOG_WARN("test hook: {} ms pause after each converted package", test_package_delay_ms_);
  }
  if (const char* delay = std::getenv("DPR_TEST_AGENT_VERIFY_DELAY_MS")) {
    test_verify_delay_ms_ = std::atoi(delay);
    if (test_verify_delay_ms_ > 0) {
      SPDLOG_WARN("test hook: {} ms pause before each verify", test_verify_delay_ms_);
    }
  }
}

grpc::Status AgentServiceImpl::CheckCaller(grpc::ServerContext* context, const char* method,
                                           bool allow_unassigned) {
  auto peer = PeerFromAuthContext(*context->auth_context());
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  auto assigned = assignment_.Get();
  if (!assigned) {
    if (allow_unassigned) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        fmt::format("{}: this DP is not assigned to a site yet (step 6 of the "
                                    "reassignment assigns it)",
                                    method));
  }
  if (peer->common_name != assigned->controller_identity) {
    Log()->warn("{} refused: {} is not '{}', the controller this DP is assigned to", method,
                peer->Describe(), assigned->controller_identity);
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        fmt::format("{}: this DP obeys only controller '{}' (site {}); you are {}", method,
                    assigned->controller_identity, assigned->site_code, peer->Describe()));
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::string> AgentServiceImpl::ResolveLocation(const std::string& package_id,
                                                              const std::string& location) const {
  if (config_.legacy_root.empty()) {
    return absl::FailedPreconditionError(
        "this agent has no legacy root (give --legacy-root or legacy_root in its config)");
  }
  auto parts = SplitShareRelativePath(location);
  if (!parts.ok()) {
    return absl::InvalidArgumentError(fmt::format("package '{}': location '{}' {}; refused",
                                                  package_id, location, parts.status().message()));
  }
  std::string rel;
  for (const auto& part : *parts) rel += "/" + part;
  const std::string path = config_.legacy_root + rel;
  // A symlink in the path must not lead outside the legacy root.
  const std::string real = RealPath(path);
  const std::string root = RealPath(config_.legacy_root);
  if (!real.empty() && (root.empty() || real.compare(0, root.size() + 1, root + "/") != 0)) {
    return absl::InvalidArgumentError(
        fmt::format("package '{}': location '{}' leads outside the legacy root '{}'; refused",
                    package_id, location, config_.legacy_root));
  }
  return path;
}

absl::StatusOr<std::vector<importer::PackageSpec>> AgentServiceImpl::Specs(
    const google::protobuf::RepeatedPtrField<v1::PackageRef>& refs) const {
  std::vector<importer::PackageSpec> specs;
  for (const auto& r : refs) {
    auto path = ResolveLocation(r.package_id(), r.location());
    if (!path.ok()) return path.status();
    specs.push_back(
        {r.package_id(), std::max<uint32_t>(1, r.source_version()), *path, r.keep_package_share()});
  }
  return specs;
}

void AgentServiceImpl::FillStatus(v1::AgentStatus* response) const {
  response->set_server_name(server_name_);
  response->set_version(DPR_VERSION);
  response->set_content_root(config_.content_root);
  const std::string lib = config_.content_root + "/SCCMContentLib";
  response->set_has_datalib(IsDir(lib + "/DataLib"));
  response->set_has_filelib(IsDir(lib + "/FileLib"));
  response->set_has_pkglib(IsDir(lib + "/PkgLib"));
  struct statvfs vfs {};
  if (::statvfs(config_.content_root.c_str(), &vfs) == 0) {
    response->set_free_bytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
    response->set_total_bytes(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
  }
  response->set_started_unix_ms(started_unix_ms_);
  response->set_converting(activity_.converting.load());
  if (auto a = assignment_.Get()) {
    response->set_assigned(true);
    response->set_site_code(a->site_code);
    response->set_controller_identity(a->controller_identity);
    response->set_dpid(a->dpid);
    response->set_nal_path(a->nal_path);
  }
}

grpc::Status AgentServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const v1::GetAgentStatusRequest*,
                                         v1::AgentStatus* response) {
  FillStatus(response);
  if (auto peer = PeerFromAuthContext(*context->auth_context()); peer.ok()) {
    response->set_peer_identity(peer->Describe());
  }
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::Preflight(grpc::ServerContext* context,
                                         const v1::PreflightRequest* request,
                                         v1::PreflightReport* response) {
  if (auto st = CheckCaller(context, "Preflight", true); !st.ok()) return st;
  auto specs = Specs(request->packages());
  if (!specs.ok()) return ToGrpcStatus(specs.status());
  auto report = importer::Preflight(PosixFileSystem(), config_.content_root, *specs,
                                    ModeFrom(request->mode()));
  if (!report.ok()) return ToGrpcStatus(report.status());
  response->set_ok(report->ok);
  if (!report->refusal.ok()) SetError(report->refusal, response->mutable_refusal());
  response->set_same_filesystem(report->same_filesystem);
  response->set_effective_mode(ModeTo(report->effective_mode));
  response->set_files_total(report->files_total);
  response->set_bytes_total(report->bytes_total);
  response->set_bytes_unique(report->bytes_unique);
  response->set_bytes_duplicate(report->bytes_duplicate);
  response->set_bytes_needed(report->bytes_needed);
  response->set_bytes_free(report->bytes_free);
  response->set_largest_package_bytes(report->largest_package_bytes);
  response->set_no_sms_on_drive(report->no_sms_on_drive);
  for (const auto& p : report->packages) {
    auto* out = response->add_packages();
    out->set_package_id(p.package_id);
    out->set_found(p.found);
    out->set_files(p.files);
    out->set_bytes(p.bytes);
    if (!p.error.ok()) SetError(p.error, out->mutable_error());
  }
  Log()->info("preflight of {} package(s): {} byte(s) needed, {} free{}", specs->size(),
              report->bytes_needed, report->bytes_free,
              report->ok ? "" : fmt::format(" - refused: {}", report->refusal.message()));
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::AssignSite(grpc::ServerContext* context,
                                          const v1::AssignSiteRequest* request,
                                          v1::AssignSiteResponse* response) {
  auto peer = PeerFromAuthContext(*context->auth_context());
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  // The identity obeyed from now on is the caller's own, proven by its
  // certificate; a request naming someone else is refused.
  if (request->controller_identity() != peer->common_name) {
    const std::string why =
        fmt::format("AssignSite: the request names controller '{}' but the caller is {}",
                    request->controller_identity().substr(0, 256), peer->Describe());
    Log()->warn("{}; refused", why);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
  }
  auto changed = assignment_.Assign(
      {request->site_code(), request->controller_identity(), request->dpid(), request->nal_path()});
  if (!changed.ok()) {
    Log()->warn("AssignSite refused: {}", changed.status().message());
    return ToGrpcStatus(changed.status());
  }
  Log()->info("{} to site {} as DPID {} under controller '{}'",
              *changed ? "assigned" : "already assigned", request->site_code(), request->dpid(),
              request->controller_identity());
  response->set_changed(*changed);
  FillStatus(response->mutable_status());
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::ConvertContent(grpc::ServerContext* context,
                                              const v1::ConvertRequest* request,
                                              grpc::ServerWriter<v1::ConvertEvent>* writer) {
  if (auto st = CheckCaller(context, "ConvertContent", false); !st.ok()) return st;
  // Its own controller, but the request is for another DP (a mixed-up
  // inventory, or a replay of another DP's request): refuse it whole.
  if (auto a = assignment_.Get(); a && request->dpid() != a->dpid) {
    const std::string why = fmt::format(
        "ConvertContent: the request is for DPID {} but this DP ('{}') is DPID {} in site {}",
        request->dpid(), server_name_, a->dpid, a->site_code);
    Log()->warn("{}; refused", why);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
  }
  auto specs = Specs(request->packages());
  if (!specs.ok()) {
    Log()->warn("ConvertContent for job {} refused: {}", request->job_id(),
                specs.status().message());
    return ToGrpcStatus(specs.status());
  }
  // One conversion at a time. A second request (a restarted controller
  // whose first stream this agent is still serving) waits for the running
  // one and then reports its packages as already done.
  std::unique_lock<std::timed_mutex> running(convert_mu_, std::defer_lock);
  while (!running.try_lock_for(std::chrono::milliseconds(500))) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  activity_.job_id = request->job_id();
  activity_.packages_total = specs->size();
  activity_.packages_done = 0;
  activity_.bytes_done = 0;
  activity_.started_ms = AgentActivity::SteadyMs();
  activity_.converting = true;
  struct Release {
    AgentActivity& activity;
    ~Release() {
      activity.UpdateRate(AgentActivity::SteadyMs());
      activity.converting = false;
    }
  } release{activity_};

  Log()->info("conversion of {} package(s) for job {} started", specs->size(), request->job_id());
  uint64_t seq = 0;
  bool client_gone = false;
  auto send = [&](v1::ConvertEvent& e) {
    e.set_seq(++seq);
    e.set_time_unix_ms(NowUnixMs());
    // The import goes on if the controller is gone: it is idempotent and
    // the next request reports finished packages at once.
    if (!client_gone && !writer->Write(e)) {
      client_gone = true;
      Log()->warn("the controller stopped listening; the conversion goes on");
    }
  };
  {
    v1::ConvertEvent e;
    e.mutable_started()->set_packages_total(static_cast<uint32_t>(specs->size()));
    e.mutable_started()->set_effective_mode(request->mode());
    send(e);
  }
  auto lib = contentlib::ContentLibrary::Open(PosixFileSystem(), config_.content_root);
  if (!lib.ok()) {
    Log()->error("cannot open the content library: {}", lib.status().message());
    return ToGrpcStatus(lib.status());
  }
  importer::ImportOptions options;
  options.mode = ModeFrom(request->mode());
  options.jobs = static_cast<int>(request->jobs());
  std::map<std::string, std::chrono::steady_clock::time_point> last_progress;
  auto summary =
      importer::ImportPackages(**lib, *specs, options, [&](const importer::ImportEvent& ev) {
        v1::ConvertEvent e;
        auto fill = [&](v1::Progress* p) {
          p->set_files_done(ev.files_done);
          p->set_files_total(ev.files_total);
          p->set_bytes_done(ev.bytes_done);
          p->set_bytes_total(ev.bytes_total);
        };
        switch (ev.kind) {
          case importer::ImportEvent::Kind::kPackageStarted:
            e.mutable_package_started()->set_package_id(ev.package_id);
            e.mutable_package_started()->set_content_id(ev.content_id);
            fill(e.mutable_package_started()->mutable_progress());
            Log()->info("package {} ({} file(s), {} byte(s)): converting", ev.package_id,
                        ev.files_total, ev.bytes_total);
            break;
          case importer::ImportEvent::Kind::kPackageProgress: {
            // At most ten progress events a second per package: enough for
            // a bar; the one that completes a package's files always goes.
            auto now = std::chrono::steady_clock::now();
            auto& last = last_progress[ev.package_id];
            if (ev.files_done < ev.files_total && now - last < std::chrono::milliseconds(100)) {
              return;
            }
            last = now;
            e.mutable_package_progress()->set_package_id(ev.package_id);
            e.mutable_package_progress()->set_current_file(ev.current_file);
            fill(e.mutable_package_progress()->mutable_progress());
            break;
          }
          case importer::ImportEvent::Kind::kPackageDone: {
            last_progress.erase(ev.package_id);
            ++activity_.packages_done;
            if (!ev.already_done) {
              ++activity_.packages_converted;
              activity_.bytes_converted += ev.bytes_total;
              activity_.bytes_stored += ev.bytes_stored;
              activity_.bytes_deduplicated += ev.bytes_deduplicated;
              activity_.bytes_done += ev.bytes_total;
              activity_.UpdateRate(AgentActivity::SteadyMs());
            }
            auto* d = e.mutable_package_done();
            d->set_package_id(ev.package_id);
            d->set_content_id(ev.content_id);
            fill(d->mutable_progress());
            d->set_bytes_stored(ev.bytes_stored);
            d->set_bytes_deduplicated(ev.bytes_deduplicated);
            d->set_already_done(ev.already_done);
            d->set_legacy_removed(ev.legacy_removed);
            d->set_legacy_kept(ev.legacy_kept);
            if (ev.legacy_kept.empty()) {
              Log()->info("package {} is in the content library{}{}", ev.package_id,
                          ev.already_done ? " (converted earlier)" : "",
                          ev.legacy_removed ? "; legacy folder removed" : "; legacy folder kept");
            } else {
              Log()->warn(
                  "package {} is in the content library{}; legacy folder kept, it holds files "
                  "the library may not: {}",
                  ev.package_id, ev.already_done ? " (converted earlier)" : "", ev.legacy_kept);
            }
            break;
          }
          case importer::ImportEvent::Kind::kPackageFailed:
            ++activity_.packages_done;
            ++activity_.packages_failed;
            e.mutable_package_failed()->set_package_id(ev.package_id);
            SetError(ev.error, e.mutable_package_failed()->mutable_error());
            Log()->error("Failed to convert content of package {}: {}", ev.package_id,
                         ev.error.message());
            break;
        }
        send(e);
        if (test_package_delay_ms_ > 0 && ev.kind == importer::ImportEvent::Kind::kPackageDone &&
            !ev.already_done) {
          std::this_thread::sleep_for(std::chrono::milliseconds(test_package_delay_ms_));
        }
      });
  // Free the library (and its lock) before the last event: the controller
  // may ask for a verify as soon as it reads it.
  lib->reset();
  if (!summary.ok()) {
    Log()->error("conversion stopped: {}", summary.status().message());
    return ToGrpcStatus(summary.status());
  }
  ++activity_.conversions;
  v1::ConvertEvent e;
  auto* done = e.mutable_done();
  done->set_packages_done(static_cast<uint32_t>(summary->packages_done));
  done->set_packages_failed(static_cast<uint32_t>(summary->packages_failed));
  done->mutable_total()->set_files_done(summary->files);
  done->mutable_total()->set_bytes_done(summary->bytes_read);
  done->set_bytes_stored(summary->bytes_stored);
  done->set_bytes_deduplicated(summary->bytes_deduplicated);
  done->set_seconds(summary->seconds);
  send(e);
  Log()->info(
      "conversion for job {} done: {} package(s) converted, {} failed, {} byte(s) stored "
      "in {:.1f} s",
      request->job_id(), summary->packages_done, summary->packages_failed, summary->bytes_stored,
      summary->seconds);
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::VerifyLibrary(grpc::ServerContext* context,
                                             const v1::VerifyLibraryRequest* request,
                                             v1::VerifyReport* response) {
  if (auto st = CheckCaller(context, "VerifyLibrary", true); !st.ok()) return st;
  return RunVerify(context, *request, {}, response);
}

grpc::Status AgentServiceImpl::WatchVerifyLibrary(grpc::ServerContext* context,
                                                  const v1::VerifyLibraryRequest* request,
                                                  grpc::ServerWriter<v1::VerifyEvent>* writer) {
  if (auto st = CheckCaller(context, "WatchVerifyLibrary", true); !st.ok()) return st;
  const auto start = std::chrono::steady_clock::now();
  auto last_sent = start;
  std::optional<VerifyPhase> last_phase;  // none sent yet
  v1::VerifyEvent event;
  auto* progress = event.mutable_progress();
  // A write to a client that left just fails; the verify sees it gone
  // (RunVerify's stop) after its chunk at hand.
  auto send_progress = [&] {
    progress->set_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    writer->Write(event);
  };
  static_assert(static_cast<int>(VerifyPhase::kRepair) == v1::VerifyProgress::PHASE_REPAIR &&
                static_cast<int>(VerifyPhase::kRecheck) == v1::VerifyProgress::PHASE_RECHECK);
  bool unsent = false;  // the event holds counts not sent yet
  auto on_progress = [&](const contentlib::VerifyProgress& p) {
    // The first progress, and a new phase (repairing, checking again), show
    // at once, after the last counts of the phase before.
    const bool new_phase = p.phase != last_phase;
    if (new_phase && unsent) send_progress();
    last_phase = p.phase;
    progress->set_phase(static_cast<v1::VerifyProgress::Phase>(static_cast<int>(p.phase)));
    progress->set_objects_damaged(p.objects_damaged);
    progress->set_objects_repaired(p.objects_repaired);
    progress->set_legacy_files_seen(p.legacy_files_seen);
    progress->set_legacy_files_hashed(p.legacy_files_hashed);
    progress->set_legacy_bytes_hashed(p.legacy_bytes_hashed);
    progress->set_contents_done(p.contents_done);
    progress->set_contents_total(p.contents_total);
    progress->set_objects_done(p.objects_done);
    progress->set_objects_expected(p.objects_expected);
    progress->set_bytes_hashed(p.bytes_hashed);
    progress->set_bytes_expected(p.bytes_expected);
    const auto now = std::chrono::steady_clock::now();
    unsent = !new_phase && now - last_sent < std::chrono::milliseconds(500);
    if (unsent) return;
    last_sent = now;
    send_progress();
  };
  v1::VerifyEvent last;
  if (auto st = RunVerify(context, *request, on_progress, last.mutable_report()); !st.ok()) {
    return st;
  }
  send_progress();  // the final counts, however soon the verify ended
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::RunVerify(grpc::ServerContext* context,
                                         const v1::VerifyLibraryRequest& request,
                                         const contentlib::VerifyProgressFn& progress,
                                         v1::VerifyReport* response) {
  // A caller that left (Ctrl-C, a controller stopping) stops the re-hash.
  auto caller_gone = [context] { return context->IsCancelled(); };
  for (int waited = 0; waited < test_verify_delay_ms_ && !caller_gone(); waited += 50) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string lib_dir = config_.content_root + "/SCCMContentLib";
  response->set_has_datalib(IsDir(lib_dir + "/DataLib"));
  response->set_has_filelib(IsDir(lib_dir + "/FileLib"));
  response->set_has_pkglib(IsDir(lib_dir + "/PkgLib"));
  auto lib = contentlib::ContentLibrary::OpenExisting(PosixFileSystem(), config_.content_root);
  if (absl::IsUnavailable(lib.status())) {
    // A conversion is publishing: a verify now would report its half-written
    // batch as damage.
    return ToGrpcStatus(lib.status());
  }
  if (!lib.ok()) {
    auto* p = response->add_problems();
    p->set_kind(v1::VerifyProblem::KIND_MISSING_FOLDER);
    p->set_path("SCCMContentLib");
    p->set_detail(std::string(lib.status().message()));
    response->set_ok(false);
    return grpc::Status::OK;
  }
  importer::VerifyAndRepairOptions options;
  options.repair = request.repair();
  options.legacy_root = config_.legacy_root;
  options.progress = progress;
  options.stop = caller_gone;
  auto verified = importer::VerifyAndRepair(**lib, options);
  if (!verified.ok()) {
    Log()->warn("library {}", verified.status().message());
    return ToGrpcStatus(verified.status());
  }
  if (verified->repair) {
    const importer::RepairReport& repair = *verified->repair;
    auto* summary = response->mutable_repair();
    summary->set_damaged(repair.damaged);
    summary->set_legacy_files_seen(repair.files_seen);
    summary->set_legacy_files_hashed(repair.files_hashed);
    summary->set_legacy_folders_unreadable(repair.folders_unreadable);
    for (const auto& dir : repair.unreadable) summary->add_unreadable_folders(dir);
    if (repair.folders_unreadable > 0) {
      Log()->warn("repair: {} folder(s) below '{}' could not be read, e.g. '{}'",
                  repair.folders_unreadable, config_.legacy_root, repair.unreadable.front());
    }
    for (size_t i = 0; i < repair.repaired.size(); ++i) {
      auto* r = summary->add_repaired();
      r->set_hash(repair.repaired[i]);
      r->set_source(repair.sources[i]);
      Log()->warn("repaired library object {} from '{}'", repair.repaired[i], repair.sources[i]);
    }
    for (const auto& h : repair.unrepaired) {
      summary->add_unrepaired(h);
      Log()->error("library object {} not repaired: no file below '{}' has its bytes", h,
                   config_.legacy_root);
    }
  }
  const contentlib::VerifyResult& result = verified->result;
  for (const auto& prob : result.problems) {
    auto* p = response->add_problems();
    p->set_kind(static_cast<v1::VerifyProblem::Kind>(static_cast<int>(prob.kind) + 1));
    p->set_path(prob.path);
    p->set_detail(prob.detail);
  }
  uint64_t checked = result.packages;
  if (request.package_ids_size() > 0) {
    checked = 0;
    for (const auto& id : request.package_ids()) {
      if (::access((lib_dir + "/PkgLib/" + id + ".INI").c_str(), F_OK) == 0) {
        ++checked;
      } else {
        auto* p = response->add_problems();
        p->set_kind(v1::VerifyProblem::KIND_MISSING_CONTENT);
        p->set_path("PkgLib/" + id + ".INI");
        p->set_detail(fmt::format("package {} is not in the library", id));
      }
    }
  }
  response->set_packages_checked(checked);
  response->set_contents_checked(result.contents);
  response->set_objects_checked(result.objects);
  response->set_bytes_hashed(result.bytes_hashed);
  response->set_ok(response->problems_size() == 0);
  response->set_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  Log()->log(response->ok() ? spdlog::level::info : spdlog::level::err,
             "library check: {} package(s), {} object(s), {} problem(s)", checked, result.objects,
             response->problems_size());
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::ListLegacyPackages(grpc::ServerContext* context,
                                                  const v1::ListLegacyPackagesRequest*,
                                                  v1::ListLegacyPackagesResponse* response) {
  if (auto st = CheckCaller(context, "ListLegacyPackages", true); !st.ok()) return st;
  response->set_legacy_root(config_.legacy_root);
  if (config_.legacy_root.empty()) return grpc::Status::OK;
  // <legacy root>/<share>/<PkgID>/
  DIR* shares = ::opendir(config_.legacy_root.c_str());
  if (shares == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        fmt::format("cannot read the legacy root '{}'", config_.legacy_root));
  }
  while (dirent* s = ::readdir(shares)) {
    std::string share = s->d_name;
    if (share == "." || share == ".." || !IsDir(config_.legacy_root + "/" + share)) continue;
    DIR* pkgs = ::opendir((config_.legacy_root + "/" + share).c_str());
    if (pkgs == nullptr) continue;
    while (dirent* p = ::readdir(pkgs)) {
      std::string id = p->d_name;
      if (id == "." || id == ".." || !IsDir(config_.legacy_root + "/" + share + "/" + id)) continue;
      auto* out = response->add_packages();
      out->set_package_id(id);
      out->set_location(share + "\\" + id);
      out->set_converted(
          ::access((config_.content_root + "/SCCMContentLib/PkgLib/" + id + ".INI").c_str(),
                   F_OK) == 0);
    }
    ::closedir(pkgs);
  }
  ::closedir(shares);
  return grpc::Status::OK;
}

}  // namespace dpr::agent
