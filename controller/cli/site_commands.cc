// dpctl inventory / dp / reassign / job: thin callers of the admin API that
// print tables for people and JSON for scripts.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_join.h"
#include "common/grpc/status_convert.h"
#include "common/status/fmt_absl.h"
#include "controller/cli/commands.h"
#include "controller/cli/job_watch.h"
#include "controller/cli/output.h"
#include "fmt/format.h"

namespace dpr::cli {

namespace {

namespace v1 = ::dpreassign::v1;

struct Session {
  OutputFormat format = OutputFormat::kTable;
  std::unique_ptr<v1::AdminService::Stub> stub;
  std::string controller;
};

absl::StatusOr<Session> Open(GlobalOptions& global, CLI::App& app) {
  if (auto st = ApplyConfigFile(app, &global); !st.ok()) return st;
  Session s;
  auto format = ParseOutput(global.output);
  if (!format.ok()) return format.status();
  s.format = *format;
  auto stub = ConnectToController(global);
  if (!stub.ok()) return stub.status();
  s.stub = std::move(*stub);
  s.controller = global.controller;
  return s;
}

std::unique_ptr<grpc::ClientContext> Context(int seconds = 60) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

std::string JobLine(const v1::Job& j) {
  std::string line = fmt::format("job {} '{}' {}: step {}/9 {} ({}/{} packages converted)",
                                 j.job_id(), j.server_name(), JobStatusText(j.status()), j.step(),
                                 j.step_name(), j.packages_converted(), j.packages_total());
  if (j.has_last_error()) line += " - " + j.last_error().message();
  return line;
}

void PrintJobTable(const std::vector<const v1::Job*>& jobs) {
  Table t({"JOB", "DP", "DPID", "FROM", "TO", "STATUS", "STEP", "PACKAGES", "LAST ERROR"});
  for (const auto* j : jobs) {
    t.AddRow({std::to_string(j->job_id()), j->server_name(), std::to_string(j->dpid()),
              j->source_site(), j->destination_site(), JobStatusText(j->status()),
              fmt::format("{}/9", j->step()),
              fmt::format("{}/{}", j->packages_converted(), j->packages_total()),
              j->has_last_error() ? j->last_error().message() : ""});
  }
  std::printf("%s", t.Render().c_str());
}

int RunImport(GlobalOptions& global, CLI::App& app, const std::string& file, bool dry_run) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return ReportError(absl::InvalidArgumentError(fmt::format("cannot read '{}'", file)));
  std::stringstream text;
  text << in.rdbuf();
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::ImportInventoryRequest req;
  req.set_json(text.str());
  req.set_source_name(file);
  req.set_dry_run(dry_run);
  v1::ImportInventoryResponse resp;
  auto ctx = Context();
  if (auto rpc = s->stub->ImportInventory(ctx.get(), req, &resp); !rpc.ok()) {
    return ReportError(RpcError("inventory import", rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(resp).c_str());
  } else {
    std::printf("%s %u site(s), %u distribution point(s), %u package(s), %u package location(s)\n",
                dry_run ? "would import" : "imported", resp.sites(), resp.distribution_points(),
                resp.packages(), resp.package_locations());
  }
  return kExitOk;
}

int RunDpList(GlobalOptions& global, CLI::App& app, const std::string& site) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::ListDistributionPointsRequest req;
  req.set_site_code(site);
  v1::ListDistributionPointsResponse resp;
  auto ctx = Context();
  if (auto rpc = s->stub->ListDistributionPoints(ctx.get(), req, &resp); !rpc.ok()) {
    return ReportError(RpcError("listing distribution points", rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(resp).c_str());
    return kExitOk;
  }
  Table t({"DPID", "SERVER", "SITE", "PACKAGES", "AGENT", "UPGRADE"});
  for (const auto& d : resp.distribution_points()) {
    t.AddRow({std::to_string(d.dpid()), d.server_name(), d.site_code(),
              std::to_string(d.packages()), d.agent_endpoint(),
              d.upgrade_status() == v1::JOB_STATUS_NOT_STARTED
                  ? "-"
                  : JobStatusText(d.upgrade_status())});
  }
  std::printf("%s", t.Render().c_str());
  return kExitOk;
}

int RunDpShow(GlobalOptions& global, CLI::App& app, const std::string& dp) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::GetDistributionPointRequest req;
  req.set_dp(dp);
  v1::DistributionPointDetail resp;
  auto ctx = Context();
  if (auto rpc = s->stub->GetDistributionPoint(ctx.get(), req, &resp); !rpc.ok()) {
    return ReportError(RpcError(fmt::format("looking up '{}'", dp), rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(resp).c_str());
    return kExitOk;
  }
  if (resp.has_distribution_point()) {
    const auto& d = resp.distribution_point();
    std::printf("%s (DPID %u) in site %s, agent %s\n  NAL path: %s\n", d.server_name().c_str(),
                d.dpid(), d.site_code().c_str(), d.agent_endpoint().c_str(), d.nal_path().c_str());
  }
  if (resp.has_job()) std::printf("%s\n", JobLine(resp.job()).c_str());
  if (resp.packages_size() > 0) {
    Table t({"PACKAGE", "NAME", "VERSION", "LOCATION", "KEEP SHARE", "STATE", "ERROR"});
    for (const auto& p : resp.packages()) {
      t.AddRow({p.package_id(), p.name(), std::to_string(p.source_version()), p.location(),
                p.keep_package_share() ? "yes" : "", p.state(),
                p.has_error() ? p.error().message() : ""});
    }
    std::printf("%s", t.Render().c_str());
  }
  return kExitOk;
}

int RunReassign(GlobalOptions& global, CLI::App& app, const std::string& dp, const std::string& to,
                bool dry_run, bool detach) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::StartReassignmentRequest req;
  req.set_dp(dp);
  req.set_to_site(to);
  req.set_dry_run(dry_run);
  v1::StartReassignmentResponse resp;
  auto ctx = Context(120);
  if (auto rpc = s->stub->StartReassignment(ctx.get(), req, &resp); !rpc.ok()) {
    return ReportError(RpcError(fmt::format("reassigning '{}' to {}", dp, to), rpc));
  }
  if (dry_run) {
    if (s->format == OutputFormat::kJson) {
      std::printf("%s\n", ToJson(resp).c_str());
      return kExitOk;
    }
    std::printf(
        "plan for reassigning '%s' to %s (%u package(s); the conversion needs %.1f MiB, "
        "%.1f MiB free):\n",
        dp.c_str(), to.c_str(), resp.plan().packages(),
        static_cast<double>(resp.plan().bytes_needed()) / (1 << 20),
        static_cast<double>(resp.plan().bytes_free()) / (1 << 20));
    for (const auto& step : resp.plan().steps()) {
      std::printf("  %u. %s\n", step.step(), step.name().c_str());
      for (const auto& c : step.changes()) {
        std::printf("       %-18s %6u row(s)  %s\n", c.table().c_str(), c.rows(), c.what().c_str());
      }
    }
    return kExitOk;
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(resp, false).c_str());
  } else {
    std::printf("%s job %llu for '%s' to %s\n", resp.existing() ? "existing" : "started",
                static_cast<unsigned long long>(resp.job().job_id()),
                resp.job().server_name().c_str(), to.c_str());
  }
  std::fflush(stdout);
  if (detach) return kExitOk;
  return WatchJob(*s->stub, s->controller, resp.job().job_id(), 0, s->format);
}

