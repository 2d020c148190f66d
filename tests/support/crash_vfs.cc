#include "tests/support/crash_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dpr::testing::crash_vfs {
namespace {

struct Op {
  bool truncate = false;
  int64_t offset = 0;  // write offset, or the new size
  std::string data;
};

// Unsynced operations by file path: a closed file's unsynced data is still
// only in the "cache" until synced by someone or lost.
struct State {
  std::mutex mu;
  std::map<std::string, std::vector<Op>> pending;
  int64_t mutations = 0;
  int64_t limit = -1;  // -1: never crash
  bool crashed = false;
} g;

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;

struct File {
  sqlite3_file base;
  std::string* path;  // owned
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};
File* Cast(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

// Counts a write or sync; false (and crashed from now on) past the limit.
bool Allow() {
  if (g.crashed) return false;
  ++g.mutations;
  if (g.limit >= 0 && g.mutations > g.limit) {
    g.crashed = true;
    return false;
  }
  return true;
}

int64_t LogicalSize(File* f, int64_t real_size) {
  int64_t size = real_size;
  for (const Op& op : g.pending[*f->path]) {
    size = op.truncate ? op.offset : std::max<int64_t>(size, op.offset + op.data.size());
  }
  return size;
}

int xClose(sqlite3_file* f) {
  File* file = Cast(f);
  int rc = file->real()->pMethods ? file->real()->pMethods->xClose(file->real()) : SQLITE_OK;
  delete file->path;
  return rc;
}

int xRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.crashed) return SQLITE_IOERR_READ;
  File* file = Cast(f);
  sqlite3_int64 real_size = 0;
  int rc = file->real()->pMethods->xFileSize(file->real(), &real_size);
  if (rc != SQLITE_OK) return rc;
  rc = file->real()->pMethods->xRead(file->real(), buf, amt, off);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  char* out = static_cast<char*>(buf);
  int64_t size = real_size;
  for (const Op& op : g.pending[*file->path]) {
    if (op.truncate) {
      size = op.offset;
      for (int64_t i = std::max<int64_t>(op.offset, off); i < off + amt; ++i) out[i - off] = 0;
      continue;
    }
    const int64_t lo = std::max<int64_t>(off, op.offset);
    const int64_t hi = std::min<int64_t>(off + amt, op.offset + op.data.size());
    if (lo < hi) std::memcpy(out + (lo - off), op.data.data() + (lo - op.offset), hi - lo);
    size = std::max<int64_t>(size, op.offset + op.data.size());
  }
  if (off + amt > size) {
    for (int64_t i = std::max<int64_t>(size, off); i < off + amt; ++i) out[i - off] = 0;
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int xWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (!Allow()) return SQLITE_IOERR_WRITE;
  g.pending[*Cast(f)->path].push_back(
      {false, off, std::string(static_cast<const char*>(buf), amt)});
  return SQLITE_OK;
}

int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (!Allow()) return SQLITE_IOERR_TRUNCATE;
  g.pending[*Cast(f)->path].push_back({true, size, {}});
  return SQLITE_OK;
}

int xSync(sqlite3_file* f, int flags) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (!Allow()) return SQLITE_IOERR_FSYNC;
  File* file = Cast(f);
  auto& ops = g.pending[*file->path];
  for (const Op& op : ops) {
    int rc = op.truncate
                 ? file->real()->pMethods->xTruncate(file->real(), op.offset)
                 : file->real()->pMethods->xWrite(file->real(), op.data.data(),
                                                  static_cast<int>(op.data.size()), op.offset);
    if (rc != SQLITE_OK) return rc;
  }
  ops.clear();
  return file->real()->pMethods->xSync(file->real(), flags);
}

int xFileSize(sqlite3_file* f, sqlite3_int64* out) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.crashed) return SQLITE_IOERR_FSTAT;
  File* file = Cast(f);
  sqlite3_int64 real_size = 0;
  int rc = file->real()->pMethods->xFileSize(file->real(), &real_size);
  if (rc != SQLITE_OK) return rc;
  *out = LogicalSize(file, real_size);
  return SQLITE_OK;
}

