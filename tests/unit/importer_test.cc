// The importer against real temp folders: each mode stores every file once
// and the bytes read back through DataLib; legacy files go only when their
// package is committed (never for a kept package share); hostile packages
// fail alone and stay untouched; a re-run copies nothing again; and the
// library's remove and verify keep and check the references.
#include "agent/importer/importer.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "agent/contentlib/content_library.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr::importer {
namespace {

using contentlib::ContentId;
using contentlib::ContentLibrary;
using contentlib::VerifyProblem;
using ::dpr::testing::MakeTree;
using ::dpr::testing::ReadFile;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    legacy_ = dir_ / "legacy";
    content_ = dir_ / "content";
    fs::create_directories(legacy_);
    Reopen();
  }
  void Reopen() {
    lib_.reset();
    auto lib = ContentLibrary::Open(PosixFileSystem(), content_);
    ASSERT_TRUE(lib.ok()) << lib.status();
    lib_ = std::move(*lib);
  }
  std::vector<PackageSpec> Specs(const std::set<std::string>& keep = {}) {
    std::vector<PackageSpec> out;
    for (const auto& e : fs::directory_iterator(legacy_)) {
      const std::string id = e.path().filename().string();
      out.push_back({id, 1, e.path().string(), keep.count(id) > 0});
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.package_id < b.package_id; });
    return out;
  }
  absl::StatusOr<ImportSummary> Import(const std::vector<PackageSpec>& specs, ImportMode mode,
                                       ImportOptions options = {}) {
    options.mode = mode;
    if (options.jobs == 0) options.jobs = 3;
    events_.clear();
    return ImportPackages(*lib_, specs, options,
                          [&](const ImportEvent& e) { events_.push_back(e); });
  }
  // Every file of `corpus` ({pkg/rel: bytes}) reads back through DataLib.
  void ExpectReadsBack(const std::map<std::string, std::string>& corpus) {
    std::map<std::string, contentlib::ContentRecord> records;
    for (const auto& [path, data] : corpus) {
      const std::string pkg = path.substr(0, path.find('/'));
      const std::string rel = path.substr(path.find('/') + 1);
      if (!records.count(pkg)) {
        auto rec = lib_->Lookup({pkg, 1});
        ASSERT_TRUE(rec.ok()) << rec.status();
        records[pkg] = *rec;
      }
      const contentlib::FileRecord* found = nullptr;
      for (const auto& f : records[pkg].files) {
        if (f.rel_path == rel) found = &f;
      }
      ASSERT_NE(found, nullptr) << path;
      EXPECT_EQ(found->size, data.size()) << path;
      EXPECT_EQ(ReadFile(lib_->path() + "/" + contentlib::FileLibObject(ToHex(found->hash))), data)
          << path;
    }
  }
  static uint64_t UniqueBytes(const std::map<std::string, std::string>& corpus) {
    std::set<std::string> seen;
    uint64_t total = 0;
    for (const auto& [_, data] : corpus) {
      if (seen.insert(data).second) total += data.size();
    }
    return total;
  }
  static uint64_t TotalBytes(const std::map<std::string, std::string>& corpus) {
    uint64_t total = 0;
    for (const auto& [_, data] : corpus) total += data.size();
    return total;
  }
  ino_t Inode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  }
  std::vector<ImportEvent> Of(const std::string& pkg) {
    std::vector<ImportEvent> out;
    for (const auto& e : events_) {
      if (e.package_id == pkg) out.push_back(e);
    }
    return out;
  }

  dpr::testing::TempDir dir_;
  std::string legacy_, content_;
  std::unique_ptr<ContentLibrary> lib_;
  std::vector<ImportEvent> events_;
};

// One package per batch makes every flush overlap the next batch's copying:
// a duplicate staged while its twin is still being published is dropped and
// must count as deduplicated, not stored (found by the 2 GiB benchmark,
// where bytes_stored exceeded the corpus's unique bytes by 3%).
TEST_F(ImporterTest, OverlappingFlushesCountEachObjectStoredOnce) {
  auto corpus = dpr::testing::MakeCorpus(legacy_, 24, 12, 60000, /*seed=*/11);
  ImportOptions options;
  options.batch_packages = 1;
  auto summary = Import(Specs(), ImportMode::kCopy, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GT(summary->batches, 10u);
  EXPECT_EQ(summary->bytes_stored, UniqueBytes(corpus));
  EXPECT_EQ(summary->bytes_stored + summary->bytes_deduplicated, TotalBytes(corpus));
  uint64_t from_events = 0;
  for (const auto& e : events_) {
    if (e.kind == ImportEvent::Kind::kPackageDone) from_events += e.bytes_stored;
  }
  EXPECT_EQ(from_events, summary->bytes_stored);
  ExpectReadsBack(corpus);
}

TEST_F(ImporterTest, CopyModeStoresEachFileOnceAndRemovesLegacy) {
  auto corpus = dpr::testing::MakeCorpus(legacy_, 6, 25, 200000);
  auto summary = Import(Specs(), ImportMode::kCopy);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->packages_done, 6u);
  EXPECT_EQ(summary->packages_failed, 0u);
  EXPECT_EQ(summary->files, corpus.size());
  EXPECT_EQ(summary->bytes_stored, UniqueBytes(corpus));
  EXPECT_EQ(summary->bytes_stored + summary->bytes_deduplicated, TotalBytes(corpus));
  EXPECT_TRUE(fs::is_empty(legacy_));
  ExpectReadsBack(corpus);
  auto verify = lib_->Verify();
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok()) << verify->problems.front().path << ": "
                            << verify->problems.front().detail;
  EXPECT_EQ(verify->contents, 6u);
}

