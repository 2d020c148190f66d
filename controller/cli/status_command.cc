// dpctl status: an authenticated call to the controller.
#include <chrono>
#include <cstdio>

#include "common/grpc/status_convert.h"
#include "common/status/fmt_absl.h"
#include "controller/cli/commands.h"
#include "controller/cli/output.h"
#include "fmt/format.h"

namespace dpr::cli {

int ReportError(const absl::Status& status) {
  std::fprintf(stderr, "dpctl: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

absl::Status RpcError(std::string_view what, const grpc::Status& rpc) {
  absl::Status st = FromGrpcStatus(rpc);
  std::string hint;
  if (rpc.error_code() == grpc::StatusCode::UNAVAILABLE) {
    hint = " (is dp-controller running there, and do --cert/--key/--ca come from its site CA?)";
  }
  return absl::Status(st.code(), fmt::format("{} failed: {}{}", what, st.message(), hint));
}

namespace {

int RunStatus(GlobalOptions& global, CLI::App& app) {
  if (auto st = ApplyConfigFile(app, &global); !st.ok()) return ReportError(st);
  auto format = ParseOutput(global.output);
  if (!format.ok()) return ReportError(format.status());
  auto stub = ConnectToController(global);
  if (!stub.ok()) return ReportError(stub.status());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  dpreassign::v1::ControllerStatus status;
  grpc::Status rpc = (*stub)->GetStatus(&ctx, {}, &status);
  if (!rpc.ok()) {
    return ReportError(
        RpcError(fmt::format("status call to controller {}", global.controller), rpc));
  }
  if (*format == OutputFormat::kJson) {
    std::printf("%s\n", ToJson(status).c_str());
    return kExitOk;
  }
  Table t({"FIELD", "VALUE"});
  t.AddRow({"controller", status.server_name()});
  t.AddRow({"version", status.version()});
  t.AddRow({"data folder", status.data_dir()});
  t.AddRow({"jobs running", std::to_string(status.jobs_running())});
  t.AddRow({"jobs queued", std::to_string(status.jobs_queued())});
  t.AddRow({"you are", status.peer_identity()});
  std::printf("%s", t.Render().c_str());
  return kExitOk;
}

}  // namespace

void AddStatusCommand(CLI::App& app, GlobalOptions* global, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("status", "ask the controller who and how it is");
  cmd->callback([global, exit_code, &app] { *exit_code = RunStatus(*global, app); });
}

}  // namespace dpr::cli
