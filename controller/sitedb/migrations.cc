#include "controller/sitedb/migrations.h"

#include <string>

#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::sitedb {

namespace {

// Migration N takes the schema from user_version N-1 to N. Never edit one
// that has shipped: add the next.
constexpr const char* kMigrations[] = {
    // 1: the tables of SITE_DATABASE.md.
    R"sql(
CREATE TABLE Sites (
  SiteCode   TEXT PRIMARY KEY,
  SiteName   TEXT NOT NULL,
  Hierarchy  TEXT NOT NULL CHECK (Hierarchy IN ('source', 'destination')),
  Version    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE SysResList (
  ID         INTEGER PRIMARY KEY AUTOINCREMENT,
  RoleName   TEXT NOT NULL,
  ServerName TEXT NOT NULL COLLATE NOCASE,
  SiteCode   TEXT NOT NULL REFERENCES Sites(SiteCode),
  NALPath    TEXT NOT NULL,
  UNIQUE (RoleName, ServerName, SiteCode)
);
CREATE TABLE DistributionPoints (
  DPID          INTEGER PRIMARY KEY AUTOINCREMENT,
  ServerName    TEXT NOT NULL COLLATE NOCASE,
  NALPath       TEXT NOT NULL UNIQUE,
  SMSSiteCode   TEXT NOT NULL REFERENCES Sites(SiteCode),
  ShareName     TEXT NOT NULL DEFAULT 'SMSPKGD$',
  DPDrive       TEXT NOT NULL DEFAULT '',
  MinFreeSpace  INTEGER NOT NULL DEFAULT 0,
  IsPeerDP      INTEGER NOT NULL DEFAULT 0,
  IsActive      INTEGER NOT NULL DEFAULT 1,
  AgentEndpoint TEXT NOT NULL DEFAULT ''
);
CREATE INDEX DistributionPoints_Server ON DistributionPoints(ServerName);
CREATE TABLE MigrationDP (
  ID                 INTEGER PRIMARY KEY AUTOINCREMENT,
  NALPath            TEXT NOT NULL,
  ServerName         TEXT NOT NULL COLLATE NOCASE,
  SiteCode           TEXT NOT NULL REFERENCES Sites(SiteCode),
  AttachingSiteCode  TEXT NOT NULL REFERENCES Sites(SiteCode),
  EligibleForUpgrade INTEGER NOT NULL DEFAULT 1,
  HostedPackageNum   INTEGER NOT NULL DEFAULT 0,
  MBytesPackageSize  INTEGER NOT NULL DEFAULT 0,
  IsUpgraded         INTEGER NOT NULL DEFAULT 0,
  UNIQUE (ServerName, SiteCode)
);
CREATE TABLE Packages (
  PkgID            TEXT PRIMARY KEY,
  Name             TEXT NOT NULL,
  SourceVersion    INTEGER NOT NULL,
  SourceSite       TEXT NOT NULL REFERENCES Sites(SiteCode),
  KeepPackageShare INTEGER NOT NULL DEFAULT 0,
  Bytes            INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE PkgServers (
  PkgID       TEXT NOT NULL REFERENCES Packages(PkgID),
  NALPath     TEXT NOT NULL,
  SiteCode    TEXT NOT NULL,
  SiteName    TEXT NOT NULL DEFAULT '',
  SourceSite  TEXT NOT NULL,
  LastRefresh TEXT NOT NULL DEFAULT '',
  Action      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (PkgID, NALPath)
);
CREATE INDEX PkgServers_NAL ON PkgServers(NALPath);
CREATE TABLE PkgStatus (
  ID            TEXT NOT NULL REFERENCES Packages(PkgID),
  Type          INTEGER NOT NULL,
  SiteCode      TEXT NOT NULL,
  PkgServer     TEXT NOT NULL,
  Status        INTEGER NOT NULL DEFAULT 0,
  UpdateTime    TEXT NOT NULL DEFAULT '',
  Location      TEXT NOT NULL DEFAULT '',
  SourceVersion INTEGER NOT NULL DEFAULT 1,
  State         INTEGER NOT NULL DEFAULT 0,
  BytesConverted INTEGER NOT NULL DEFAULT 0,
  LastError     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (ID, Type, PkgServer)
);
CREATE INDEX PkgStatus_Server ON PkgStatus(PkgServer);
CREATE TABLE ContentDPMap (
  ContentID  TEXT NOT NULL,
  Version    INTEGER NOT NULL,
  ServerName TEXT NOT NULL COLLATE NOCASE,
  NALPath    TEXT NOT NULL,
  SiteCode   TEXT NOT NULL,
  AccessType INTEGER NOT NULL DEFAULT 1,
  State      INTEGER NOT NULL DEFAULT 0,
  URL        TEXT NOT NULL DEFAULT '',
  URLSubPath TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (ContentID, NALPath)
);
CREATE INDEX ContentDPMap_NAL ON ContentDPMap(NALPath);
CREATE TABLE DPUpgradeStatus (
  JobID               INTEGER PRIMARY KEY AUTOINCREMENT,
  DPID                INTEGER NOT NULL UNIQUE,
  NewDPID             INTEGER,
  ServerName          TEXT NOT NULL COLLATE NOCASE,
  NALPath             TEXT NOT NULL,
  SourceNALPath       TEXT NOT NULL,
  SourceSiteCode      TEXT NOT NULL,
  DestinationSiteCode TEXT NOT NULL,
  AgentEndpoint       TEXT NOT NULL DEFAULT '',
  ShareName           TEXT NOT NULL DEFAULT 'SMSPKGD$',
  Status              INTEGER NOT NULL DEFAULT 0 CHECK (Status BETWEEN 0 AND 4),
  Step                INTEGER NOT NULL DEFAULT 1 CHECK (Step BETWEEN 1 AND 9),
  LastError           TEXT NOT NULL DEFAULT '',
  StartTime           TEXT NOT NULL DEFAULT '',
  EndTime             TEXT NOT NULL DEFAULT '',
  PackagesTotal       INTEGER NOT NULL DEFAULT 0,
  PackagesConverted   INTEGER NOT NULL DEFAULT 0,
  BytesTotal          INTEGER NOT NULL DEFAULT 0,
  BytesDone           INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE StatusMessages (
  RecordID  INTEGER PRIMARY KEY AUTOINCREMENT,
  JobID     INTEGER,
  MessageID INTEGER NOT NULL,
  Severity  TEXT NOT NULL CHECK (Severity IN ('I', 'W', 'E')),
  Component TEXT NOT NULL,
  Time      TEXT NOT NULL,
  DPID      INTEGER,
  PkgID     TEXT NOT NULL DEFAULT '',
  Text      TEXT NOT NULL
);
CREATE INDEX StatusMessages_Job ON StatusMessages(JobID, RecordID);
)sql",
};

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

absl::Status ApplyMigrations(SqliteDb& db) {
  ASSIGN_OR_RETURN(auto stmt, db.Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  const int current = row ? static_cast<int>(stmt.Int(0)) : 0;
  if (current > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(fmt::format(
        "the site database '{}' has schema version {}, newer than this dp-controller knows ({}); "
        "run the dp-controller that wrote it",
        db.path(), current, LatestSchemaVersion()));
  }
  for (int v = current + 1; v <= LatestSchemaVersion(); ++v) {
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db));
    RETURN_IF_ERROR(Annotate(db.Exec(kMigrations[v - 1]), fmt::format("migration {}", v)));
    RETURN_IF_ERROR(db.Exec(fmt::format("PRAGMA user_version = {}", v)));
    RETURN_IF_ERROR(tx->Commit());
  }
  return absl::OkStatus();
}

}  // namespace dpr::sitedb