TEST_F(ImporterTest, LinkModeLinksTheLegacyInodes) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", std::string(5000, 'a')}, {"sub/b.bin", "bbb"}});
  const ino_t a = Inode(legacy_ + "/ABC00001/a.bin");
  auto summary = Import(Specs(), ImportMode::kLink);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto rec = lib_->Lookup({"ABC00001", 1});
  ASSERT_OK(rec);
  for (const auto& f : rec->files) {
    if (f.rel_path == "a.bin") {
      EXPECT_EQ(Inode(lib_->path() + "/" + contentlib::FileLibObject(ToHex(f.hash))), a);
    }
  }
  EXPECT_FALSE(fs::exists(legacy_ + "/ABC00001"));
  EXPECT_TRUE(lib_->Verify()->ok());
}

// Link mode links a file in without looking its object up first: a name
// already in FileLib must make the file a duplicate and leave that object,
// its inode and its reference list (with the earlier content) as they were.
TEST_F(ImporterTest, LinkModeIntoALibraryThatHoldsTheObjectAddsToItsUsers) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", "in the library already"}, {"b.bin", "first only"}});
  ASSERT_OK(Import(Specs(), ImportMode::kLink));
  const std::string object =
      lib_->path() + "/" + contentlib::FileLibObject(Sha256Hex("in the library already"));
  const ino_t before = Inode(object);
  // Two packages of the next run hold the same bytes: both meet the object
  // already in FileLib (one of them may meet the other's claim first).
  MakeTree(legacy_ + "/ABC00002", {{"c.bin", "in the library already"}, {"d.bin", "new bytes"}});
  MakeTree(legacy_ + "/ABC00003", {{"e.bin", "in the library already"}});
  auto summary = Import(Specs(), ImportMode::kLink);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->packages_done, 2u);  // ABC00001's folder went with run 1
  EXPECT_EQ(summary->bytes_stored, std::string("new bytes").size());
  EXPECT_EQ(summary->bytes_deduplicated, 2 * std::string("in the library already").size());
  EXPECT_EQ(Inode(object), before);
  const std::string users = ReadFile(object + ".INI");
  EXPECT_THAT(users, HasSubstr("ABC00001.1="));
  EXPECT_THAT(users, HasSubstr("ABC00002.1="));
  EXPECT_THAT(users, HasSubstr("ABC00003.1="));
  EXPECT_TRUE(fs::is_empty(legacy_));
  auto verify = lib_->Verify();
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok()) << verify->problems.front().path << ": "
                            << verify->problems.front().detail;
  // The first content's removal leaves the object to the other two.
  ASSERT_OK(lib_->RemoveContent({"ABC00001", 1}));
  EXPECT_EQ(ReadFile(object), "in the library already");
  EXPECT_TRUE(lib_->Verify()->ok());
}

TEST_F(ImporterTest, KeptShareAndHardLinkedFilesAreCopiedNotLinked) {
  MakeTree(legacy_ + "/ABC00001", {{"kept.bin", "kept bytes"}});
  MakeTree(legacy_ + "/ABC00002", {{"linked.bin", "hard linked bytes"}});
  ASSERT_EQ(::link((legacy_ + "/ABC00002/linked.bin").c_str(), (dir_ / "outside.bin").c_str()), 0);
  const ino_t kept = Inode(legacy_ + "/ABC00001/kept.bin");
  const ino_t linked = Inode(dir_ / "outside.bin");
  auto summary = Import(Specs({"ABC00001"}), ImportMode::kLink);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->packages_done, 2u);
  // The kept package share stays; the other legacy folder goes.
  EXPECT_EQ(ReadFile(legacy_ + "/ABC00001/kept.bin"), "kept bytes");
  EXPECT_FALSE(fs::exists(legacy_ + "/ABC00002"));
  EXPECT_EQ(ReadFile(dir_ / "outside.bin"), "hard linked bytes");
  for (const char* pkg : {"ABC00001", "ABC00002"}) {
    auto rec = lib_->Lookup({pkg, 1});
    ASSERT_OK(rec);
    const ino_t object =
        Inode(lib_->path() + "/" + contentlib::FileLibObject(ToHex(rec->files[0].hash)));
    EXPECT_NE(object, kept);
    EXPECT_NE(object, linked);
  }
  for (const auto& e : Of("ABC00001")) {
    if (e.kind == ImportEvent::Kind::kPackageDone) {
      EXPECT_FALSE(e.legacy_removed);
    }
  }
}

