// Numbered schema migrations, applied in order at start-up. The schema
// version lives in SQLite's user_version; each migration and its version
// bump commit together, so a crash leaves the schema at a known version.
#pragma once

#include "absl/status/status.h"
#include "controller/sitedb/sqlite_db.h"

namespace dpr::sitedb {

int LatestSchemaVersion();
absl::Status ApplyMigrations(SqliteDb& db);

}  // namespace dpr::sitedb
