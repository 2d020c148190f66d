#include "common/metrics/metrics_server.h"

#include <exception>

#include "common/fs/durable_file.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"

namespace dpr {
namespace {

class FunctionCollectable : public prometheus::Collectable {
 public:
  explicit FunctionCollectable(std::function<MetricFamilies()> collect)
      : collect_(std::move(collect)) {}
  MetricFamilies Collect() const override { return collect_(); }

 private:
  std::function<MetricFamilies()> collect_;
};

}  // namespace

prometheus::MetricFamily& Family(MetricFamilies& out, std::string name, std::string help,
                                 prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  out.push_back(std::move(f));
  return out.back();
}

void Sample(prometheus::MetricFamily& family, double value,
            std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  switch (family.type) {
    case prometheus::MetricType::Counter:
      m.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      m.gauge.value = value;
      break;
    default:
      m.untyped.value = value;
      break;
  }
  family.metric.push_back(std::move(m));
}

void Counter(MetricFamilies& out, std::string name, std::string help, double value) {
  Sample(Family(out, std::move(name), std::move(help), prometheus::MetricType::Counter), value);
}

void Gauge(MetricFamilies& out, std::string name, std::string help, double value) {
  Sample(Family(out, std::move(name), std::move(help), prometheus::MetricType::Gauge), value);
}

void SummarySample(prometheus::MetricFamily& family, uint64_t count, double sum,
                   std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.summary.sample_count = count;
  m.summary.sample_sum = sum;
  family.metric.push_back(std::move(m));
}

void AddCommonMetrics(MetricFamilies& out, const CallCounts& calls) {
  auto& info = Family(out, "dpr_build_info", "Version of this dpreassign daemon (always 1).",
                      prometheus::MetricType::Gauge);
  Sample(info, 1, {{"version", DPR_VERSION}});
  auto& handled = Family(out, "dpr_grpc_server_handled_total",
                         "gRPC calls this daemon finished, by method and status code (every code "
                         "but OK is an error).",
                         prometheus::MetricType::Counter);
  for (const auto& [key, n] : calls.Snapshot()) {
    Sample(handled, static_cast<double>(n),
           {{"grpc_method", key.first}, {"grpc_code", StatusCodeName(key.second)}});
  }
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::function<MetricFamilies()> collect,
    const std::string& addr_file) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        fmt::format("metrics address '{}' is not HOST:PORT (e.g. 127.0.0.1:9464)", listen));
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        fmt::format("cannot serve metrics on '{}' (address in use, or not an address of this "
                    "machine?): {}",
                    listen, e.what()));
  }
  server->collectable_ = std::make_shared<FunctionCollectable>(std::move(collect));
  server->exposer_->RegisterCollectable(server->collectable_);
  const auto ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(fmt::format("no metrics port on '{}'", listen));
  server->bound_ = fmt::format("{}:{}", listen.substr(0, colon), ports.front());
  if (!addr_file.empty()) RETURN_IF_ERROR(WriteFileDurably(addr_file, server->bound_ + "\n"));
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace dpr