TEST_F(ImporterTest, RerunCopiesNothingAgain) {
  auto corpus = dpr::testing::MakeCorpus(legacy_, 3, 10, 50000);
  auto specs = Specs({"ABC00002"});
  ASSERT_TRUE(Import(specs, ImportMode::kCopy).ok());
  auto again = Import(specs, ImportMode::kCopy);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->packages_already, 3u);
  EXPECT_EQ(again->bytes_stored, 0u);
  EXPECT_EQ(again->bytes_read, 0u);
  for (const auto& e : events_) {
    EXPECT_EQ(e.kind, ImportEvent::Kind::kPackageDone);
    EXPECT_TRUE(e.already_done);
  }
}

// A re-run finishes the legacy clean-up of packages converted earlier, but
// removes only files the committed content holds as they are now: one grown
// since, one rewritten with its old size and time, and one added stay.
TEST_F(ImporterTest, ARerunRemovesOnlyLegacyFilesTheLibraryHolds) {
  const std::string pkg = legacy_ + "/ABC00001";
  MakeTree(pkg, {{"same.bin", "converted bytes"},
                 {"sub/grown.txt", "short"},
                 {"sub/swapped.bin", "0123456789"}});
  ASSERT_TRUE(Import(Specs({"ABC00001"}), ImportMode::kCopy).ok());  // the share is kept
  struct stat st {};
  ASSERT_EQ(::stat((pkg + "/sub/swapped.bin").c_str(), &st), 0);
  const struct timespec converted_times[2] = {st.st_atim, st.st_mtim};
  auto rewrite_swapped = [&](const char* bytes) {
    std::ofstream(pkg + "/sub/swapped.bin", std::ios::trunc) << bytes;
    ASSERT_EQ(::utimensat(AT_FDCWD, (pkg + "/sub/swapped.bin").c_str(), converted_times, 0), 0);
  };
  std::ofstream(pkg + "/sub/grown.txt", std::ios::app) << " and longer";
  rewrite_swapped("9876543210");
  std::ofstream(pkg + "/new.txt") << "added after the conversion";

  auto again = Import(Specs(), ImportMode::kCopy);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->packages_already, 1u);
  ASSERT_EQ(events_.size(), 1u);
  const ImportEvent& e = events_[0];
  EXPECT_TRUE(e.already_done);
  EXPECT_FALSE(e.legacy_removed);
  EXPECT_THAT(e.legacy_kept, HasSubstr("'sub/grown.txt' changed after it was converted"));
  EXPECT_THAT(e.legacy_kept, HasSubstr("'sub/swapped.bin' does not hash to its converted copy"));
  EXPECT_THAT(e.legacy_kept, HasSubstr("'new.txt' is not in the converted content"));
  EXPECT_FALSE(fs::exists(pkg + "/same.bin"));
  EXPECT_EQ(ReadFile(pkg + "/sub/grown.txt"), "short and longer");
  EXPECT_EQ(ReadFile(pkg + "/sub/swapped.bin"), "9876543210");
  EXPECT_EQ(ReadFile(pkg + "/new.txt"), "added after the conversion");

  // Once they are back as converted, the next run removes the folder.
  rewrite_swapped("0123456789");
  fs::remove(pkg + "/sub/grown.txt");
  fs::remove(pkg + "/new.txt");
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_TRUE(events_[0].legacy_removed) << events_[0].legacy_kept;
  EXPECT_FALSE(fs::exists(pkg));
}

// A folder the walk refuses (here a FIFO appeared in it) is left whole on a
// re-run, and the note says why.
TEST_F(ImporterTest, ARerunLeavesAFolderItCannotWalk) {
  const std::string pkg = legacy_ + "/ABC00001";
  MakeTree(pkg, {{"a.txt", "converted"}});
  ASSERT_TRUE(Import(Specs({"ABC00001"}), ImportMode::kCopy).ok());
  ASSERT_EQ(::mkfifo((pkg + "/pipe").c_str(), 0600), 0);
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_TRUE(events_[0].already_done);
  EXPECT_FALSE(events_[0].legacy_removed);
  EXPECT_THAT(events_[0].legacy_kept, HasSubstr("its folder could not be walked"));
  EXPECT_THAT(events_[0].legacy_kept, HasSubstr("pipe"));
  EXPECT_EQ(ReadFile(pkg + "/a.txt"), "converted");
}

