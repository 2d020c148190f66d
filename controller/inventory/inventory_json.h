// The inventory document `dpctl inventory import` loads (docs/INVENTORY.md):
// parsed and checked completely before anything is stored, every error
// naming the JSON path of the bad element ("/distribution_points/0/server").
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "controller/sitedb/site_types.h"

namespace dpr::controller {

// `source_name` (a file name) prefixes error messages.
absl::StatusOr<sitedb::Inventory> ParseInventory(std::string_view json,
                                                 std::string_view source_name);

// ConfigMgr package IDs: a three-character site code and five hex digits.
bool IsValidPackageId(std::string_view id);

}  // namespace dpr::controller
