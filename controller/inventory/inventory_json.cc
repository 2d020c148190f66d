#include "controller/inventory/inventory_json.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/nal/nal_path.h"
#include "common/pki/pki.h"
#include "common/status/fmt_absl.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace dpr::controller {

namespace {

using nlohmann::json;

constexpr int kFormat = 1;

// Walks the document keeping the JSON pointer of where it is, so every
// complaint names its element.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  absl::Status Fail(const std::string& path, std::string_view why) const {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}: {}", source_, path.empty() ? "/" : path, why));
  }

  // Refuses keys the format does not have: a typo must not silently drop a
  // field (a misspelt "keep_package_share" would delete a share).
  absl::Status OnlyKeys(const json& obj, const std::string& path,
                        std::initializer_list<std::string_view> keys) const {
    for (const auto& [key, value] : obj.items()) {
      bool known = false;
      for (auto k : keys) known = known || key == k;
      if (!known) return Fail(path + "/" + key, "unknown field");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const json& obj, const std::string& path, const char* key,
                                     bool required, std::string fallback = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) return Fail(path + "/" + key, "missing (a string is required)");
      return fallback;
    }
    if (!it->is_string()) return Fail(path + "/" + key, "must be a string");
    return it->get<std::string>();
  }

  absl::StatusOr<int64_t> Int(const json& obj, const std::string& path, const char* key,
                              bool required, int64_t fallback, int64_t min, int64_t max) const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) return Fail(path + "/" + key, "missing (a number is required)");
      return fallback;
    }
    if (!it->is_number_integer()) return Fail(path + "/" + key, "must be a whole number");
    const auto v = it->get<int64_t>();
    if (v < min || v > max) {
      return Fail(path + "/" + key, fmt::format("{} is out of range {}..{}", v, min, max));
    }
    return v;
  }

  absl::StatusOr<bool> Bool(const json& obj, const std::string& path, const char* key,
                            bool fallback) const {
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (!it->is_boolean()) return Fail(path + "/" + key, "must be true or false");
    return it->get<bool>();
  }

  absl::StatusOr<const json*> Array(const json& obj, const std::string& path, const char* key,
                                    bool required) const {
    static const json kEmpty = json::array();
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) return Fail(path + "/" + key, "missing (a list is required)");
      return &kEmpty;
    }
    if (!it->is_array()) return Fail(path + "/" + key, "must be a list");
    return &*it;
  }

 private:
  std::string source_;
};

#define DPR_TRY(lhs, expr)                      \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

bool IsEndpoint(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
  auto port = s.substr(colon + 1);
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return std::stoi(std::string(port)) > 0 && std::stoi(std::string(port)) < 65536;
}

// A location below the DP's share root, backslash-joined.
absl::StatusOr<std::string> NormaliseLocation(std::string_view in) {
  auto parts = SplitShareRelativePath(in);
  if (!parts.ok()) return parts.status();
  return absl::StrJoin(*parts, "\\");
}

}  // namespace

