// A thin, Status-returning layer over the SQLite C API: one connection,
// prepared statements with typed binds, and a transaction guard. Only
// sitedb uses it. With tracing on, every statement and its duration go to
// the log at debug level (the seed's "enable SQL tracing" advice).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace dpr::sitedb {

class SqliteDb;

// A prepared statement. Binds are 1-based, as in SQLite; Step() returns true
// while a row is available.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }
  Statement& BindNull(int index);

  // Runs one step: true with a row, false when done.
  absl::StatusOr<bool> Step();
  // Runs to completion (for statements that return no rows); the number of
  // rows changed.
  absl::StatusOr<int64_t> Run();

  int ParameterCount() const { return sqlite3_bind_parameter_count(stmt_); }
  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class SqliteDb;
  Statement(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_error_;
};

class SqliteDb {
 public:
  struct Options {
    bool create = true;
    int busy_timeout_ms = 10000;
    // Logger for SQL tracing (statement text and duration at debug level);
    // null: no tracing.
    std::shared_ptr<spdlog::logger> trace_logger;
    // A registered SQLite VFS by name; empty: the default. Tests use one that
    // loses unsynced writes (tests/support/crash_vfs.h).
    std::string vfs;
  };

  // Opens `path` with WAL, synchronous=FULL and foreign keys on.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                        const Options& options);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  absl::StatusOr<Statement> Prepare(std::string_view sql);
  // Runs one or more statements without results.
  absl::Status Exec(std::string_view sql);

  // The error of the last call, as a Status naming `what`.
  absl::Status Error(int rc, std::string_view what) const;
  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::shared_ptr<spdlog::logger> trace_logger_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit()
// was called. IMMEDIATE takes the write lock up front so two connections
// racing read-then-write (two admins starting the same job) serialise
// instead of failing with SQLITE_BUSY mid-transaction.
class Transaction {
 public:
  static absl::StatusOr<std::unique_ptr<Transaction>> Begin(SqliteDb& db);
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(SqliteDb& db) : db_(db) {}
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace dpr::sitedb
