// An in-process agent for job runner tests: it is its own connector, its
// preflight reports `needed` of `free` bytes, AssignSite succeeds, a
// conversion reports every package done, and verify finds all well.
// Subclass it to hold or fail a call.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "controller/agent_client/agent_client.h"

namespace dpr::testing {

class FakeAgent : public controller::AgentClient, public controller::AgentConnector {
 public:
  absl::StatusOr<std::shared_ptr<controller::AgentClient>> Connect(const std::string&,
                                                                   const std::string&) override {
    return std::shared_ptr<controller::AgentClient>(this, [](auto*) {});
  }
  absl::StatusOr<dpreassign::v1::PreflightReport> Preflight(
      const dpreassign::v1::PreflightRequest&) override {
    dpreassign::v1::PreflightReport r;
    r.set_ok(true);
    r.set_bytes_needed(needed);
    r.set_bytes_free(free);
    return r;
  }
  absl::StatusOr<dpreassign::v1::AssignSiteResponse> AssignSite(
      const dpreassign::v1::AssignSiteRequest&) override {
    return dpreassign::v1::AssignSiteResponse();
  }
  absl::Status Convert(
      const dpreassign::v1::ConvertRequest& req,
      const std::function<void(const dpreassign::v1::ConvertEvent&)>& on_event) override {
    for (const auto& p : req.packages()) {
      dpreassign::v1::ConvertEvent e;
      e.mutable_package_done()->set_package_id(p.package_id());
      on_event(e);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<dpreassign::v1::VerifyReport> Verify(
      const dpreassign::v1::VerifyLibraryRequest& req) override {
    dpreassign::v1::VerifyReport r;
    r.set_ok(true);
    r.set_has_datalib(true);
    r.set_has_filelib(true);
    r.set_has_pkglib(true);
    r.set_packages_checked(static_cast<uint64_t>(req.package_ids_size()));
    return r;
  }

  uint64_t needed = 1000;
  uint64_t free = 1 << 30;
};

}  // namespace dpr::testing