bool IsValidPackageId(std::string_view id) {
  if (id.size() != 8 || !IsValidSiteCode(id.substr(0, 3))) return false;
  for (char c : id.substr(3)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
        absl::ascii_islower(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<sitedb::Inventory> ParseInventory(std::string_view text,
                                                 std::string_view source_name) {
  Reader r(source_name);
  json doc;
  // An inventory is five levels deep. A document of 15 MiB of '[' made the
  // parser build 15 million nested arrays (1.2 GB) before it failed, so the
  // depth is checked as the parser descends, not after.
  struct TooDeep {};
  constexpr int kMaxDepth = 32;
  try {
    doc = json::parse(text.begin(), text.end(), [&](int depth, json::parse_event_t event, json&) {
      if (depth > kMaxDepth && (event == json::parse_event_t::object_start ||
                                event == json::parse_event_t::array_start)) {
        throw TooDeep{};
      }
      return true;
    });
  } catch (const TooDeep&) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: nested more than {} levels deep; an inventory has five", source_name, kMaxDepth));
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        fmt::format("{}: not valid JSON at byte {}: {}", source_name, e.byte, e.what()));
  } catch (const json::exception& e) {
    // A number too large for a double (1e999999) throws out_of_range, not
    // parse_error: found by the fuzzer; it used to terminate the controller.
    return absl::InvalidArgumentError(
        fmt::format("{}: not usable JSON: {}", source_name, e.what()));
  }
  if (!doc.is_object()) return r.Fail("", "the document must be a JSON object");
  if (auto st = r.OnlyKeys(
          doc, "",
          {"format", "sites", "site_systems", "packages", "distribution_points", "comment"});
      !st.ok()) {
    return st;
  }
  DPR_TRY(format, r.Int(doc, "", "format", true, 0, 0, 1000));
  if (format != kFormat) {
    return r.Fail("/format", fmt::format("format {} is not known; this dpctl reads format {}",
                                         format, kFormat));
  }
  sitedb::Inventory inv;
  std::map<std::string, sitedb::Hierarchy> sites;

  DPR_TRY(site_list, r.Array(doc, "", "sites", true));
  for (size_t i = 0; i < site_list->size(); ++i) {
    const json& e = (*site_list)[i];
    const std::string path = fmt::format("/sites/{}", i);
    if (!e.is_object()) return r.Fail(path, "must be an object");
    if (auto st = r.OnlyKeys(e, path, {"code", "name", "hierarchy", "version"}); !st.ok())
      return st;
    sitedb::Site site;
    DPR_TRY(code, r.String(e, path, "code", true));
    if (!IsValidSiteCode(code))
      return r.Fail(path + "/code",
                    fmt::format("'{}' is not a site code (three letters or digits)", code));
    site.code = code;
    DPR_TRY(name, r.String(e, path, "name", false, code));
    site.name = name;
    DPR_TRY(hierarchy, r.String(e, path, "hierarchy", true));
    if (hierarchy == "source") {
      site.hierarchy = sitedb::Hierarchy::kSource;
    } else if (hierarchy == "destination") {
      site.hierarchy = sitedb::Hierarchy::kDestination;
    } else {
      return r.Fail(path + "/hierarchy",
                    fmt::format("'{}': must be \"source\" or \"destination\"", hierarchy));
    }
    DPR_TRY(version, r.String(e, path, "version", false));
    site.version = version;
    if (!sites.emplace(site.code, site.hierarchy).second) {
      return r.Fail(path + "/code", fmt::format("site '{}' is listed twice", site.code));
    }
    inv.sites.push_back(std::move(site));
  }
  auto site_of = [&](const std::string& path, const std::string& code,
                     std::optional<sitedb::Hierarchy> want) -> absl::Status {
    auto it = sites.find(code);
    if (it == sites.end()) return r.Fail(path, fmt::format("site '{}' is not in /sites", code));
    if (want && it->second != *want) {
      return r.Fail(path,
                    fmt::format("site '{}' must be a {} site", code,
                                *want == sitedb::Hierarchy::kSource ? "source" : "destination"));
    }
    return absl::OkStatus();
  };

  DPR_TRY(systems, r.Array(doc, "", "site_systems", false));
  for (size_t i = 0; i < systems->size(); ++i) {
    const json& e = (*systems)[i];
    const std::string path = fmt::format("/site_systems/{}", i);
    if (!e.is_object()) return r.Fail(path, "must be an object");
    if (auto st = r.OnlyKeys(e, path, {"server", "site", "roles"}); !st.ok()) return st;
    sitedb::SiteSystem sys;
    DPR_TRY(server, r.String(e, path, "server", true));
    if (!IsHostName(server))
      return r.Fail(path + "/server", fmt::format("'{}' is not a server name", server));
    sys.server = absl::AsciiStrToUpper(server);
    DPR_TRY(site, r.String(e, path, "site", true));
    if (auto st = site_of(path + "/site", site, std::nullopt); !st.ok()) return st;
    sys.site = site;
    DPR_TRY(roles, r.Array(e, path, "roles", true));
    for (size_t k = 0; k < roles->size(); ++k) {
      if (!(*roles)[k].is_string() || (*roles)[k].get<std::string>().empty()) {
        return r.Fail(fmt::format("{}/roles/{}", path, k), "must be a role name");
      }
      sys.roles.push_back((*roles)[k].get<std::string>());
    }
    inv.site_systems.push_back(std::move(sys));
  }

  std::set<std::string> package_ids;
  DPR_TRY(packages, r.Array(doc, "", "packages", true));
  for (size_t i = 0; i < packages->size(); ++i) {
    const json& e = (*packages)[i];
    const std::string path = fmt::format("/packages/{}", i);
    if (!e.is_object()) return r.Fail(path, "must be an object");
    if (auto st = r.OnlyKeys(
            e, path,
            {"id", "name", "source_version", "source_site", "keep_package_share", "bytes"});
        !st.ok()) {
      return st;
    }
    sitedb::Package p;
    DPR_TRY(id, r.String(e, path, "id", true));
    if (!IsValidPackageId(id)) {
      return r.Fail(
          path + "/id",
          fmt::format("'{}' is not a package ID (site code and five hex digits, like S0700001)",
                      id));
    }
    p.id = id;
    DPR_TRY(name, r.String(e, path, "name", false, id));
    p.name = name;
    DPR_TRY(version, r.Int(e, path, "source_version", true, 1, 1, 0x7fffffff));
    p.source_version = version;
    DPR_TRY(source_site, r.String(e, path, "source_site", false, id.substr(0, 3)));
    if (auto st = site_of(path + "/source_site", source_site, std::nullopt); !st.ok()) return st;
    p.source_site = source_site;
    DPR_TRY(keep, r.Bool(e, path, "keep_package_share", false));
    p.keep_package_share = keep;
    DPR_TRY(bytes, r.Int(e, path, "bytes", false, 0, 0, int64_t{1} << 50));
    p.bytes = bytes;
    if (!package_ids.insert(p.id).second) {
      return r.Fail(path + "/id", fmt::format("package '{}' is listed twice", p.id));
    }
    inv.packages.push_back(std::move(p));
  }

  std::set<int64_t> dpids;
  std::set<std::string> servers;
  DPR_TRY(dps, r.Array(doc, "", "distribution_points", true));
  for (size_t i = 0; i < dps->size(); ++i) {
    const json& e = (*dps)[i];
    const std::string path = fmt::format("/distribution_points/{}", i);
    if (!e.is_object()) return r.Fail(path, "must be an object");
    if (auto st = r.OnlyKeys(e, path,
                             {"dpid", "server", "site", "share", "drive", "min_free_space_mb",
                              "agent_endpoint", "roles", "shared_in", "eligible", "packages"});
        !st.ok()) {
      return st;
    }
    sitedb::InventoryDp dp;
    DPR_TRY(dpid, r.Int(e, path, "dpid", true, 0, 1, 0x7fffffff));
    dp.dpid = dpid;
    if (!dpids.insert(dpid).second)
      return r.Fail(path + "/dpid", fmt::format("DPID {} is listed twice", dpid));
    DPR_TRY(server, r.String(e, path, "server", true));
    if (!IsHostName(server))
      return r.Fail(path + "/server", fmt::format("'{}' is not a server name", server));
    dp.server = absl::AsciiStrToUpper(server);
    if (!servers.insert(dp.server).second) {
      return r.Fail(path + "/server", fmt::format("server '{}' is listed twice", server));
    }
    DPR_TRY(site, r.String(e, path, "site", true));
    if (auto st = site_of(path + "/site", site, sitedb::Hierarchy::kSource); !st.ok()) return st;
    dp.site = site;
    DPR_TRY(share, r.String(e, path, "share", false, "SMSPKGD$"));
    auto share_ok = NormaliseLocation(share);
    if (!share_ok.ok() || share_ok->find('\\') != std::string::npos) {
      return r.Fail(path + "/share", fmt::format("'{}' is not a share name", share));
    }
    dp.share = *share_ok;
    DPR_TRY(drive, r.String(e, path, "drive", false));
    dp.drive = drive;
    DPR_TRY(min_free, r.Int(e, path, "min_free_space_mb", false, 0, 0, int64_t{1} << 40));
    dp.min_free_space_mb = min_free;
    DPR_TRY(endpoint, r.String(e, path, "agent_endpoint", true));
    if (!IsEndpoint(endpoint)) {
      return r.Fail(path + "/agent_endpoint", fmt::format("'{}' is not HOST:PORT", endpoint));
    }
    dp.agent_endpoint = endpoint;
    DPR_TRY(roles, r.Array(e, path, "roles", false));
    for (size_t k = 0; k < roles->size(); ++k) {
      if (!(*roles)[k].is_string() || (*roles)[k].get<std::string>().empty()) {
        return r.Fail(fmt::format("{}/roles/{}", path, k), "must be a role name");
      }
      dp.roles.push_back((*roles)[k].get<std::string>());
    }
    if (roles->empty()) dp.roles = {sitedb::kRoleSiteSystem, sitedb::kRoleDistributionPoint};
    DPR_TRY(shared_in, r.String(e, path, "shared_in", false));
    if (!shared_in.empty()) {
      if (auto st = site_of(path + "/shared_in", shared_in, sitedb::Hierarchy::kDestination);
          !st.ok())
        return st;
    }
    dp.shared_in_site = shared_in;
    DPR_TRY(eligible, r.Bool(e, path, "eligible", true));
    dp.eligible = eligible;
    DPR_TRY(pkgs, r.Array(e, path, "packages", false));
    std::set<std::string> on_dp;
    for (size_t k = 0; k < pkgs->size(); ++k) {
      const json& pe = (*pkgs)[k];
      const std::string ppath = fmt::format("{}/packages/{}", path, k);
      if (!pe.is_object()) return r.Fail(ppath, "must be an object");
      if (auto st = r.OnlyKeys(pe, ppath, {"id", "location"}); !st.ok()) return st;
      DPR_TRY(id, r.String(pe, ppath, "id", true));
      if (!package_ids.count(id)) {
        return r.Fail(ppath + "/id", fmt::format("package '{}' is not in /packages", id));
      }
      if (!on_dp.insert(id).second) {
        return r.Fail(ppath + "/id", fmt::format("package '{}' is listed twice on this DP", id));
      }
      DPR_TRY(location, r.String(pe, ppath, "location", false, dp.share + "\\" + id));
      auto norm = NormaliseLocation(location);
      if (!norm.ok())
        return r.Fail(ppath + "/location",
                      fmt::format("'{}' {}", location, norm.status().message()));
      dp.packages.push_back({id, *norm});
    }
    inv.distribution_points.push_back(std::move(dp));
  }
  return inv;
}

}  // namespace dpr::controller