// A legacy file written to after its package was imported, before the
// package's commit is durable and its legacy files go, is left in place:
// the library holds the bytes it had, not the ones it has. (In link mode
// the write reached the FileLib object too; the note says so.)
class ChangedAfterImport : public ImporterTest {
 protected:
  void Run(ImportMode mode) {
    a_ = legacy_ + "/ABC00001/a.txt";
    MakeTree(legacy_ + "/ABC00001", {{"a.txt", "as imported"}, {"b.txt", "untouched"}});
    MakeTree(legacy_ + "/ABC00002", {{"c.txt", "second package"}});
    // ABC00001 is a batch of its own, flushed before ABC00002 starts; its
    // legacy files go only once the next sync has made its commit durable.
    auto summary = ImportPackages(
        *lib_, Specs(), {.mode = mode, .jobs = 1, .batch_packages = 1}, [&](const ImportEvent& e) {
          if (e.kind == ImportEvent::Kind::kPackageStarted && e.package_id == "ABC00002") {
            std::ofstream(a_, std::ios::app) << ", then changed";
          }
          events_.push_back(e);
        });
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_done, 2u);
    EXPECT_EQ(summary->batches, 2u) << "ABC00002 joined the batch before it";
    auto one = Of("ABC00001");
    ASSERT_FALSE(one.empty());
    EXPECT_EQ(one.back().kind, ImportEvent::Kind::kPackageDone);
    EXPECT_FALSE(one.back().legacy_removed);
    kept_ = one.back().legacy_kept;
    EXPECT_EQ(ReadFile(a_), "as imported, then changed");
    EXPECT_FALSE(fs::exists(legacy_ + "/ABC00001/b.txt"));
    EXPECT_TRUE(Of("ABC00002").back().legacy_removed);
    EXPECT_FALSE(fs::exists(legacy_ + "/ABC00002"));
  }
  std::string a_, kept_;
};

TEST_F(ChangedAfterImport, CopyModeKeepsTheFile) {
  Run(ImportMode::kCopy);
  EXPECT_THAT(kept_, HasSubstr("'a.txt' changed after it was imported"));
  ExpectReadsBack({{"ABC00001/a.txt", "as imported"}, {"ABC00001/b.txt", "untouched"}});
}

TEST_F(ChangedAfterImport, LinkModeKeepsTheFileAndSaysItsObjectChanged) {
  Run(ImportMode::kLink);
  EXPECT_THAT(kept_, HasSubstr("'a.txt' changed after it was linked into FileLib"));
  auto v = lib_->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  // Its hash and both recorded sizes no longer match, all on a.txt's object.
  ASSERT_FALSE(v->problems.empty());
  auto rec = lib_->Lookup({"ABC00001", 1});
  ASSERT_TRUE(rec.ok()) << rec.status();
  std::string a_object;
  for (const auto& f : rec->files) {
    if (f.rel_path == "a.txt") a_object = contentlib::FileLibObject(ToHex(f.hash));
  }
  bool hash_mismatch = false;
  for (const auto& p : v->problems) {
    EXPECT_EQ(p.path, a_object) << p.detail;
    hash_mismatch |= p.kind == VerifyProblem::Kind::kHashMismatch;
  }
  EXPECT_TRUE(hash_mismatch);
}

TEST_F(ImporterTest, HostilePackageFailsAloneAndStaysUntouched) {
  MakeTree(legacy_ + "/ABC00001", {{"good.bin", "one"}});
  MakeTree(legacy_ + "/ABC00002", {{"fine.bin", "two"}});
  dpr::testing::MakeFile(dir_ / "secret", "outside the package");
  ASSERT_EQ(::symlink((dir_ / "secret").c_str(), (legacy_ + "/ABC00002/escape").c_str()), 0);
  MakeTree(legacy_ + "/ABC00003", {{"good.bin", "three"}});
  auto summary = Import(Specs(), ImportMode::kAuto);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->packages_done, 2u);
  EXPECT_EQ(summary->packages_failed, 1u);
  auto failed = Of("ABC00002");
  ASSERT_FALSE(failed.empty());
  EXPECT_EQ(failed.back().kind, ImportEvent::Kind::kPackageFailed);
  EXPECT_THAT(std::string(failed.back().error.message()), HasSubstr("'escape'"));
  EXPECT_EQ(ReadFile(legacy_ + "/ABC00002/fine.bin"), "two");
  EXPECT_TRUE(fs::is_symlink(legacy_ + "/ABC00002/escape"));
  EXPECT_EQ(ReadFile(dir_ / "secret"), "outside the package");
  EXPECT_FALSE(lib_->IsCommitted({"ABC00002", 1}).value());
  EXPECT_TRUE(lib_->IsCommitted({"ABC00003", 1}).value());
  EXPECT_TRUE(lib_->Verify()->ok());
}

