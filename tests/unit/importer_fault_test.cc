// The importer's promises under faults, through the fault-injecting
// filesystem: a crash at every mutating call followed by power loss (both
// models) leaves each legacy file either untouched or durably in the
// library, and a re-run completes with a clean verify; ENOSPC, a failed
// rename and a failed sync stop the run with a clear error, leave no temp
// file and no legacy file touched, and a later run succeeds.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"
#include "common/fs/durable_file.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fault_file_system.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr::importer {
namespace {

using contentlib::ContentLibrary;
using ::dpr::testing::FaultFileSystem;
using ::dpr::testing::ReadFile;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
using Model = FaultFileSystem::PowerLossModel;

constexpr size_t kDefaultBuffer = ImportOptions{}.buffer_bytes;
// A worker buffer smaller than the 300 kB cab: it is streamed, and in a
// fresh library copied while it is hashed (the single pass).
constexpr size_t kSmallBuffer = 64 << 10;

// Four small packages: shared files across them, an empty file, a nested
// folder, and one package that keeps its package share.
const std::map<std::string, std::string>& Fixture() {
  static const auto* files = new std::map<std::string, std::string>{
      {"ABC00001/setup.exe", "setup bytes"},
      {"ABC00001/x64/shared.dll", "shared between packages"},
      {"ABC00001/empty.txt", ""},
      {"ABC00002/shared.dll", "shared between packages"},
      {"ABC00002/data/big.cab", std::string(300000, 'c')},
      {"ABC00003/kept.msi", "kept package share"},
      {"ABC00004/readme.txt", "setup bytes"},
  };
  return *files;
}

class Site {
 public:
  Site() {
    legacy_ = dir_ / "legacy";
    content_ = dir_ / "content";
    fs::create_directories(dir_ / "scratch");
    dpr::testing::MakeTree(legacy_, Fixture());
  }
  std::vector<PackageSpec> Specs() const {
    std::vector<PackageSpec> out;
    for (const char* id : {"ABC00001", "ABC00002", "ABC00003", "ABC00004"}) {
      out.push_back({id, 1, legacy_ + "/" + id, std::string(id) == "ABC00003"});
    }
    return out;
  }
  absl::StatusOr<ImportSummary> Import(FileSystem* fs, ImportMode mode, size_t batch_packages = 128,
                                       size_t buffer_bytes = kDefaultBuffer) {
    auto lib = ContentLibrary::Open(fs, content_);
    if (!lib.ok()) return lib.status();
    return ImportPackages(
        **lib, Specs(),
        {.mode = mode, .jobs = 2, .batch_packages = batch_packages, .buffer_bytes = buffer_bytes},
        nullptr);
  }
  uint64_t LegacyBytes() const {
    uint64_t n = 0;
    for (const auto& [_, data] : Fixture()) n += data.size();
    return n;
  }
  // Each legacy file is intact where its package is not committed, and
  // readable from the library where it is.
  void CheckNothingLost(const std::string& when) {
    auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), content_);
    for (const auto& [path, data] : Fixture()) {
      const std::string pkg = path.substr(0, path.find('/'));
      const std::string rel = path.substr(path.find('/') + 1);
      bool committed = lib.ok() && (*lib)->IsCommitted({pkg, 1}).value_or(false);
      if (!committed) {
        EXPECT_EQ(ReadFile(legacy_ + "/" + path), data) << when << ": legacy " << path;
        EXPECT_TRUE(fs::exists(legacy_ + "/" + path)) << when << ": legacy " << path;
        continue;
      }
      auto rec = (*lib)->Lookup({pkg, 1});
      ASSERT_TRUE(rec.ok()) << when << ": " << rec.status();
      bool found = false;
      for (const auto& f : rec->files) {
        if (f.rel_path != rel) continue;
        found = true;
        EXPECT_EQ(ReadFile((*lib)->path() + "/" + contentlib::FileLibObject(ToHex(f.hash))), data)
            << when << ": library " << path;
      }
      EXPECT_TRUE(found) << when << ": " << path << " missing from DataLib";
    }
  }
  void CheckNoTemps(const std::string& when) {
    if (!fs::exists(content_)) return;
    for (const auto& e : fs::recursive_directory_iterator(content_)) {
      EXPECT_FALSE(IsTempName(e.path().filename().string())) << when << ": " << e.path();
    }
  }
  void CheckFinished(const std::string& when) {
    auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), content_);
    ASSERT_TRUE(lib.ok()) << when;
    auto v = (*lib)->Verify();
    ASSERT_TRUE(v.ok()) << when;
    for (const auto& p : v->problems) ADD_FAILURE() << when << ": " << p.path << ": " << p.detail;
    EXPECT_EQ(v->contents, 4u) << when;
    CheckNothingLost(when);
    std::set<std::string> left;
    for (const auto& e : fs::directory_iterator(legacy_)) left.insert(e.path().filename().string());
    EXPECT_EQ(left, std::set<std::string>{"ABC00003"}) << when;
  }

  dpr::testing::TempDir dir_;
  std::string legacy_, content_;
};

