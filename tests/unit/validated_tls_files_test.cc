// The checked copies gRPC reads (ValidatedTlsFiles): a rotation is seen
// whole or not at all by a reader that reads the way gRPC's file watcher
// does, and a broken pair never reaches the copies.
#include "common/grpc/validated_tls_files.h"

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fs/durable_file.h"
#include "common/pki/pki.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

// gRPC 1.51 FileWatcherCertificateProvider::ReadIdentityKeyCertPairFromFiles:
// mtimes (whole seconds) of key and certificate, read both, mtimes again;
// the pair is taken when neither mtime moved.
struct GrpcLikeRead {
  bool taken = false;
  std::string key, cert;
};

int64_t Mtime(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_mtime : 0;
}

GrpcLikeRead ReadLikeGrpc(const TlsFiles& files) {
  GrpcLikeRead r;
  const int64_t key_before = Mtime(files.key), cert_before = Mtime(files.cert);
  if (key_before == 0 || cert_before == 0) return r;
  auto key = ReadFileToString(files.key);
  auto cert = ReadFileToString(files.cert);
  if (!key.ok() || !cert.ok()) return r;
  if (Mtime(files.key) != key_before || Mtime(files.cert) != cert_before) return r;
  r.taken = true;
  r.key = *key;
  r.cert = *cert;
  return r;
}

class ValidatedTlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    auto ca = CreateCa({});
    ASSERT_OK(ca);
    ca_ = *ca;
    for (int i = 0; i < 3; ++i) {
      auto pair = IssueCertificate(ca_, {.role = Role::kController, .name = "site01.contoso.com"});
      ASSERT_OK(pair);
      pairs_.push_back(*pair);
    }
    source_ = {dir_ + "/site.crt", dir_ + "/site.key", dir_ + "/ca.crt", 0};
    ASSERT_OK(WriteFileDurably(source_.ca, ca_.cert_pem));
    Put(pairs_[0]);
  }
  // As an admin would: each file replaced by rename, the key first.
  void Put(const KeyAndCert& pair) {
    ASSERT_OK(WriteFileDurably(source_.key, pair.key_pem, {.mode = 0600}));
    ASSERT_OK(WriteFileDurably(source_.cert, pair.cert_pem));
  }
  testing::TempDir tmp_;
  std::string dir_;
  KeyAndCert ca_;
  std::vector<KeyAndCert> pairs_;
  TlsFiles source_;
};

TEST_F(ValidatedTlsFilesTest, ARotationIsNeverReadAsHalfOldHalfNew) {
  auto v = ValidatedTlsFiles::Start(source_, dir_ + "/active");
  ASSERT_OK(v);
  const TlsFiles active = (*v)->active();
  std::atomic<bool> stop{false};
  std::atomic<int> taken{0}, mismatched{0};
  std::thread reader([&] {
    while (!stop) {
      auto r = ReadLikeGrpc(active);
      if (!r.taken) continue;
      ++taken;
      if (!CheckKeyMatchesCert(r.key, r.cert).ok()) ++mismatched;
    }
  });
  const int kRotations = 150;
  for (int i = 1; i <= kRotations; ++i) {
    Put(pairs_[i % pairs_.size()]);
    (*v)->Reload();
  }
  stop = true;
  reader.join();
  std::printf("%d rotations, %d reads taken, %d mismatched\n", kRotations, taken.load(),
              mismatched.load());
  EXPECT_GT(taken, kRotations) << "the reader hardly read";
  EXPECT_EQ(mismatched, 0);
  auto last = ReadLikeGrpc(active);
  ASSERT_TRUE(last.taken);
  EXPECT_EQ(last.cert, pairs_[kRotations % pairs_.size()].cert_pem);
  EXPECT_EQ(last.key, pairs_[kRotations % pairs_.size()].key_pem);
  // Only the version in use and the one before it are kept.
  int versions = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/active")) {
    if (e.path().filename().string()[0] == 'v') ++versions;
  }
  EXPECT_EQ(versions, 2);
}

TEST_F(ValidatedTlsFilesTest, ABrokenPairNeverReachesTheCopies) {
  auto v = ValidatedTlsFiles::Start(source_, dir_ + "/active");
  ASSERT_OK(v);
  const TlsFiles active = (*v)->active();
  // New certificate, old key: refused, the old pair stays in use.
  ASSERT_OK(WriteFileDurably(source_.cert, pairs_[1].cert_pem));
  (*v)->Reload();
  EXPECT_EQ(testing::ReadFile(active.cert), pairs_[0].cert_pem);
  EXPECT_EQ(testing::ReadFile(active.key), pairs_[0].key_pem);
  // Another identity: refused too.
  auto other = IssueCertificate(ca_, {.role = Role::kController, .name = "site02.contoso.com"});
  ASSERT_OK(other);
  Put(*other);
  (*v)->Reload();
  EXPECT_EQ(testing::ReadFile(active.cert), pairs_[0].cert_pem);
  // The key arrives: taken.
  Put(pairs_[1]);
  (*v)->Reload();
  EXPECT_EQ(testing::ReadFile(active.cert), pairs_[1].cert_pem);
  EXPECT_EQ(testing::ReadFile(active.key), pairs_[1].key_pem);
  struct stat st;
  ASSERT_EQ(stat(active.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ValidatedTlsFilesTest, StartClearsWhatAnEarlierRunLeft) {
  ASSERT_OK(MakeDirs(dir_ + "/active/v7", 0700));
  ASSERT_OK(WriteFileDurably(dir_ + "/active/key.pem", "stale key", {.mode = 0600}));
  auto v = ValidatedTlsFiles::Start(source_, dir_ + "/active");
  ASSERT_OK(v);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/active/key.pem"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/active/v7"));
  EXPECT_EQ(testing::ReadFile((*v)->active().cert), pairs_[0].cert_pem);
}

}  // namespace
}  // namespace dpr