// A rest of an eighth of a batch or less joins the batch before it rather
// than being flushed alone after the workers are done; a larger rest, or
// one too large by bytes, gets its own batch.
TEST_F(ImporterTest, AFewPackagesLeftJoinTheBatchBeforeThem) {
  auto corpus = dpr::testing::MakeCorpus(legacy_, 18, 4, 20000, /*seed=*/5);
  std::vector<PackageSpec> specs = Specs();
  ASSERT_EQ(specs.size(), 18u);
  struct Case {
    size_t packages;
    ImportOptions options;
    uint64_t batches;
  };
  const Case cases[] = {
      {17, {.batch_packages = 8}, 2u},                     // 8, then 8 + the last one
      {18, {.batch_packages = 8}, 3u},                     // 8, 8, and a rest of 2
      {17, {.batch_bytes = 1, .batch_packages = 8}, 17u},  // the last one's bytes: alone
  };
  int round = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << c.packages << " packages, batch_bytes " << c.options.batch_bytes);
    auto lib =
        ContentLibrary::Open(PosixFileSystem(), dir_ / ("content-" + std::to_string(++round)));
    ASSERT_OK(lib);
    std::vector<PackageSpec> some(specs.begin(), specs.begin() + c.packages);
    for (auto& s : some) s.keep_package_share = true;  // the next case reads them again
    ImportOptions options = c.options;
    options.mode = ImportMode::kCopy;
    options.jobs = 2;
    auto summary = ImportPackages(**lib, some, options, nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_done, c.packages);
    EXPECT_EQ(summary->batches, c.batches);
    auto verify = (*lib)->Verify();
    ASSERT_OK(verify);
    EXPECT_TRUE(verify->ok());
    EXPECT_EQ(verify->contents, c.packages);
  }
}

TEST_F(ImporterTest, ManySmallBatchesWithAFailureInTheMiddle) {
  // Every package is its own batch, so flushes overlap the next package; the
  // failed package's objects that nobody else uses are removed at the end.
  for (ImportMode mode : {ImportMode::kCopy, ImportMode::kLink}) {
    const std::string legacy = dir_ / ("legacy-" + std::string(ModeName(mode)));
    auto corpus = dpr::testing::MakeCorpus(legacy, 6, 12, 40000, /*seed=*/3);
    MakeTree(legacy + "/ABC00004", {{"only-mine.bin", "bytes no other package has"}});
    ASSERT_EQ(::mkfifo((legacy + "/ABC00004/pipe").c_str(), 0644), 0);
    auto lib =
        ContentLibrary::Open(PosixFileSystem(), dir_ / ("content-" + std::string(ModeName(mode))));
    ASSERT_OK(lib);
    std::vector<PackageSpec> specs;
    for (int i = 1; i <= 6; ++i) {
      const std::string id = "ABC0000" + std::to_string(i);
      specs.push_back({id, 1, legacy + "/" + id, false});
    }
    auto summary =
        ImportPackages(**lib, specs, {.mode = mode, .jobs = 2, .batch_packages = 1}, nullptr);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->packages_failed, 1u);  // ABC00004 holds a FIFO
    EXPECT_EQ(summary->packages_done, 5u);
    EXPECT_EQ(summary->batches, 5u);
    auto verify = (*lib)->Verify();
    ASSERT_OK(verify);
    for (const auto& p : verify->problems) ADD_FAILURE() << p.path << ": " << p.detail;
    EXPECT_EQ(verify->contents, 5u);
    EXPECT_FALSE(fs::exists((*lib)->path() + "/" +
                            contentlib::FileLibObject(Sha256Hex("bytes no other package has"))));
    for (const auto& [path, data] : corpus) {
      if (path.rfind("ABC00004/", 0) == 0) {
        EXPECT_EQ(ReadFile(legacy + "/" + path), data) << path;  // the failed one is untouched
      }
    }
  }
}

TEST_F(ImporterTest, BadPackageIdAndMissingFolderFailClearly) {
  MakeTree(legacy_ + "/not-a-package", {{"x", "x"}});
  auto summary = Import({{"not-a-package", 1, legacy_ + "/not-a-package", false},
                         {"ABC00009", 1, legacy_ + "/ABC00009", false}},
                        ImportMode::kCopy);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->packages_failed, 2u);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_THAT(std::string(events_[0].error.message()), HasSubstr("not a site code"));
  EXPECT_THAT(std::string(events_[1].error.message()), HasSubstr("ABC00009"));
  EXPECT_TRUE(fs::exists(legacy_ + "/not-a-package/x"));
}