int RunJobList(GlobalOptions& global, CLI::App& app) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::ListJobsResponse resp;
  auto ctx = Context();
  if (auto rpc = s->stub->ListJobs(ctx.get(), {}, &resp); !rpc.ok()) {
    return ReportError(RpcError("listing jobs", rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(resp).c_str());
    return kExitOk;
  }
  std::vector<const v1::Job*> jobs;
  for (const auto& j : resp.jobs()) jobs.push_back(&j);
  PrintJobTable(jobs);
  return kExitOk;
}

int RunJobShow(GlobalOptions& global, CLI::App& app, uint64_t job_id, bool watch, bool from_start,
               int64_t after_seq) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  if (watch) {
    // By default, pick up after the last event this user saw of the job.
    uint64_t after = from_start ? 0 : LoadLastSeq(s->controller, job_id);
    if (after_seq >= 0) after = static_cast<uint64_t>(after_seq);
    return WatchJob(*s->stub, s->controller, job_id, after, s->format);
  }
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  v1::Job job;
  auto ctx = Context();
  if (auto rpc = s->stub->GetJob(ctx.get(), req, &job); !rpc.ok()) {
    return ReportError(RpcError(fmt::format("looking up job {}", job_id), rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(job).c_str());
  } else {
    PrintJobTable({&job});
  }
  return kExitOk;
}

