// A small site for controller tests: source site S07 with a site server and
// two shared DPs, destination site P01, packages spread over both DPs.
#pragma once

#include <string>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace dpr::testing {

struct DemoSite {
  int packages = 6;  // on DP01; DP02 holds the first half of them
  std::string dp01_endpoint = "127.0.0.1:1";
  std::string dp02_endpoint = "127.0.0.1:2";
  bool dp02_shared = true;
  std::string dp02_extra_role;  // e.g. "SMS Management Point": makes DP02 ineligible
};

inline std::string PackageIdOf(int i) { return fmt::format("S07{:05X}", 0x100 + i); }

inline nlohmann::json DemoInventory(const DemoSite& d = {}) {
  using nlohmann::json;
  json inv = {
      {"format", 1},
      {"sites",
       {{{"code", "S07"},
         {"name", "Contoso 2007"},
         {"hierarchy", "source"},
         {"version", "4.00.6487.2000"}},
        {{"code", "P01"},
         {"name", "Contoso 2012"},
         {"hierarchy", "destination"},
         {"version", "5.00.7958.1000"}}}},
      {"site_systems",
       {{{"server", "SS07.CONTOSO.COM"},
         {"site", "S07"},
         {"roles", {"SMS Site Server", "SMS Site System"}}}}},
  };
  json pkgs = json::array();
  json on1 = json::array();
  json on2 = json::array();
  for (int i = 0; i < d.packages; ++i) {
    const std::string id = PackageIdOf(i);
    pkgs.push_back({{"id", id},
                    {"name", fmt::format("Package {}", i)},
                    {"source_version", 1 + i % 3},
                    {"keep_package_share", i == 1},
                    {"bytes", 1000 * (i + 1)}});
    on1.push_back({{"id", id}, {"location", fmt::format("SMSPKGD$\\{}", id)}});
    if (i < d.packages / 2) on2.push_back({{"id", id}});
  }
  inv["packages"] = pkgs;
  json dp2_roles = {"SMS Site System", "SMS Distribution Point"};
  if (!d.dp02_extra_role.empty()) dp2_roles.push_back(d.dp02_extra_role);
  inv["distribution_points"] = {
      {{"dpid", 4},
       {"server", "DP01.CONTOSO.COM"},
       {"site", "S07"},
       {"drive", "D:"},
       {"agent_endpoint", d.dp01_endpoint},
       {"shared_in", "P01"},
       {"packages", on1}},
      {{"dpid", 5},
       {"server", "DP02.CONTOSO.COM"},
       {"site", "S07"},
       {"agent_endpoint", d.dp02_endpoint},
       {"roles", dp2_roles},
       {"shared_in", d.dp02_shared ? "P01" : ""},
       {"packages", on2}},
  };
  return inv;
}

}  // namespace dpr::testing