TEST_F(ImporterTest, EventsTellEachPackagesStory) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", std::string(1000, 'a')}, {"b.bin", "bb"}});
  MakeTree(legacy_ + "/ABC00002", {{"a-again.bin", std::string(1000, 'a')}});
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy, {.jobs = 1}).ok());
  auto one = Of("ABC00001");
  ASSERT_GE(one.size(), 3u);
  EXPECT_EQ(one.front().kind, ImportEvent::Kind::kPackageStarted);
  EXPECT_EQ(one.front().files_total, 2u);
  EXPECT_EQ(one.front().bytes_total, 1002u);
  EXPECT_EQ(one.back().kind, ImportEvent::Kind::kPackageDone);
  EXPECT_EQ(one.back().files_done, 2u);
  EXPECT_EQ(one.back().bytes_done, 1002u);
  EXPECT_EQ(one.back().bytes_stored, 1002u);
  EXPECT_EQ(one.back().content_id, "ABC00001.1");
  EXPECT_TRUE(one.back().legacy_removed);
  bool progressed = false;
  for (const auto& e : one) progressed |= e.kind == ImportEvent::Kind::kPackageProgress;
  EXPECT_TRUE(progressed);
  auto two = Of("ABC00002");
  EXPECT_EQ(two.back().bytes_deduplicated, 1000u);
  EXPECT_EQ(two.back().bytes_stored, 0u);
}

TEST_F(ImporterTest, LinkModeAcrossFilesystemsIsRefusedAndAutoCopies) {
  struct stat tmp {
  }, shm{};
  if (::stat("/dev/shm", &shm) != 0 || ::stat(dir_.path().c_str(), &tmp) != 0 ||
      shm.st_dev == tmp.st_dev) {
    GTEST_SKIP() << "no second filesystem at /dev/shm";
  }
  dpr::testing::TempDir other;  // still on TMPDIR; put the legacy folder in /dev/shm
  const std::string shm_legacy = "/dev/shm/dprtest-legacy-" + std::to_string(::getpid());
  MakeTree(shm_legacy + "/ABC00001", {{"a.bin", "a"}});
  auto link = Import({{"ABC00001", 1, shm_legacy + "/ABC00001", false}}, ImportMode::kLink);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->packages_failed, 1u);
  EXPECT_THAT(std::string(events_.back().error.message()), HasSubstr("one filesystem"));
  auto autos = Import({{"ABC00001", 1, shm_legacy + "/ABC00001", false}}, ImportMode::kAuto);
  ASSERT_TRUE(autos.ok());
  EXPECT_EQ(autos->packages_done, 1u);
  fs::remove_all(shm_legacy);
}

TEST_F(ImporterTest, RemoveContentKeepsSharedObjects) {
  MakeTree(legacy_ + "/ABC00001", {{"shared.bin", "shared"}, {"own.bin", "only one"}});
  MakeTree(legacy_ + "/ABC00002", {{"shared.bin", "shared"}});
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  ASSERT_OK(lib_->RemoveContent({"ABC00001", 1}));
  EXPECT_FALSE(lib_->IsCommitted({"ABC00001", 1}).value());
  EXPECT_FALSE(fs::exists(lib_->path() + "/PkgLib/ABC00001.INI"));
  EXPECT_FALSE(fs::exists(lib_->path() + "/" + contentlib::FileLibObject(Sha256Hex("only one"))));
  const std::string shared = lib_->path() + "/" + contentlib::FileLibObject(Sha256Hex("shared"));
  EXPECT_EQ(ReadFile(shared), "shared");
  EXPECT_THAT(ReadFile(shared + ".INI"), HasSubstr("ABC00002.1="));
  EXPECT_THAT(ReadFile(shared + ".INI"), ::testing::Not(HasSubstr("ABC00001.1=")));
  EXPECT_TRUE(lib_->Verify()->ok());
}

TEST_F(ImporterTest, VerifyNamesEveryKindOfDamage) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", "aaaa"}, {"b.bin", "bbbb"}, {"c.bin", "cccc"}});
  MakeTree(legacy_ + "/ABC00002", {{"d.bin", "dddd"}});
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  const std::string lib = lib_->path() + "/";
  auto obj = [&](std::string_view data) {
    return lib + contentlib::FileLibObject(Sha256Hex(data));
  };
  dpr::testing::WriteFile(obj("aaaa"), "aaab");  // flipped byte
  dpr::testing::WriteFile(obj("bbbb"), "bb");    // truncated
  fs::remove(obj("cccc"));                       // missing
  dpr::testing::WriteFile(obj("dddd") + ".INI", "[File]\r\nSize=4\r\n[Users]\r\nXYZ00001.1=\r\n");
  auto result = lib_->Verify();
  ASSERT_OK(result);
  std::map<VerifyProblem::Kind, std::string> found;
  for (const auto& p : result->problems) found[p.kind] += p.path + ";";
  EXPECT_THAT(found[VerifyProblem::Kind::kHashMismatch], HasSubstr(Sha256Hex("aaaa")));
  EXPECT_THAT(found[VerifyProblem::Kind::kSizeMismatch], HasSubstr(Sha256Hex("bbbb")));
  EXPECT_THAT(found[VerifyProblem::Kind::kMissingObject], HasSubstr(Sha256Hex("cccc")));
  EXPECT_THAT(found[VerifyProblem::Kind::kDanglingReference], HasSubstr(Sha256Hex("dddd")));
  EXPECT_THAT(found[VerifyProblem::Kind::kMissingReference], HasSubstr(Sha256Hex("dddd")));
  // Without re-hashing, the flipped byte goes unseen but references do not.
  auto quick = lib_->Verify(/*rehash=*/false);
  ASSERT_OK(quick);
  for (const auto& p : quick->problems) EXPECT_NE(p.kind, VerifyProblem::Kind::kHashMismatch);
  EXPECT_FALSE(quick->ok());
}

