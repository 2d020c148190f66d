// A SQLite VFS for power-loss tests ("dpr-crash"), as SQLite's own crash
// tests work: each file's writes and truncations are held in memory, as in
// a disk cache, until the file is synced; reads see them. CrashAfter(n)
// makes the n+1-th write or sync from now on fail, and every file
// operation after it; PowerLoss() then drops whatever was never synced, so
// the files on disk are exactly what a machine losing power at that
// instant would keep. Wraps the default (unix) VFS; the shared-memory
// wal-index is passed through (SQLite rebuilds it from the WAL when the
// first connection opens the database after the crash).
#pragma once

#include <cstdint>

namespace dpr::testing::crash_vfs {

inline constexpr const char* kName = "dpr-crash";

void Register();                     // once per process; idempotent
void Reset();                        // forget pending data, no crash armed, count 0
void CrashAfter(int64_t mutations);  // writes + syncs allowed from now on
bool Crashed();
int64_t Mutations();  // writes + syncs seen since Reset()
void PowerLoss();     // drop unsynced data; the VFS works again

}  // namespace dpr::testing::crash_vfs