// batch_packages = 1 makes every package its own batch, so each flush runs
// while the next package is being imported.
void CrashEverywhere(ImportMode mode, Model model, size_t batch_packages = 128,
                     size_t buffer_bytes = kDefaultBuffer) {
  int64_t total = 0;
  {
    Site site;
    FaultFileSystem fault(site.dir_ / "scratch");
    auto summary = site.Import(&fault, mode, batch_packages, buffer_bytes);
    ASSERT_TRUE(summary.ok()) << summary.status();
    total = fault.mutations();
    site.CheckFinished("uninterrupted");
  }
  ASSERT_GT(total, 20);
  for (int64_t k = 1; k <= total; ++k) {
    const std::string when = fmt::format("crash at mutation {}/{}", k, total);
    Site site;
    {
      FaultFileSystem fault(site.dir_ / "scratch");
      fault.CrashAfter(k);
      auto summary = site.Import(&fault, mode, batch_packages, buffer_bytes);
      if (!fault.crashed()) {
        // With overlapping flushes the count of calls varies a little between
        // runs; past the end there is nothing to crash and the run finished.
        ASSERT_TRUE(summary.ok()) << when << ": " << summary.status();
        site.CheckFinished(when + " (no crash: the run had fewer calls)");
        continue;
      }
      fault.PowerLoss(model);
    }
    site.CheckNothingLost(when + ", after power loss");
    auto rerun = site.Import(PosixFileSystem(), mode, 128, buffer_bytes);
    ASSERT_TRUE(rerun.ok()) << when << ": " << rerun.status();
    EXPECT_EQ(rerun->packages_failed, 0u) << when;
    site.CheckFinished(when + ", after the re-run");
    site.CheckNoTemps(when + ", after the re-run");
    if (::testing::Test::HasFailure()) return;
  }
  // The figure RELIABILITY.md row 6 reports.
  std::printf("power loss after each of %lld mutating calls: every state checked\n",
              static_cast<long long>(total));
}

TEST(ImporterCrashTest, CopyModeDropUnsynced) {
  CrashEverywhere(ImportMode::kCopy, Model::kDropUnsynced);
}
TEST(ImporterCrashTest, CopyModeKeepNamesLoseBytes) {
  CrashEverywhere(ImportMode::kCopy, Model::kKeepNames);
}
TEST(ImporterCrashTest, LinkModeDropUnsynced) {
  CrashEverywhere(ImportMode::kLink, Model::kDropUnsynced);
}
TEST(ImporterCrashTest, LinkModeKeepNamesLoseBytes) {
  CrashEverywhere(ImportMode::kLink, Model::kKeepNames);
}