// Verify reads contents 64 and objects 1,024 at a time on several threads:
// a library of 70 contents and 1,400 objects (two chunks of each) is
// checked whole, each object counted and hashed once, and damage wherever
// it falls is found and named.
TEST_F(ImporterTest, VerifyChecksEveryChunkOfALargeLibrary) {
  std::vector<std::string> files;
  for (int p = 1; p <= 70; ++p) {
    std::map<std::string, std::string> tree;
    for (int f = 0; f < 20; ++f) {
      std::string data = fmt::format("package {} file {}", p, f);
      tree[fmt::format("sub{}/f{}.bin", f % 3, f)] = data;
      files.push_back(std::move(data));
    }
    MakeTree(legacy_ + fmt::format("/ABC{:05X}", p), tree);
  }
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  std::vector<contentlib::VerifyProgress> reports;
  auto clean =
      lib_->Verify(true, [&](const contentlib::VerifyProgress& p) { reports.push_back(p); });
  ASSERT_OK(clean);
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->contents, 70u);
  EXPECT_EQ(clean->objects, 1400u);
  uint64_t bytes = 0;
  for (const auto& f : files) bytes += f.size();
  EXPECT_EQ(clean->bytes_hashed, bytes);
  // A report after each chunk: 64 + 6 contents, then 1,024 + 376 objects.
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_EQ(reports[0].contents_done, 64u);
  EXPECT_EQ(reports[0].contents_total, 70u);
  EXPECT_EQ(reports[2].objects_expected, 1400u);
  EXPECT_EQ(reports[2].bytes_expected, bytes);
  EXPECT_LT(reports[2].bytes_hashed, bytes);
  EXPECT_EQ(reports[3].contents_done, 70u);
  EXPECT_EQ(reports[3].objects_done, 1400u);
  EXPECT_EQ(reports[3].bytes_hashed, bytes);

  // A flipped object, an object without its reference list, and a content
  // that lost a file INI.
  std::vector<std::string> hashes;
  for (const auto& f : files) hashes.push_back(Sha256Hex(f));
  std::sort(hashes.begin(), hashes.end());
  const std::string lib = lib_->path() + "/";
  dpr::testing::WriteFile(lib + contentlib::FileLibObject(hashes.back()), "flipped");
  fs::remove(lib + contentlib::FileLibObject(hashes[hashes.size() - 2]) + ".INI");
  fs::remove(lib + "DataLib/ABC00046.1/sub0/f0.bin.INI");
  auto result = lib_->Verify();
  ASSERT_OK(result);
  std::map<VerifyProblem::Kind, std::string> found;
  for (const auto& p : result->problems) found[p.kind] += p.path + ";";
  EXPECT_THAT(found[VerifyProblem::Kind::kHashMismatch], HasSubstr(hashes.back()));
  EXPECT_THAT(found[VerifyProblem::Kind::kBadIni], HasSubstr(hashes[hashes.size() - 2]));
  EXPECT_THAT(found[VerifyProblem::Kind::kContentHashMismatch], HasSubstr("ABC00046.1"));
  EXPECT_EQ(result->objects, 1400u);

  // A caller that is gone (the agent's client left) stops it after the
  // chunk at hand instead of reading the library to the end.
  size_t chunks = 0;
  auto stopped = lib_->Verify(
      true, [&](const contentlib::VerifyProgress&) { ++chunks; }, [&] { return chunks >= 1; });
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled) << stopped.status();
  EXPECT_EQ(chunks, 1u);
}

