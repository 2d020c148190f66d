// The Prometheus endpoint (GET /metrics, plain HTTP, prometheus-cpp's
// exposer). Off unless a daemon is given --metrics-listen; the values are
// collected at scrape time from plain counters the daemon keeps, so no
// library has to know about metrics. Names follow Prometheus' conventions:
// base units (bytes, seconds), _total on counters, no package IDs as
// labels.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc/call_counts.h"
#include "prometheus/metric_family.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace dpr {

using MetricFamilies = std::vector<prometheus::MetricFamily>;

// Builds families tersely: Family(out, "dpr_x_total", "help", Counter)
// then Sample(...). Type is the family's type; Sample sets the value where
// that type keeps it.
prometheus::MetricFamily& Family(MetricFamilies& out, std::string name, std::string help,
                                 prometheus::MetricType type);
void Sample(prometheus::MetricFamily& family, double value,
            std::vector<prometheus::ClientMetric::Label> labels = {});
// A family of one unlabelled sample.
void Counter(MetricFamilies& out, std::string name, std::string help, double value);
void Gauge(MetricFamilies& out, std::string name, std::string help, double value);
// A summary without quantiles: _count and _sum.
void SummarySample(prometheus::MetricFamily& family, uint64_t count, double sum,
                   std::vector<prometheus::ClientMetric::Label> labels = {});

// dpr_grpc_server_handled_total{grpc_method, grpc_code} and
// dpr_build_info{version}.
void AddCommonMetrics(MetricFamilies& out, const CallCounts& calls);

class MetricsServer {
 public:
  // Serves on `listen` ("HOST:PORT"; port 0 picks a free one, written to
  // `addr_file` when not empty). `collect` runs on every scrape.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, std::function<MetricFamilies()> collect,
      const std::string& addr_file);
  ~MetricsServer();
  const std::string& bound() const { return bound_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  std::string bound_;
};

}  // namespace dpr