// These two stream the cab through a small buffer: copied while hashed in
// the first run, hashed first in the re-run (the library is no longer empty).
TEST(ImporterCrashTest, CopyModeOverlappingFlushesKeepNames) {
  CrashEverywhere(ImportMode::kCopy, Model::kKeepNames, 1, kSmallBuffer);
}
TEST(ImporterCrashTest, LinkModeOverlappingFlushesDropUnsynced) {
  CrashEverywhere(ImportMode::kLink, Model::kDropUnsynced, 1);
}
// Legacy files are removed only after a sync that made their package's
// commit durable (the next batch's first sync, or the last one): with
// removals that outrun unsynced renames, removing them any earlier loses
// files here.
TEST(ImporterCrashTest, LinkModeOverlappingFlushesKeepRemovals) {
  CrashEverywhere(ImportMode::kLink, Model::kKeepRemovals, 1);
}
TEST(ImporterCrashTest, CopyModeOverlappingFlushesKeepRemovals) {
  CrashEverywhere(ImportMode::kCopy, Model::kKeepRemovals, 1, kSmallBuffer);
}

void DiskFull(size_t buffer_bytes) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  fault.SetWriteBudget(100000);  // less than the 300 kB cab
  auto summary = site.Import(&fault, ImportMode::kCopy, 128, buffer_bytes);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("is full: need"));
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr(site.content_));
  site.CheckNoTemps("after ENOSPC");
  site.CheckNothingLost("after ENOSPC");
  fault.SetWriteBudget(-1);
  ASSERT_TRUE(site.Import(&fault, ImportMode::kCopy).ok());
  site.CheckFinished("after space was freed");
}
TEST(ImporterFaultTest, DiskFullStopsCleanlyAndResumesLater) { DiskFull(kDefaultBuffer); }
// The disk fills during a single-pass copy, before the object is claimed.
TEST(ImporterFaultTest, DiskFullDuringASinglePassCopyStopsCleanly) { DiskFull(kSmallBuffer); }

// Running out of open files has the status code of a full disk; the admin
// must be told which it is, and nothing may be lost either way.
TEST(ImporterFaultTest, OutOfOpenFilesIsNotCalledAFullDisk) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  fault.FailCreatesOf("/DataLib/", EMFILE);
  auto summary = site.Import(&fault, ImportMode::kCopy);
  ASSERT_FALSE(summary.ok());
  const std::string message(summary.status().message());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(message, HasSubstr("out of open files"));
  EXPECT_THAT(message, HasSubstr("Too many open files"));
  EXPECT_THAT(message, HasSubstr("ulimit -n"));
  EXPECT_THAT(message, Not(HasSubstr("is full")));
  site.CheckNoTemps("after running out of open files");
  site.CheckNothingLost("after running out of open files");
  fault.FailCreatesOf("", 0);
  ASSERT_TRUE(site.Import(&fault, ImportMode::kCopy).ok());
  site.CheckFinished("after the limit was raised");
}

TEST(ImporterFaultTest, FailedRenameStopsCleanly) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  fault.FailRenamesTo("/FileLib/");
  auto summary = site.Import(&fault, ImportMode::kCopy);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("rename"));
  site.CheckNoTemps("after a failed rename");
  site.CheckNothingLost("after a failed rename");
  fault.FailRenamesTo("");
  ASSERT_TRUE(site.Import(&fault, ImportMode::kCopy).ok());
  site.CheckFinished("after the rename works again");
}

TEST(ImporterFaultTest, FailedSyncPublishesNothing) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  {
    auto lib = ContentLibrary::Open(&fault, site.content_);
    ASSERT_TRUE(lib.ok());
    fault.FailSyncs(EIO);
    auto summary =
        ImportPackages(**lib, site.Specs(), {.mode = ImportMode::kCopy, .jobs = 2}, nullptr);
    ASSERT_FALSE(summary.ok());
    EXPECT_THAT(std::string(summary.status().message()), HasSubstr("syncfs"));
    EXPECT_FALSE((*lib)->IsCommitted({"ABC00001", 1}).value());
  }
  site.CheckNoTemps("after a failed sync");
  site.CheckNothingLost("after a failed sync");
  fault.FailSyncs(0);
  ASSERT_TRUE(site.Import(&fault, ImportMode::kCopy).ok());
  site.CheckFinished("after syncs work again");
}

