// Reads a site database file into comparable text, for tests that check a
// resumed run leaves exactly what an uninterrupted one does. Timestamps and
// the history table (which records the restarts themselves) are left out.
#pragma once

#include <sqlite3.h>

#include <set>
#include <string>
#include <vector>

namespace dpr::testing {

inline std::string DumpSiteDb(const std::string& path) {
  static const std::set<std::string> kSkipColumns = {"StartTime", "EndTime", "UpdateTime",
                                                     "LastRefresh", "Time"};
  static const std::vector<std::string> kTables = {
      "Sites",      "SysResList", "DistributionPoints", "MigrationDP",    "Packages",
      "PkgServers", "PkgStatus",  "ContentDPMap",       "DPUpgradeStatus"};
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open " + path;
  }
  std::string out;
  for (const auto& table : kTables) {
    out += "== " + table + "\n";
    sqlite3_stmt* stmt = nullptr;
    std::string sql = "SELECT * FROM " + table + " ORDER BY 1, 2, 3, 4";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      out += std::string("error: ") + sqlite3_errmsg(db) + "\n";
      continue;
    }
    std::vector<std::string> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (kSkipColumns.count(sqlite3_column_name(stmt, c))) continue;
        const auto* text = sqlite3_column_text(stmt, c);
        row += std::string(sqlite3_column_name(stmt, c)) + "=" +
               (text ? reinterpret_cast<const char*>(text) : "NULL") + " ";
      }
      out += row + "\n";
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

}  // namespace dpr::testing
