// The site PKI through OpenSSL: what dpctl issues carries the role, names,
// usages and validity a daemon checks, and anything else fails verification.
#include "common/pki/pki.h"

#include <sys/stat.h>

#include <ctime>

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa({});
    ASSERT_OK(ca);
    ca_ = *ca;
  }
  KeyAndCert ca_;
};

TEST_F(PkiTest, CaIsACa) {
  auto info = ParseCertificatePem(ca_.cert_pem);
  ASSERT_OK(info);
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->common_name, "dpreassign site CA");
  EXPECT_EQ(info->role, std::nullopt);
  EXPECT_OK(CheckKeyMatchesCert(ca_.key_pem, ca_.cert_pem));
  EXPECT_NE(ca_.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
}

TEST_F(PkiTest, AgentCertificateCarriesRoleNamesAndUsages) {
  auto issued = IssueCertificate(
      ca_,
      {.role = Role::kAgent, .name = "dp01.contoso.com", .ip_addresses = {"127.0.0.1", "::1"}});
  ASSERT_OK(issued);
  auto info = ParseCertificatePem(issued->cert_pem);
  ASSERT_OK(info);
  EXPECT_EQ(info->common_name, "dp01.contoso.com");
  EXPECT_EQ(info->role, Role::kAgent);
  EXPECT_EQ(info->organizational_unit, "agent");
  EXPECT_THAT(info->dns_names, ElementsAre("dp01.contoso.com"));
  EXPECT_THAT(info->ip_addresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_FALSE(info->is_ca);
  EXPECT_TRUE(info->server_auth);
  EXPECT_TRUE(info->client_auth);
  EXPECT_TRUE(CertNamesHost(*info, "DP01.contoso.com"));
  EXPECT_TRUE(CertNamesHost(*info, "127.0.0.1"));
  EXPECT_FALSE(CertNamesHost(*info, "dp02.contoso.com"));
  EXPECT_OK(VerifyCertificate(issued->cert_pem, ca_.cert_pem));
  EXPECT_OK(CheckKeyMatchesCert(issued->key_pem, issued->cert_pem));
  const int64_t now = std::time(nullptr);
  EXPECT_LE(info->not_before_unix, now);
  EXPECT_NEAR(static_cast<double>(info->not_after_unix - info->not_before_unix), 365 * 86400.0, 2);
}

TEST_F(PkiTest, AdminCertificateIsClientOnly) {
  auto issued = IssueCertificate(ca_, {.role = Role::kAdmin, .name = "ops1"});
  ASSERT_OK(issued);
  auto info = ParseCertificatePem(issued->cert_pem);
  ASSERT_OK(info);
  EXPECT_EQ(info->role, Role::kAdmin);
  EXPECT_TRUE(info->client_auth);
  EXPECT_FALSE(info->server_auth);
}

TEST_F(PkiTest, SerialsDiffer) {
  auto a = IssueCertificate(ca_, {.role = Role::kAdmin, .name = "ops1"});
  auto b = IssueCertificate(ca_, {.role = Role::kAdmin, .name = "ops1"});
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(ParseCertificatePem(a->cert_pem)->serial_hex,
            ParseCertificatePem(b->cert_pem)->serial_hex);
}

TEST_F(PkiTest, OtherCaExpiredAndFutureFailVerification) {
  auto other_ca = CreateCa({.common_name = "someone else"});
  ASSERT_OK(other_ca);
  auto foreign = IssueCertificate(*other_ca, {.role = Role::kAdmin, .name = "ops1"});
  ASSERT_OK(foreign);
  EXPECT_THAT(VerifyCertificate(foreign->cert_pem, ca_.cert_pem),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  auto expired = IssueCertificate(ca_, {.role = Role::kAdmin,
                                        .name = "ops1",
                                        .valid_days = 1,
                                        .not_before_offset_seconds = -3 * 86400});
  ASSERT_OK(expired);
  EXPECT_THAT(VerifyCertificate(expired->cert_pem, ca_.cert_pem),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
  auto future = IssueCertificate(
      ca_, {.role = Role::kAdmin, .name = "ops1", .not_before_offset_seconds = 2 * 86400});
  ASSERT_OK(future);
  EXPECT_THAT(VerifyCertificate(future->cert_pem, ca_.cert_pem),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not yet valid")));
}

TEST_F(PkiTest, MismatchedKeyAndBadInputAreRefused) {
  auto a = IssueCertificate(ca_, {.role = Role::kAgent, .name = "dp01"});
  auto b = IssueCertificate(ca_, {.role = Role::kAgent, .name = "dp01"});
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_THAT(CheckKeyMatchesCert(b->key_pem, a->cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      IssueCertificate(ca_, {.role = Role::kAgent, .name = "dp01", .ip_addresses = {"300.1.1.1"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("300.1.1.1")));
  EXPECT_THAT(IssueCertificate(ca_, {.role = Role::kAgent, .name = ""}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(IssueCertificate(ca_, {.role = Role::kAgent, .name = "a/b"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  KeyAndCert wrong_ca{b->key_pem, ca_.cert_pem};
  EXPECT_THAT(IssueCertificate(wrong_ca, {.role = Role::kAgent, .name = "dp01"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ParseCertificatePem("garbage"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRole("root"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PkiFilesTest, KeyFilesAre0600AndNeverOverwritten) {
  dpr::testing::TempDir dir;
  ASSERT_OK(CreateCaFiles(dir.path(), {}));
  auto files = CreateCertFiles(dir.path(), {.role = Role::kController, .name = "site01"});
  ASSERT_OK(files);
  for (const std::string& key : {dir / "ca.key", files->key_path}) {
    struct stat st {};
    ASSERT_EQ(::stat(key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  const std::string before = dpr::testing::ReadFile(dir / "ca.key");
  EXPECT_THAT(CreateCaFiles(dir.path(), {}), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(dpr::testing::ReadFile(dir / "ca.key"), before);
  EXPECT_THAT(CreateCertFiles(dir.path(), {.role = Role::kController, .name = "site01"}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

// The key never leaves the DP: a request made there (here with the openssl
// CLI, as deploy/install-agent.sh does) gets a certificate whose role and
// names are the signer's, for the request's key.
TEST_F(PkiTest, ACertificateRequestIsSignedForItsKeyWithTheSignersNames) {
  dpr::testing::TempDir dir;
  auto run = [](const std::string& cmd) {
    return dpr::testing::RunCommand({"/bin/sh", "-c", cmd + " 2>&1"});
  };
  ASSERT_EQ(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                (dir / "dp.key") + " -out " + (dir / "dp.csr") +
                " -subj '/CN=evil.example.com/OU=controller'")
                .exit_code,
            0);
  const std::string csr = dpr::testing::ReadFile(dir / "dp.csr");
  auto cert = SignCertificateRequest(
      ca_, {.role = Role::kAgent, .name = "dp01.contoso.com", .ip_addresses = {"127.0.0.1"}}, csr);
  ASSERT_OK(cert);
  EXPECT_OK(CheckKeyMatchesCert(dpr::testing::ReadFile(dir / "dp.key"), *cert));
  EXPECT_OK(VerifyCertificate(*cert, ca_.cert_pem));
  auto info = ParseCertificatePem(*cert);
  ASSERT_OK(info);
  EXPECT_EQ(info->common_name, "dp01.contoso.com");  // not the request's CN
  EXPECT_EQ(info->role, Role::kAgent);               // not the request's OU
  EXPECT_THAT(info->ip_addresses, ElementsAre("127.0.0.1"));

  // A request whose signature does not verify (one byte of it changed).
  std::string tampered = csr;
  const auto end = tampered.find("-----END");
  ASSERT_NE(end, std::string::npos);
  tampered[end - 10] = tampered[end - 10] == 'A' ? 'B' : 'A';
  EXPECT_THAT(SignCertificateRequest(ca_, {.role = Role::kAgent, .name = "dp01"}, tampered),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A weak key.
  ASSERT_EQ(run("openssl req -new -newkey rsa:1024 -nodes -keyout " + (dir / "weak.key") +
                " -out " + (dir / "weak.csr") + " -subj /CN=dp01")
                .exit_code,
            0);
  EXPECT_THAT(SignCertificateRequest(ca_, {.role = Role::kAgent, .name = "dp01"},
                                     dpr::testing::ReadFile(dir / "weak.csr")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too weak")));
  EXPECT_THAT(SignCertificateRequest(ca_, {.role = Role::kAgent, .name = "dp01"}, "garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CSR")));
}

}  // namespace
}  // namespace dpr