// The first file of `package` is one object whose reference list names both
// ABC00001.1 and ABC00002.1, and verify finds no problem.
void ExpectOneObjectOfBoth(const std::string& content, const std::string& package) {
  auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), content);
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto rec = (*lib)->Lookup({package, 1});
  ASSERT_TRUE(rec.ok()) << rec.status();
  const std::string list =
      ReadFile((*lib)->path() + "/" + contentlib::FileLibIni(ToHex(rec->files.at(0).hash)));
  EXPECT_THAT(list, HasSubstr("ABC00001.1"));
  EXPECT_THAT(list, HasSubstr("ABC00002.1"));
  auto v = (*lib)->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  for (const auto& p : v->problems) ADD_FAILURE() << p.path << ": " << p.detail;
}

// A flush publishing a copied object overlaps the next batch's workers. A
// worker that links the same bytes meanwhile must take them as stored by
// that flush: before, both claimed the object, the later flush wrote its
// reference list afresh, and the first content vanished from it (so removing
// the second content would have deleted bytes the first still uses). Found
// reading the code; slow syncs make the overlap certain here.
TEST(ImporterFaultTest, ALinkDuringTheFlushOfTheSameObjectKeepsBothUsers) {
  dpr::testing::TempDir dir;
  const std::string legacy = dir / "legacy", content = dir / "content";
  fs::create_directories(dir / "scratch");
  const std::string bytes(70000, 's');
  // The kept package share is copied, the other package linked.
  dpr::testing::MakeTree(legacy, {{"ABC00001/kept.bin", bytes}, {"ABC00002/same.bin", bytes}});
  FaultFileSystem fault(dir / "scratch");
  fault.SlowSyncs(100);
  {
    auto lib = ContentLibrary::Open(&fault, content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    const std::vector<PackageSpec> specs = {{"ABC00001", 1, legacy + "/ABC00001", true},
                                            {"ABC00002", 1, legacy + "/ABC00002", false}};
    auto summary = ImportPackages(
        **lib, specs, {.mode = ImportMode::kLink, .jobs = 2, .batch_packages = 1}, nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_done, 2u);
    EXPECT_EQ(summary->bytes_stored, bytes.size());
    EXPECT_EQ(summary->bytes_deduplicated, bytes.size());
  }
  ExpectOneObjectOfBoth(content, "ABC00002");
}

// Large copies are written with O_DIRECT; a filesystem that refuses such a
// write only when it happens gets the same bytes through the page cache.
TEST(ImporterFaultTest, RefusedDirectWritesFallBackToBufferedOnes) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  fault.RefuseDirectWrites();
  auto summary = site.Import(&fault, ImportMode::kCopy);
  ASSERT_TRUE(summary.ok()) << summary.status();
  site.CheckFinished("with direct writes refused");
}

// In a fresh library a file larger than the buffer, first of its size, is
// read and hashed once: copied while it is hashed.
TEST(ImporterFaultTest, ALargeNewFileIsReadOnce) {
  Site site;
  FaultFileSystem fault(site.dir_ / "scratch");
  auto summary = site.Import(&fault, ImportMode::kCopy, 128, kSmallBuffer);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(fault.bytes_read(), site.LegacyBytes());
  site.CheckFinished("single pass");
}