// The rest pass through to the real file.
int xLock(sqlite3_file* f, int l) { return Cast(f)->real()->pMethods->xLock(Cast(f)->real(), l); }
int xUnlock(sqlite3_file* f, int l) {
  return Cast(f)->real()->pMethods->xUnlock(Cast(f)->real(), l);
}
int xCheckReservedLock(sqlite3_file* f, int* out) {
  return Cast(f)->real()->pMethods->xCheckReservedLock(Cast(f)->real(), out);
}
int xFileControl(sqlite3_file* f, int op, void* arg) {
  return Cast(f)->real()->pMethods->xFileControl(Cast(f)->real(), op, arg);
}
int xSectorSize(sqlite3_file* f) { return Cast(f)->real()->pMethods->xSectorSize(Cast(f)->real()); }
int xDeviceCharacteristics(sqlite3_file* f) {
  return Cast(f)->real()->pMethods->xDeviceCharacteristics(Cast(f)->real());
}
int xShmMap(sqlite3_file* f, int pg, int sz, int extend, void volatile** p) {
  return Cast(f)->real()->pMethods->xShmMap(Cast(f)->real(), pg, sz, extend, p);
}
int xShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Cast(f)->real()->pMethods->xShmLock(Cast(f)->real(), offset, n, flags);
}
void xShmBarrier(sqlite3_file* f) { Cast(f)->real()->pMethods->xShmBarrier(Cast(f)->real()); }
int xShmUnmap(sqlite3_file* f, int del) {
  return Cast(f)->real()->pMethods->xShmUnmap(Cast(f)->real(), del);
}

const sqlite3_io_methods kMethods = {2,
                                     xClose,
                                     xRead,
                                     xWrite,
                                     xTruncate,
                                     xSync,
                                     xFileSize,
                                     xLock,
                                     xUnlock,
                                     xCheckReservedLock,
                                     xFileControl,
                                     xSectorSize,
                                     xDeviceCharacteristics,
                                     xShmMap,
                                     xShmLock,
                                     xShmBarrier,
                                     xShmUnmap,
                                     nullptr,
                                     nullptr};

int xOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  File* file = Cast(f);
  file->base.pMethods = nullptr;
  int rc = g_real->xOpen(g_real, name, file->real(), flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  file->path = new std::string(name != nullptr ? name : "");
  file->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int xDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  {
    std::lock_guard<std::mutex> lock(g.mu);
    if (!Allow()) return SQLITE_IOERR_DELETE;
    g.pending.erase(name);
  }
  return g_real->xDelete(g_real, name, sync_dir);
}

}  // namespace

void Register() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    g_vfs = *g_real;
    g_vfs.iVersion = std::min(g_real->iVersion, 3);
    g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
    g_vfs.zName = kName;
    g_vfs.pNext = nullptr;
    g_vfs.xOpen = xOpen;
    g_vfs.xDelete = xDelete;
    sqlite3_vfs_register(&g_vfs, 0);
  });
}

void Reset() {
  std::lock_guard<std::mutex> lock(g.mu);
  g.pending.clear();
  g.mutations = 0;
  g.limit = -1;
  g.crashed = false;
}

void CrashAfter(int64_t mutations) {
  std::lock_guard<std::mutex> lock(g.mu);
  g.mutations = 0;
  g.limit = mutations;
}

bool Crashed() {
  std::lock_guard<std::mutex> lock(g.mu);
  return g.crashed;
}

int64_t Mutations() {
  std::lock_guard<std::mutex> lock(g.mu);
  return g.mutations;
}

void PowerLoss() {
  std::lock_guard<std::mutex> lock(g.mu);
  g.pending.clear();
  g.crashed = false;
  g.limit = -1;
}

}  // namespace dpr::testing::crash_vfs
