#include "controller/reassign/job_proto.h"

#include "absl/time/time.h"
#include "controller/sitedb/site_store.h"

namespace dpr::reassign {

namespace v1 = ::dpreassign::v1;

namespace {

int64_t UnixMs(const std::string& iso) {
  absl::Time t;
  std::string err;
  if (iso.empty() || !absl::ParseTime(absl::RFC3339_full, iso, &t, &err)) return 0;
  return absl::ToUnixMillis(t);
}

}  // namespace

void JobToProto(const sitedb::UpgradeJob& j, v1::Job* out) {
  out->set_job_id(static_cast<uint64_t>(j.job_id));
  out->set_dpid(static_cast<uint32_t>(j.new_dpid != 0 && j.step >= 6 ? j.new_dpid : j.dpid));
  out->set_server_name(j.server);
  out->set_source_site(j.source_site);
  out->set_destination_site(j.destination_site);
  out->set_status(j.status == sitedb::JobStatus::kNotStarted
                      ? v1::JOB_STATUS_QUEUED
                      : static_cast<v1::JobStatus>(static_cast<int>(j.status)));
  out->set_step(static_cast<uint32_t>(j.step));
  out->set_step_name(std::string(sitedb::StepName(j.step)));
  if (!j.last_error.empty()) out->mutable_last_error()->set_message(j.last_error);
  out->set_start_unix_ms(UnixMs(j.start_time));
  out->set_end_unix_ms(UnixMs(j.end_time));
  out->set_packages_total(static_cast<uint32_t>(j.packages_total));
  out->set_packages_converted(static_cast<uint32_t>(j.packages_converted));
  out->mutable_progress()->set_bytes_total(static_cast<uint64_t>(j.bytes_total));
  out->mutable_progress()->set_bytes_done(static_cast<uint64_t>(j.bytes_done));
}

void MessageToEvent(const sitedb::StatusMessage& m, v1::JobEvent* out) {
  out->set_seq(static_cast<uint64_t>(m.record_id));
  out->set_time_unix_ms(UnixMs(m.time));
  out->set_job_id(static_cast<uint64_t>(m.job_id));
  auto* msg = out->mutable_message();
  msg->set_message_id(static_cast<uint32_t>(m.message_id));
  msg->set_severity(std::string(1, m.severity));
  msg->set_component(m.component);
  msg->set_package_id(m.package_id);
  msg->set_text(m.text);
}

}  // namespace dpr::reassign
