// The agent's assignment (step 6): its site, DPID, NAL path and the one
// controller identity it obeys from then on. Kept in <data-dir>/assignment.ini,
// written durably, so a restarted agent still refuses other controllers.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace dpr::agent {

struct Assignment {
  std::string site_code;
  std::string controller_identity;
  uint32_t dpid = 0;
  std::string nal_path;
  bool operator==(const Assignment&) const = default;
};

class AssignmentStore {
 public:
  explicit AssignmentStore(std::string data_dir);
  // Reads the file; a malformed one is an error naming it (never ignored:
  // that would let any controller take the DP over).
  absl::Status Load();
  std::optional<Assignment> Get() const;
  // Persists `a`; returns whether anything changed. Refused (PERMISSION_
  // DENIED) when assigned to another controller.
  absl::StatusOr<bool> Assign(const Assignment& a);
  std::string path() const;

 private:
  std::string data_dir_;
  mutable std::mutex mu_;
  std::optional<Assignment> current_;
};

}  // namespace dpr::agent
