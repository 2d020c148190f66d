#include "controller/agent_client/grpc_agent_client.h"

#include <chrono>
#include <mutex>
#include <optional>

#include "common/grpc/peer_identity.h"
#include "common/grpc/status_convert.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "dpreassign/v1/agent.grpc.pb.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"

namespace dpr::controller {

namespace {

class GrpcAgentClient final : public AgentClient {
 public:
  GrpcAgentClient(std::shared_ptr<grpc::Channel> channel, std::string endpoint, std::string server,
                  const GrpcAgentOptions& options)
      : stub_(v1::AgentService::NewStub(channel)),
        endpoint_(std::move(endpoint)),
        server_(std::move(server)),
        options_(options) {}

  absl::StatusOr<v1::PreflightReport> Preflight(const v1::PreflightRequest& request) override {
    v1::PreflightReport reply;
    // Preflight walks every legacy file: as long as the DP needs (keepalive
    // still notices a dead agent).
    return Unary(
        "Preflight", reply,
        [&](grpc::ClientContext* c) { return stub_->Preflight(c, request, &reply); },
        /*long_running=*/true);
  }

  absl::StatusOr<v1::AssignSiteResponse> AssignSite(const v1::AssignSiteRequest& request) override {
    v1::AssignSiteResponse reply;
    return Unary("AssignSite", reply,
                 [&](grpc::ClientContext* c) { return stub_->AssignSite(c, request, &reply); });
  }

  absl::StatusOr<v1::VerifyReport> Verify(const v1::VerifyLibraryRequest& request) override {
    v1::VerifyReport reply;
    // Verification re-hashes the library: no short deadline.
    return Unary(
        "VerifyLibrary", reply,
        [&](grpc::ClientContext* c) { return stub_->VerifyLibrary(c, request, &reply); },
        /*long_running=*/true);
  }

  absl::StatusOr<v1::VerifyReport> WatchVerify(
      const v1::VerifyLibraryRequest& request,
      const std::function<void(const v1::VerifyProgress&)>& on_progress) override {
    grpc::Status st;
    std::optional<v1::VerifyReport> report;
    bool checked = false;
    {
      grpc::ClientContext context;  // no deadline: progress shows it lives
      ActiveCall active(this, &context);
      RETURN_IF_ERROR(active.status());
      auto reader = stub_->WatchVerifyLibrary(&context, request);
      v1::VerifyEvent event;
      while (reader->Read(&event)) {
        if (!checked) {
          RETURN_IF_ERROR(CheckPeer(context));
          checked = true;
        }
        if (event.has_progress()) on_progress(event.progress());
        if (event.has_report()) report = event.report();
      }
      st = reader->Finish();
      if (st.ok() && !checked) RETURN_IF_ERROR(CheckPeer(context));
    }
    // An agent from before WatchVerifyLibrary: the plain call, no progress.
    if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED && !checked) return Verify(request);
    RETURN_IF_ERROR(Describe("WatchVerifyLibrary", st));
    if (!report) {
      return absl::UnavailableError(
          fmt::format("agent of '{}' at {} (WatchVerifyLibrary): the stream ended without a report",
                      server_, endpoint_));
    }
    return *std::move(report);
  }

  absl::Status Convert(const v1::ConvertRequest& request,
                       const std::function<void(const v1::ConvertEvent&)>& on_event) override {
    grpc::ClientContext context;
    ActiveCall active(this, &context);
    RETURN_IF_ERROR(active.status());
    auto reader = stub_->ConvertContent(&context, request);
    v1::ConvertEvent event;
    bool checked = false;
    while (reader->Read(&event)) {
      if (!checked) {
        RETURN_IF_ERROR(CheckPeer(context));
        checked = true;
      }
      on_event(event);
    }
    grpc::Status st = reader->Finish();
    if (st.ok() && !checked) RETURN_IF_ERROR(CheckPeer(context));
    return Describe("ConvertContent", st);
  }

  void Cancel() override {
    std::lock_guard<std::mutex> l(mu_);
    cancelled_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }

 private:
  // A call that can run for hours, registered so Cancel() can end it.
  class ActiveCall {
   public:
    ActiveCall(GrpcAgentClient* self, grpc::ClientContext* context) : self_(self) {
      std::lock_guard<std::mutex> l(self_->mu_);
      if (self_->cancelled_) {
        status_ = absl::CancelledError("the controller is shutting down");
        return;
      }
      self_->active_ = context;
    }
    ~ActiveCall() {
      std::lock_guard<std::mutex> l(self_->mu_);
      if (status_.ok()) self_->active_ = nullptr;
    }
    ActiveCall(const ActiveCall&) = delete;
    ActiveCall& operator=(const ActiveCall&) = delete;
    const absl::Status& status() const { return status_; }

   private:
    GrpcAgentClient* self_;
    absl::Status status_;
  };

  template <typename Reply, typename Call>
  absl::StatusOr<Reply> Unary(const char* method, Reply& reply, Call call,
                              bool long_running = false) {
    grpc::ClientContext context;
    std::optional<ActiveCall> active;
    if (long_running) {
      active.emplace(this, &context);  // no deadline, but Cancel() ends it
      RETURN_IF_ERROR(active->status());
    } else {
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(options_.unary_deadline_seconds));
    }
    grpc::Status st = call(&context);
    RETURN_IF_ERROR(Describe(method, st));
    RETURN_IF_ERROR(CheckPeer(context));
    return reply;
  }

  // The handshake proved the certificate names the server; this checks it
  // is an agent's (not, say, an admin certificate issued for that name).
  absl::Status CheckPeer(const grpc::ClientContext& context) {
    auto auth = context.auth_context();
    if (auth == nullptr) return absl::UnauthenticatedError("no authenticated agent");
    ASSIGN_OR_RETURN(PeerIdentity peer, PeerFromAuthContext(*auth));
    if (peer.role != Role::kAgent) {
      return absl::PermissionDeniedError(
          fmt::format("the peer at {} for '{}' is {}, not an agent; refusing it", endpoint_,
                      server_, peer.Describe()));
    }
    return absl::OkStatus();
  }

  absl::Status Describe(const char* method, const grpc::Status& st) {
    if (st.ok()) return absl::OkStatus();
    absl::Status s = FromGrpcStatus(st);
    if (st.error_message().find("Hostname Verification") != std::string::npos) {
      return absl::PermissionDeniedError(fmt::format(
          "the agent at {} presented a certificate that does not name '{}'; refusing it (check "
          "the DP's agent endpoint, or issue the agent a certificate for '{}')",
          endpoint_, server_, server_));
    }
    return absl::Status(s.code(), fmt::format("agent of '{}' at {} ({}): {}", server_, endpoint_,
                                              method, s.message()));
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::mutex mu_;
  grpc::ClientContext* active_ = nullptr;  // the long call in progress
  bool cancelled_ = false;
  std::string endpoint_;
  std::string server_;
  GrpcAgentOptions options_;
};

class GrpcAgentConnector final : public AgentConnector {
 public:
  explicit GrpcAgentConnector(GrpcAgentOptions options) : options_(std::move(options)) {}

  absl::StatusOr<std::shared_ptr<AgentClient>> Connect(const std::string& endpoint,
                                                       const std::string& server) override {
    ASSIGN_OR_RETURN(auto creds, MakeChannelCredentials(options_.tls));
    grpc::ChannelArguments args;
    // The agent must prove the DP's name whatever address it is dialled at.
    args.SetSslTargetNameOverride(server);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options_.keepalive_seconds * 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options_.keepalive_timeout_seconds * 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    auto channel = grpc::CreateCustomChannel(endpoint, creds, args);
    return std::shared_ptr<AgentClient>(
        std::make_shared<GrpcAgentClient>(channel, endpoint, server, options_));
  }

 private:
  GrpcAgentOptions options_;
};

}  // namespace

std::unique_ptr<AgentConnector> MakeGrpcAgentConnector(const GrpcAgentOptions& options) {
  return std::make_unique<GrpcAgentConnector>(options);
}

}  // namespace dpr::controller