// Once the library holds objects, a large file may be one of them: it is
// hashed first and, being there already, not copied again.
TEST(ImporterFaultTest, ALargeFileAlreadyInTheLibraryIsNotCopiedAgain) {
  Site site;
  ASSERT_TRUE(site.Import(PosixFileSystem(), ImportMode::kCopy).ok());
  const std::string cab = Fixture().at("ABC00002/data/big.cab");
  dpr::testing::MakeTree(site.legacy_, {{"ABC00005/again.cab", cab}});
  FaultFileSystem fault(site.dir_ / "scratch");
  auto lib = ContentLibrary::Open(&fault, site.content_);
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto summary =
      ImportPackages(**lib, {{"ABC00005", 1, site.legacy_ + "/ABC00005", false}},
                     {.mode = ImportMode::kCopy, .jobs = 2, .buffer_bytes = kSmallBuffer}, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->bytes_stored, 0u);
  EXPECT_EQ(summary->bytes_deduplicated, cab.size());
  EXPECT_LT(fault.bytes_written(), cab.size()) << "the cab was copied again";
}

struct TwoLargeFiles {
  TwoLargeFiles() {
    fs::create_directories(dir / "scratch");
    dpr::testing::MakeTree(legacy, {{"ABC00001/a.cab", bytes}, {"ABC00002/b.cab", bytes}});
  }
  std::vector<PackageSpec> Specs() const {
    return {{"ABC00001", 1, legacy + "/ABC00001", false},
            {"ABC00002", 1, legacy + "/ABC00002", false}};
  }
  // Calls fn before each read of ABC00001/a.cab.
  std::function<void(int, uint64_t)> OnReadsOfA(std::function<void(uint64_t)> fn) {
    struct stat a {};
    EXPECT_EQ(::stat((legacy + "/ABC00001/a.cab").c_str(), &a), 0);
    return [a, fn](int fd, uint64_t offset) {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && st.st_ino == a.st_ino && st.st_dev == a.st_dev) fn(offset);
    };
  }
  // Imports both packages through `fs`: ABC00001 alone fails, a.cab having
  // changed while it was copied.
  void ExpectOnlyAFailsAsChanged(FileSystem* fs) {
    std::vector<ImportEvent> failed;
    auto lib = ContentLibrary::Open(fs, content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    auto summary = ImportPackages(
        **lib, Specs(), {.mode = ImportMode::kCopy, .jobs = 2, .buffer_bytes = kSmallBuffer},
        [&](const ImportEvent& e) {
          if (e.kind == ImportEvent::Kind::kPackageFailed) failed.push_back(e);
        });
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_done, 1u);
    EXPECT_EQ(summary->packages_failed, 1u);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].package_id, "ABC00001");
    EXPECT_THAT(std::string(failed[0].error.message()), HasSubstr("changed while being copied"));
  }
  void CheckNoTemps() {
    for (const auto& e : fs::recursive_directory_iterator(content)) {
      EXPECT_FALSE(IsTempName(e.path().filename().string())) << e.path();
    }
  }
  dpr::testing::TempDir dir;
  const std::string legacy = dir / "legacy", content = dir / "content";
  const std::string bytes = std::string(300000, 'x');
};

