// Finished gRPC calls by method and status code, counted by a server
// interceptor, for the metrics endpoint (gRPC errors by code). Method names
// are a fixed set, so they are safe as labels.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "grpcpp/support/server_interceptor.h"

namespace dpr {

class CallCounts {
 public:
  // (full method name "/pkg.Service/Method", grpc::StatusCode) -> calls
  using Map = std::map<std::pair<std::string, int>, uint64_t>;
  void Add(const std::string& method, int code);
  Map Snapshot() const;

 private:
  mutable std::mutex mu_;
  Map counts_;
};

// Counts every call's final status into `counts` (which must outlive the
// server).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeCallCountingInterceptor(
    CallCounts* counts);

// "OK", "NOT_FOUND", ... as in the gRPC docs; "CODE_<n>" otherwise.
std::string StatusCodeName(int code);

}  // namespace dpr