int RunDpConvert(GlobalOptions& global, CLI::App& app, const std::string& dp) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  v1::RetryConversionRequest req;
  req.set_dp(dp);
  v1::Job job;
  auto ctx = Context();
  if (auto rpc = s->stub->RetryConversion(ctx.get(), req, &job); !rpc.ok()) {
    return ReportError(RpcError(fmt::format("retrying conversion of '{}'", dp), rpc));
  }
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(job).c_str());
  } else {
    std::printf("dropped %u.dpu: conversion of '%s' will be retried (job %llu)\n", job.dpid(),
                job.server_name().c_str(), static_cast<unsigned long long>(job.job_id()));
  }
  return kExitOk;
}

// The report of the DP's verify, streamed with progress (redrawn on stderr
// when that is a terminal and the output is for people). No deadline: a
// large library takes hours, and the progress shows it is alive. A
// controller without the streaming call gets the plain one (1 hour).
absl::StatusOr<v1::VerifyReport> VerifyWithProgress(Session& s, const std::string& dp,
                                                    bool repair) {
  v1::VerifyDistributionPointRequest req;
  req.set_dp(dp);
  req.set_repair(repair);
  const bool draw = s.format == OutputFormat::kTable && ::isatty(STDERR_FILENO) == 1;
  grpc::ClientContext ctx;
  auto reader = s.stub->WatchVerifyDistributionPoint(&ctx, req);
  v1::VerifyEvent event;
  std::optional<v1::VerifyReport> report;
  bool any = false;
  while (reader->Read(&event)) {
    any = true;
    if (event.has_progress() && draw) {
      std::fprintf(stderr, "\r%s\x1b[K",
                   (dp + ": " + VerifyProgressText(event.progress())).c_str());
      std::fflush(stderr);
    }
    if (event.has_report()) report = event.report();
  }
  if (draw && any) std::fprintf(stderr, "\r\x1b[K");
  grpc::Status rpc = reader->Finish();
  if (rpc.error_code() == grpc::StatusCode::UNIMPLEMENTED && !any) {
    // An older controller would drop the repair field and only verify.
    if (repair) {
      return absl::FailedPreconditionError(fmt::format(
          "verifying '{}': the controller does not offer repairs (an older version); run "
          "'dp-agent verify --repair-from' on the DP",
          dp));
    }
    v1::VerifyReport plain;
    auto plain_ctx = Context(3600);
    rpc = s.stub->VerifyDistributionPoint(plain_ctx.get(), req, &plain);
    if (rpc.ok()) return plain;
  }
  if (!rpc.ok()) return RpcError(fmt::format("verifying '{}'", dp), rpc);
  if (!report) {
    return absl::UnavailableError(
        fmt::format("verifying '{}': the controller ended the stream without a report", dp));
  }
  return *std::move(report);
}

int RunDpVerify(GlobalOptions& global, CLI::App& app, const std::string& dp, bool repair) {
  auto s = Open(global, app);
  if (!s.ok()) return ReportError(s.status());
  auto verified = VerifyWithProgress(*s, dp, repair);
  if (!verified.ok()) return ReportError(verified.status());
  const v1::VerifyReport& report = *verified;
  if (s->format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(report).c_str());
  } else {
    if (report.has_repair()) {
      const auto& r = report.repair();
      for (const auto& o : r.repaired()) {
        std::printf("repaired: %s from '%s'\n", o.hash().c_str(), o.source().c_str());
      }
      for (const auto& h : r.unrepaired()) {
        std::printf(
            "not repaired: %s (no file below the DP's legacy root has its bytes; send the "
            "packages using it to the DP again)\n",
            h.c_str());
      }
      std::printf(
          "repair: %d of %llu damaged object(s) put back; looked at %llu legacy file(s), "
          "hashed %llu of a damaged object's size\n",
          r.repaired_size(), static_cast<unsigned long long>(r.damaged()),
          static_cast<unsigned long long>(r.legacy_files_seen()),
          static_cast<unsigned long long>(r.legacy_files_hashed()));
      if (r.legacy_folders_unreadable() > 0) {
        std::printf(
            "%llu folder(s) below the DP's legacy root could not be read (a copy may be "
            "there): %s\n",
            static_cast<unsigned long long>(r.legacy_folders_unreadable()),
            absl::StrJoin(r.unreadable_folders(), ", ").c_str());
      }
    }
    std::printf("%s: %llu package(s), %llu object(s) checked, %d problem(s)\n",
                report.ok() ? "library OK" : "library has problems",
                static_cast<unsigned long long>(report.packages_checked()),
                static_cast<unsigned long long>(report.objects_checked()), report.problems_size());
    for (const auto& p : report.problems()) {
      std::printf("  %s: %s\n", p.path().c_str(), p.detail().c_str());
    }
  }
  return report.ok() ? kExitOk : kExitFailure;
}

}  // namespace

