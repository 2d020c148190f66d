#include "agent/agent_metrics.h"

#include <sys/statvfs.h>

#include "fmt/format.h"

namespace dpr::agent {

MetricFamilies CollectAgentMetrics(const AgentActivity& activity, const CallCounts& calls,
                                   const std::string& content_root) {
  MetricFamilies out;
  AddCommonMetrics(out, calls);
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    Counter(out, name, help, static_cast<double>(v));
  };
  auto gauge = [&](const char* name, const char* help, double v) { Gauge(out, name, help, v); };
  counter("dpr_agent_conversions_total", "Conversion requests that ran to their end since start.",
          activity.conversions);
  counter("dpr_agent_packages_converted_total",
          "Packages converted into the content library since start.", activity.packages_converted);
  counter("dpr_agent_packages_failed_total", "Packages whose conversion failed since start.",
          activity.packages_failed);
  counter("dpr_agent_converted_bytes_total", "Bytes of the packages converted since start.",
          activity.bytes_converted);
  counter("dpr_agent_stored_bytes_total", "Bytes newly written into FileLib since start.",
          activity.bytes_stored);
  counter("dpr_agent_dedup_saved_bytes_total",
          "Bytes not stored because FileLib held them already (single instance).",
          activity.bytes_deduplicated);
  gauge("dpr_agent_converting", "1 while a conversion runs.", activity.converting ? 1 : 0);
  gauge("dpr_agent_conversion_packages",
        "Packages in the conversion running now (or the last one).",
        static_cast<double>(activity.packages_total));
  gauge("dpr_agent_conversion_packages_done",
        "Packages done, failed or found done earlier in the conversion running now (or the last).",
        static_cast<double>(activity.packages_done));
  gauge("dpr_agent_conversion_rate_bytes_per_second",
        "Package bytes converted per second in the conversion running now (or the last one).",
        activity.RateBytesPerSecond());
  struct statvfs vfs;
  if (statvfs(content_root.c_str(), &vfs) == 0) {
    gauge("dpr_agent_library_free_bytes", "Free bytes on the content library's filesystem.",
          static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize));
  }
  return out;
}

std::string AgentStatusLine(const AgentActivity& activity, const AssignmentStore& assignment) {
  if (activity.converting) {
    return fmt::format("converting for job {}: {}/{} package(s), {:.1f} MiB/s",
                       activity.job_id.load(), activity.packages_done.load(),
                       activity.packages_total.load(),
                       activity.RateBytesPerSecond() / (1024.0 * 1024.0));
  }
  const auto a = assignment.Get();
  if (!a) return "idle; not assigned to a site yet";
  return fmt::format("idle; assigned to site {} as DPID {}; {} package(s) converted since start",
                     a->site_code, a->dpid, activity.packages_converted.load());
}

}  // namespace dpr::agent
