// How long UpgradeDistributionPoint (step 7, one transaction) takes for a DP
// holding N packages, with other DPs' rows in the same tables so the
// indexes matter. Runs the rewrite back and forth `--rounds` times on one
// database and prints each duration and the median.
//
//   build/tests/upgrade_dp_bench [--packages 10000] [--other-dps 4] [--rounds 5] [--dir DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/nal/nal_path.h"
#include "controller/sitedb/site_store.h"
#include "fmt/format.h"

using namespace dpr;

int main(int argc, char** argv) {
  int packages = 10000;
  int other_dps = 4;
  int rounds = 5;
  std::string dir = fmt::format("/tmp/upgrade_dp_bench.{}", ::getpid());
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--packages")
      packages = std::atoi(argv[i + 1]);
    else if (a == "--other-dps")
      other_dps = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (a == "--dir")
      dir = argv[i + 1];
  }
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/site.db");
  auto store = sitedb::OpenSqliteSiteStore({.path = dir + "/site.db"});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  sitedb::Inventory inv;
  inv.sites = {{"S07", "old", sitedb::Hierarchy::kSource, ""},
               {"P01", "new", sitedb::Hierarchy::kDestination, ""}};
  for (int p = 0; p < packages; ++p) {
    inv.packages.push_back(
        {fmt::format("S07{:05X}", p), fmt::format("Package {}", p), 1, "S07", false, 1 << 20});
  }
  for (int d = 0; d <= other_dps; ++d) {
    sitedb::InventoryDp dp;
    dp.dpid = 10 + d;
    dp.server = fmt::format("DP{:02}.CONTOSO.COM", d);
    dp.site = "S07";
    dp.agent_endpoint = "127.0.0.1:1";
    dp.roles = {sitedb::kRoleSiteSystem, sitedb::kRoleDistributionPoint};
    dp.shared_in_site = "P01";
    for (int p = 0; p < packages; ++p) {
      dp.packages.push_back({fmt::format("S07{:05X}", p), fmt::format("SMSPKGD$\\S07{:05X}", p)});
    }
    inv.distribution_points.push_back(std::move(dp));
  }
  auto t0 = std::chrono::steady_clock::now();
  if (auto c = (*store)->ImportInventory(inv); !c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    return 1;
  }
  const double import_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "database: %d DP(s) x %d packages (%d rows in each of PkgServers, PkgStatus, "
      "ContentDPMap); import %.2f s\n",
      other_dps + 1, packages, (other_dps + 1) * packages, import_s);
  const std::string a = FormatNalPath(SiteSystemNal("DP00.CONTOSO.COM", "S07"));
  const std::string b = FormatNalPath(SiteSystemNal("DP00.CONTOSO.COM", "P01"));
  std::vector<double> ms;
  for (int r = 0; r < rounds; ++r) {
    const bool forward = r % 2 == 0;
    auto start = std::chrono::steady_clock::now();
    auto changes = (*store)->UpgradeDistributionPoint(forward ? a : b, forward ? b : a,
                                                      forward ? "P01" : "S07");
    const double t =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!changes.ok()) {
      std::fprintf(stderr, "%s\n", changes.status().ToString().c_str());
      return 1;
    }
    int64_t rows = 0;
    for (const auto& c : *changes) rows += c.rows;
    std::printf("round %d: %lld rows rewritten in %.1f ms\n", r + 1, static_cast<long long>(rows),
                t);
    if (rows != 3LL * packages) {
      std::fprintf(stderr, "expected %d rows\n", 3 * packages);
      return 1;
    }
    ms.push_back(t);
  }
  // And the idempotent replay: nothing to rewrite.
  auto start = std::chrono::steady_clock::now();
  auto replay = (*store)->UpgradeDistributionPoint(rounds % 2 ? a : b, rounds % 2 ? b : a, "P01");
  const double replay_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::sort(ms.begin(), ms.end());
  std::printf(
      "UpgradeDistributionPoint, %d packages: median %.1f ms (min %.1f, max %.1f); "
      "replay with nothing to change %.1f ms\n",
      packages, ms[ms.size() / 2], ms.front(), ms.back(), replay_ms);
  if (!replay.ok()) return 1;

  // Step 8's bookkeeping: one RecordPackageDone per package (each its own
  // transaction, as the agent reports packages), on a fresh job for DP01.
  auto job = (*store)->CreateJob(11, "P01", "t");
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
    return 1;
  }
  for (int step = 1; step <= 7; ++step) {
    if (auto c = (*store)->CommitStep(job->job.job_id, step, "t"); !c.ok()) {
      std::fprintf(stderr, "step %d: %s\n", step, c.status().ToString().c_str());
      return 1;
    }
  }
  start = std::chrono::steady_clock::now();
  for (int p = 0; p < packages; ++p) {
    if (auto st =
            (*store)->RecordPackageDone(job->job.job_id, fmt::format("S07{:05X}", p), 1 << 20, "t");
        !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  const double record_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto done = (*store)->GetJob(job->job.job_id);
  std::printf("RecordPackageDone x %d: %.2f s (%.2f ms each); job shows %lld converted\n", packages,
              record_s, record_s * 1000 / packages,
              static_cast<long long>((*done)->packages_converted));
  std::filesystem::remove_all(dir);
  return (*done)->packages_converted == packages ? 0 : 1;
}