// Verify keeps few files open whatever the library's size: a chunk of
// 1,024 objects spans as many prefix folders, more than the usual limit of
// 1,024 open files once the library's own are counted (a hand-run
// `dp-agent verify` has that limit). Here it must pass with a limit of a few
// files per verify thread above what the test already holds.
TEST_F(ImporterTest, VerifyKeepsFewFilesOpen) {
  for (int p = 1; p <= 55; ++p) {
    std::map<std::string, std::string> tree;
    for (int f = 0; f < 20; ++f) tree[fmt::format("f{}.bin", f)] = fmt::format("{}/{}", p, f);
    MakeTree(legacy_ + fmt::format("/ABC{:05X}", p), tree);
  }
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  const size_t open_now = std::distance(fs::directory_iterator("/proc/self/fd"), {});
  const rlim_t spare = 3 * std::max(8u, std::thread::hardware_concurrency()) + 16;
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  struct rlimit low = old_limit;
  low.rlim_cur = std::min<rlim_t>(old_limit.rlim_cur, open_now + spare);
  ASSERT_LT(low.rlim_cur, 1000u) << "the test needs a limit below a chunk's prefix folders";
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto result = lib_->Verify();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  ASSERT_OK(result);
  EXPECT_TRUE(result->ok());
  EXPECT_EQ(result->objects, 1100u);
}

// A package of many folders (a driver pack) needs no descriptor per folder:
// its folders are opened along the path to the one at hand, so it converts
// and its legacy folder goes under a file limit well below its folder count.
// (The queue of files for the workers may hold a folder each, up to 256.)
TEST_F(ImporterTest, AWidePackageConvertsAndGoesUnderALowFileLimit) {
  std::map<std::string, std::string> tree;
  for (int d = 0; d < 700; ++d) tree[fmt::format("drivers/d{}/x.inf", d)] = fmt::format("{}", d);
  MakeTree(legacy_ + "/ABC00001", tree);
  const size_t open_now = std::distance(fs::directory_iterator("/proc/self/fd"), {});
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  struct rlimit low = old_limit;
  low.rlim_cur = std::min<rlim_t>(old_limit.rlim_cur, open_now + 256 + 100);
  ASSERT_LT(low.rlim_cur, 700u) << "the test needs a limit below the package's folder count";
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto summary = Import(Specs(), ImportMode::kLink);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->packages_done, 1u);
  EXPECT_EQ(summary->files, 700u);
  EXPECT_FALSE(fs::exists(legacy_ + "/ABC00001")) << "the legacy folder was left";
  EXPECT_TRUE(lib_->Verify()->ok());
}

TEST_F(ImporterTest, OpenSweepsTempsLeftByACrash) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", "a"}});
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  dpr::testing::MakeFile(lib_->path() + "/FileLib/.stage.dprtmp.1.2", "half");
  fs::create_directories(lib_->path() + "/DataLib/.ABC00002.1.dprtmp.1.3/sub");
  dpr::testing::MakeFile(
      lib_->path() + "/FileLib/" + Sha256Hex("a").substr(0, 4) + "/.x.INI.dprtmp.1.4", "");
  Reopen();
  EXPECT_FALSE(fs::exists(lib_->path() + "/FileLib/.stage.dprtmp.1.2"));
  EXPECT_FALSE(fs::exists(lib_->path() + "/DataLib/.ABC00002.1.dprtmp.1.3"));
  EXPECT_FALSE(
      fs::exists(lib_->path() + "/FileLib/" + Sha256Hex("a").substr(0, 4) + "/.x.INI.dprtmp.1.4"));
  EXPECT_TRUE(lib_->Verify()->ok());
}

// One writer at a time: a second one would sweep the first one's temp files
// as crash leftovers and rewrite reference lists under it. Readers share;
// a repair turns its read lock into the write lock only when alone.
TEST_F(ImporterTest, TheLibraryHasOneWriterOrManyReaders) {
  MakeTree(legacy_ + "/ABC00001", {{"a.bin", "a"}});
  ASSERT_TRUE(Import(Specs(), ImportMode::kCopy).ok());
  const std::string staged = lib_->path() + "/FileLib/.stage.dprtmp.1.2";
  dpr::testing::MakeFile(staged, "being written by the open library");
  auto second = ContentLibrary::Open(PosixFileSystem(), content_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("is in use by another process"));
  EXPECT_TRUE(fs::exists(staged)) << "a refused writer swept the other one's temp file";
  auto reader = ContentLibrary::OpenExisting(PosixFileSystem(), content_);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kUnavailable);

  lib_.reset();
  auto r1 = ContentLibrary::OpenExisting(PosixFileSystem(), content_);
  auto r2 = ContentLibrary::OpenExisting(PosixFileSystem(), content_);
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(ContentLibrary::Open(PosixFileSystem(), content_).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ((*r1)->LockForWriting().code(), absl::StatusCode::kUnavailable);
  r1->reset();
  EXPECT_OK((*r2)->LockForWriting());
  r2->reset();
  Reopen();  // the writer again, and its sweep
  EXPECT_FALSE(fs::exists(staged));
}

}  // namespace
}  // namespace dpr::importer