// a.cab is copied while hashed, b.cab (same size) hashed first. With a.cab's
// reads slowed, b.cab is claimed first: a.cab's copy turns out to be a
// duplicate and is dropped, leaving one object used by both contents.
TEST(ImporterFaultTest, ASinglePassCopyThatTurnsOutADuplicateIsDropped) {
  TwoLargeFiles t;
  FaultFileSystem fault(t.dir / "scratch");
  fault.BeforeReads(
      t.OnReadsOfA([](uint64_t) { std::this_thread::sleep_for(std::chrono::milliseconds(60)); }));
  {
    auto lib = ContentLibrary::Open(&fault, t.content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    auto summary = ImportPackages(
        **lib, t.Specs(), {.mode = ImportMode::kCopy, .jobs = 2, .buffer_bytes = kSmallBuffer},
        nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_done, 2u);
    EXPECT_EQ(summary->bytes_stored, t.bytes.size());
    EXPECT_EQ(summary->bytes_deduplicated, t.bytes.size());
  }
  EXPECT_GE(fault.bytes_written(), 2 * t.bytes.size())
      << "the race this test is about did not happen";
  t.CheckNoTemps();
  ExpectOneObjectOfBoth(t.content, "ABC00001");
}

// A copy's next block is read and hashed while the block before it is being
// written: the first write of a.cab's copy is held until the second block's
// read has begun, which never happens if the worker waits for its writes.
TEST(ImporterFaultTest, ACopyReadsTheNextBlockWhileTheLastOneIsWritten) {
  TwoLargeFiles t;
  fs::remove_all(t.legacy + "/ABC00002");
  std::mutex mu;
  std::condition_variable cv;
  uint64_t highest_read = 0;
  bool held = false, overlapped = false;
  FaultFileSystem fault(t.dir / "scratch");
  fault.BeforeReads(t.OnReadsOfA([&](uint64_t offset) {
    std::lock_guard<std::mutex> lock(mu);
    highest_read = std::max(highest_read, offset);
    cv.notify_all();
  }));
  fault.BeforeWrites([&](int, uint64_t offset, size_t n) {
    if (offset != 0 || n < 4096) return;  // the first block of a copy, not an INI
    std::unique_lock<std::mutex> lock(mu);
    if (held) return;
    held = true;
    overlapped = cv.wait_for(lock, std::chrono::seconds(5), [&] { return highest_read >= n; });
  });
  {
    auto lib = ContentLibrary::Open(&fault, t.content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    auto summary = ImportPackages(
        **lib, {t.Specs()[0]}, {.mode = ImportMode::kCopy, .jobs = 1, .buffer_bytes = kSmallBuffer},
        nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->bytes_stored, t.bytes.size());
  }
  EXPECT_TRUE(held) << "a.cab was not copied in blocks";
  EXPECT_TRUE(overlapped) << "the second block was read only after the first was written";
  t.CheckNoTemps();
}

// A file read whole is written from one half of the buffer while the worker
// reads the next file into the other: the first file's write is held until
// the second file's read has begun.
TEST(ImporterFaultTest, AWholeFileIsWrittenWhileTheNextFileIsRead) {
  dpr::testing::TempDir dir;
  const std::string legacy = dir / "legacy", content = dir / "content";
  fs::create_directories(dir / "scratch");
  // Over kDirectMin (128 KiB), under half the buffer: written directly.
  dpr::testing::MakeTree(legacy, {{"ABC00001/a.bin", std::string(200000, 'a')},
                                  {"ABC00001/b.bin", std::string(200000, 'b')}});
  {
    int probe = ::open((legacy + "/ABC00001/a.bin").c_str(), O_RDONLY | O_DIRECT);
    if (probe < 0) GTEST_SKIP() << "no O_DIRECT on " << legacy;
    ::close(probe);
  }
  std::set<ino_t> legacy_files;
  for (const char* name : {"a.bin", "b.bin"}) {
    struct stat st {};
    ASSERT_EQ(::stat((legacy + "/ABC00001/" + name).c_str(), &st), 0);
    legacy_files.insert(st.st_ino);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::set<ino_t> read;
  bool held = false, overlapped = false;
  FaultFileSystem fault(dir / "scratch");
  fault.BeforeReads([&](int fd, uint64_t) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || legacy_files.count(st.st_ino) == 0) return;
    std::lock_guard<std::mutex> lock(mu);
    read.insert(st.st_ino);
    cv.notify_all();
  });
  fault.BeforeWrites([&](int, uint64_t offset, size_t n) {
    if (offset != 0 || n < 4096) return;  // a copy's bytes, not an INI
    std::unique_lock<std::mutex> lock(mu);
    if (held) return;
    held = true;
    overlapped = cv.wait_for(lock, std::chrono::seconds(5), [&] { return read.size() == 2; });
  });
  {
    auto lib = ContentLibrary::Open(&fault, content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    auto summary =
        ImportPackages(**lib, {{"ABC00001", 1, legacy + "/ABC00001", false}},
                       {.mode = ImportMode::kCopy, .jobs = 1, .buffer_bytes = 1 << 20}, nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->bytes_stored, 400000u);
  }
  EXPECT_TRUE(held) << "no copy was written";
  EXPECT_TRUE(overlapped) << "the next file was read only after the first was written";
  auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), content);
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_TRUE((*lib)->IsCommitted({"ABC00001", 1}).value());
  EXPECT_FALSE(fs::exists(legacy + "/ABC00001"));
}

