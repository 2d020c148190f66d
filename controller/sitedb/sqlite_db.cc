#include "controller/sitedb/sqlite_db.h"

#include <utility>

#include "common/status/fmt_absl.h"
#include "fmt/format.h"

namespace dpr::sitedb {

namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

// SQLITE_TRACE_PROFILE gives the statement and its run time in ns once it
// finishes: exactly the "statement and its duration" line an admin wants.
int TraceCallback(unsigned type, void* context, void* p, void* x) {
  if (type != SQLITE_TRACE_PROFILE) return 0;
  auto* logger = static_cast<spdlog::logger*>(context);
  auto* stmt = static_cast<sqlite3_stmt*>(p);
  const auto ns = *static_cast<sqlite3_int64*>(x);
  char* sql = sqlite3_expanded_sql(stmt);
  logger->debug("SQL ({:.3f} ms): {}", static_cast<double>(ns) / 1e6,
                sql != nullptr ? sql : sqlite3_sql(stmt));
  sqlite3_free(sql);
  return 0;
}

}  // namespace

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_error_(std::move(other.bind_error_)) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding a value");
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding a value");
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding a value");
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, fmt::format("running '{}'", sqlite3_sql(stmt_)));
}

absl::StatusOr<int64_t> Statement::Run() {
  for (;;) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
  }
  return sqlite3_changes64(sqlite3_db_handle(stmt_));
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path,
                                                         const Options& options) {
  sqlite3* handle = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &handle, flags,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string why = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    return absl::Status(CodeFor(rc),
                        fmt::format("cannot open the site database '{}': {}", path, why));
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(handle, path));
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, options.busy_timeout_ms);
  if (options.trace_logger) {
    db->trace_logger_ = options.trace_logger;
    sqlite3_trace_v2(handle, SQLITE_TRACE_PROFILE, &TraceCallback, db->trace_logger_.get());
  }
  // journal_mode returns a row, so it cannot go through Exec's checks alone:
  // a database that refuses WAL (on a filesystem without shared memory)
  // must say so rather than silently run in another mode.
  auto wal = db->Prepare("PRAGMA journal_mode=WAL");
  if (!wal.ok()) return wal.status();
  auto row = wal->Step();
  if (!row.ok()) return row.status();
  if (!*row || wal->Text(0) != "wal") {
    return absl::FailedPreconditionError(fmt::format(
        "the site database '{}' cannot use WAL journaling (got '{}'); put the controller's data "
        "folder on a local filesystem",
        path, *row ? wal->Text(0) : std::string()));
  }
  if (auto st = db->Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"); !st.ok()) return st;
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

absl::StatusOr<Statement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, fmt::format("preparing '{}'", sql));
  return Statement(this, stmt);
}

absl::Status SqliteDb::Exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string why = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return absl::Status(CodeFor(rc), fmt::format("site database '{}': {}: {}", path_, text, why));
  }
  return absl::OkStatus();
}

absl::Status SqliteDb::Error(int rc, std::string_view what) const {
  return absl::Status(CodeFor(rc),
                      fmt::format("site database '{}': {}: {}", path_, what, sqlite3_errmsg(db_)));
}

absl::StatusOr<std::unique_ptr<Transaction>> Transaction::Begin(SqliteDb& db) {
  if (auto st = db.Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  return std::unique_ptr<Transaction>(new Transaction(db));
}

Transaction::~Transaction() {
  if (!done_) (void)db_.Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  auto st = db_.Exec("COMMIT");
  if (st.ok()) done_ = true;
  return st;
}

}  // namespace dpr::sitedb