void AddSiteCommands(CLI::App& app, GlobalOptions* global, int* exit_code) {
  CLI::App* inv = app.add_subcommand("inventory", "load what migration data gathering knows");
  inv->require_subcommand(1);
  {
    auto* cmd = inv->add_subcommand("import",
                                    "load sites, DPs and packages from a JSON file "
                                    "(docs/INVENTORY.md); all or nothing");
    auto file = std::make_shared<std::string>();
    auto dry = std::make_shared<bool>(false);
    cmd->add_option("FILE", *file, "inventory JSON")->required();
    cmd->add_flag("--dry-run", *dry, "check the file, change nothing");
    cmd->callback([=, &app] { *exit_code = RunImport(*global, app, *file, *dry); });
  }

  CLI::App* dp = app.add_subcommand("dp", "distribution points");
  dp->require_subcommand(1);
  {
    auto site = std::make_shared<std::string>();
    auto* list = dp->add_subcommand("list", "the DPs the site database knows");
    list->add_option("--site", *site, "only this site");
    list->callback([=, &app] { *exit_code = RunDpList(*global, app, *site); });
  }
  for (const char* name : {"show", "convert", "verify"}) {
    auto target = std::make_shared<std::string>();
    auto repair = std::make_shared<bool>(false);
    const std::string n = name;
    auto* cmd =
        dp->add_subcommand(name, n == "show"      ? "a DP, its upgrade job and its packages"
                                 : n == "convert" ? "retry content conversion (drops <DPID>.dpu)"
                                                  : "ask the DP's agent to verify its library");
    cmd->add_option("DP", *target, "server name or DPID")->required();
    if (n == "verify") {
      cmd->add_flag("--repair", *repair,
                    "replace damaged or missing objects with identical files below the DP's "
                    "legacy root (kept shares, packages not converted); report what is left");
    }
    cmd->callback([=, &app] {
      *exit_code = n == "show"      ? RunDpShow(*global, app, *target)
                   : n == "convert" ? RunDpConvert(*global, app, *target)
                                    : RunDpVerify(*global, app, *target, *repair);
    });
  }

  {
    auto target = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto dry = std::make_shared<bool>(false);
    auto detach = std::make_shared<bool>(false);
    auto* cmd =
        app.add_subcommand("reassign", "move a shared DP to a destination site (the nine steps)");
    cmd->add_option("DP", *target, "server name or DPID")->required();
    cmd->add_option("--to", *to, "destination site code")->required();
    cmd->add_flag("--dry-run", *dry, "print the plan: each step and the rows it changes");
    cmd->add_flag("--detach", *detach, "start the job and return");
    cmd->callback(
        [=, &app] { *exit_code = RunReassign(*global, app, *target, *to, *dry, *detach); });
  }

  CLI::App* job = app.add_subcommand("job", "reassignment jobs");
  job->require_subcommand(1);
  job->add_subcommand("list", "every job")->callback([=, &app] {
    *exit_code = RunJobList(*global, app);
  });
  for (const char* name : {"show", "watch"}) {
    auto id = std::make_shared<uint64_t>(0);
    auto from_start = std::make_shared<bool>(false);
    auto after = std::make_shared<int64_t>(-1);
    const bool watch = std::string(name) == "watch";
    auto* cmd = job->add_subcommand(
        name, watch ? "follow a job until it ends, after the last event you saw (Ctrl-C detaches)"
                    : "one job");
    cmd->add_option("JOB", *id, "job ID")->required();
    if (watch) {
      cmd->add_flag("--from-start", *from_start, "replay the job's whole history");
      cmd->add_option("--after-seq", *after, "replay after this event number");
    }
    cmd->callback(
        [=, &app] { *exit_code = RunJobShow(*global, app, *id, watch, *from_start, *after); });
  }
}

}  // namespace dpr::cli