// A file that grows while it is copied in one pass fails its own package
// only: its copy is dropped and its legacy folder left alone.
TEST(ImporterFaultTest, AFileChangedDuringASinglePassCopyFailsOnlyItsPackage) {
  TwoLargeFiles t;
  dpr::testing::MakeTree(t.legacy, {{"ABC00002/b.cab", "now another size"}});
  const std::string a = t.legacy + "/ABC00001/a.cab";
  FaultFileSystem fault(t.dir / "scratch");
  fault.BeforeReads(t.OnReadsOfA([a](uint64_t offset) {
    if (offset != 2 * kSmallBuffer) return;
    std::ofstream out(a, std::ios::binary | std::ios::app);
    out << "appended meanwhile";
  }));
  t.ExpectOnlyAFailsAsChanged(&fault);
  EXPECT_EQ(ReadFile(a), t.bytes + "appended meanwhile");
  t.CheckNoTemps();
  auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), t.content);
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_FALSE((*lib)->IsCommitted({"ABC00001", 1}).value());
  auto v = (*lib)->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->objects, 1u);
  for (const auto& p : v->problems) ADD_FAILURE() << p.path << ": " << p.detail;
}

// Into a library that already holds objects, a large file is hashed first
// and copied only if new. Rewritten between the two passes, its copy no
// longer hashes to the name it was claimed under: as no other file took the
// object as stored, only its package fails; the copy is dropped and the
// legacy file keeps its new bytes.
TEST(ImporterFaultTest, AFileChangedBetweenHashAndCopyFailsOnlyItsPackage) {
  TwoLargeFiles t;
  dpr::testing::MakeTree(t.legacy, {{"ABC00002/b.cab", "now another size"},
                                    {"ABC00003/earlier.txt", "already converted"}});
  {
    auto lib = ContentLibrary::Open(PosixFileSystem(), t.content);
    ASSERT_TRUE(lib.ok()) << lib.status();
    auto first = ImportPackages(**lib, {{"ABC00003", 1, t.legacy + "/ABC00003", false}},
                                {.mode = ImportMode::kCopy}, nullptr);
    ASSERT_TRUE(first.ok()) << first.status();
  }
  const std::string a = t.legacy + "/ABC00001/a.cab";
  int first_block_reads = 0;
  FaultFileSystem fault(t.dir / "scratch");
  fault.BeforeReads(t.OnReadsOfA([&](uint64_t offset) {
    if (offset != 0 || ++first_block_reads != 2) return;  // the copy pass begins
    std::fstream out(a, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(1000);
    out << "rewritten meanwhile";
  }));
  t.ExpectOnlyAFailsAsChanged(&fault);
  ASSERT_EQ(first_block_reads, 2) << "a.cab was not read in two passes";
  std::string now = t.bytes;
  now.replace(1000, std::strlen("rewritten meanwhile"), "rewritten meanwhile");
  EXPECT_EQ(ReadFile(a), now);
  t.CheckNoTemps();
  auto lib = ContentLibrary::OpenExisting(PosixFileSystem(), t.content);
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_FALSE((*lib)->IsCommitted({"ABC00001", 1}).value());
  EXPECT_TRUE((*lib)->IsCommitted({"ABC00002", 1}).value());
  auto v = (*lib)->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->objects, 2u);
  for (const auto& p : v->problems) ADD_FAILURE() << p.path << ": " << p.detail;
}

}  // namespace
}  // namespace dpr::importer
