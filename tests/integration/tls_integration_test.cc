// Mutual TLS with the real daemons: dpctl makes the site PKI, dp-controller
// and dp-agent start on 127.0.0.1:0, and clients built with gRPC's plain
// SslCredentials (not our helper) try every identity the issue lists. The
// right peer is served; everyone else is refused before any handler runs.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/fs/durable_file.h"
#include "common/grpc/tls_credentials.h"
#include "common/pki/pki.h"
#include "dpreassign/v1/admin.grpc.pb.h"
#include "dpreassign/v1/agent.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

using ::dpr::testing::ChildProcess;
using ::dpr::testing::ReadFile;
using ::dpr::testing::RunCommand;
using ::dpr::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::dpreassign::v1;

std::string Bin(const std::string& name) { return testing::BinDir() + "/" + name; }

// Creates the site PKI with dpctl, as an admin would.
void Dpctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Bin("dpctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = dir_ / "pki";
    Dpctl({"tls", "ca", "create", "--dir", pki_});
    Dpctl({"tls", "cert", "create", "--dir", pki_, "--role", "controller", "--name",
           "site01.contoso.com", "--ip", "127.0.0.1"});
    Dpctl({"tls", "cert", "create", "--dir", pki_, "--role", "agent", "--name", "dp01.contoso.com",
           "--ip", "127.0.0.1"});
    Dpctl({"tls", "cert", "create", "--dir", pki_, "--role", "admin", "--name", "ops1"});
    other_ = dir_ / "other-pki";
    Dpctl({"tls", "ca", "create", "--dir", other_});
    Dpctl({"tls", "cert", "create", "--dir", other_, "--role", "admin", "--name", "ops1"});
  }

  // Starts dp-controller and returns its address.
  std::string StartController(const std::string& cert_name = "site01.contoso.com") {
    const std::string data = dir_ / "controller";
    std::filesystem::remove(data + "/listen.addr");
    controller_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{Bin("dp-controller"), "--data-dir", data, "--listen",
                                 "127.0.0.1:0", "--cert", pki_ + "/" + cert_name + ".crt", "--key",
                                 pki_ + "/" + cert_name + ".key", "--ca", pki_ + "/ca.crt",
                                 "--tls-reload-seconds", "1"},
        dir_ / "controller.out");
    return testing::WaitForFile(data + "/listen.addr");
  }

  std::string StartAgent() {
    const std::string data = dir_ / "dp01";
    agent_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{Bin("dp-agent"), "--data-dir", data, "--content-root",
                                 data + "/content", "--listen", "127.0.0.1:0", "--cert",
                                 pki_ + "/dp01.contoso.com.crt", "--key",
                                 pki_ + "/dp01.contoso.com.key", "--ca", pki_ + "/ca.crt"},
        dir_ / "agent.out");
    return testing::WaitForFile(data + "/listen.addr");
  }

  // Credentials from gRPC's own SSL API, independent of our helper.
  std::shared_ptr<grpc::ChannelCredentials> Creds(const std::string& pki, const std::string& name) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ReadFile(pki_ + "/ca.crt");
    if (!name.empty()) {
      o.pem_private_key = ReadFile(pki + "/" + name + ".key");
      o.pem_cert_chain = ReadFile(pki + "/" + name + ".crt");
    }
    return grpc::SslCredentials(o);
  }

  static std::shared_ptr<grpc::Channel> Channel(const std::string& addr,
                                                std::shared_ptr<grpc::ChannelCredentials> creds,
                                                const std::string& server_name = "") {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh handshake every time
    if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
    return grpc::CreateCustomChannel(addr, creds, args);
  }

  static grpc::Status ControllerStatus(std::shared_ptr<grpc::Channel> ch,
                                       v1::ControllerStatus* out = nullptr,
                                       std::string* server_pem = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ControllerStatus status;
    grpc::Status st = v1::AdminService::NewStub(ch)->GetStatus(&ctx, {}, &status);
    if (out) *out = status;
    if (server_pem && st.ok()) {
      auto pems = ctx.auth_context()->FindPropertyValues("x509_pem_cert");
      if (!pems.empty()) *server_pem = std::string(pems[0].data(), pems[0].size());
    }
    return st;
  }

  static grpc::Status AgentStatus(std::shared_ptr<grpc::Channel> ch,
                                  v1::AgentStatus* out = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::AgentStatus status;
    grpc::Status st = v1::AgentService::NewStub(ch)->GetStatus(&ctx, {}, &status);
    if (out) *out = status;
    return st;
  }

  // A certificate from the site CA outside dpctl's defaults (expired, future).
  void IssueWithLibrary(const std::string& name, const CertOptions& options) {
    KeyAndCert ca{ReadFile(pki_ + "/ca.key"), ReadFile(pki_ + "/ca.crt")};
    auto issued = IssueCertificate(ca, options);
    ASSERT_TRUE(issued.ok()) << issued.status();
    testing::WriteFile(pki_ + "/" + name + ".key", issued->key_pem);
    testing::WriteFile(pki_ + "/" + name + ".crt", issued->cert_pem);
  }

  TempDir dir_;
  std::string pki_;
  std::string other_;
  std::unique_ptr<ChildProcess> controller_;
  std::unique_ptr<ChildProcess> agent_;
};

TEST_F(TlsIntegrationTest, AdminIsServedByControllerAndSeenAsAdmin) {
  const std::string addr = StartController();
  ASSERT_FALSE(addr.empty()) << ReadFile(dir_ / "controller.out");
  v1::ControllerStatus status;
  grpc::Status st = ControllerStatus(Channel(addr, Creds(pki_, "ops1")), &status);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(status.server_name(), "site01.contoso.com");
  EXPECT_THAT(status.peer_identity(), HasSubstr("admin 'ops1'"));
  // Our own channel helper (what dpctl uses) gets the same answer.
  auto creds = MakeChannelCredentials({pki_ + "/ops1.crt", pki_ + "/ops1.key", pki_ + "/ca.crt"});
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_TRUE(ControllerStatus(Channel(addr, *creds)).ok());
}

TEST_F(TlsIntegrationTest, ControllerIsServedByAgent) {
  const std::string addr = StartAgent();
  ASSERT_FALSE(addr.empty()) << ReadFile(dir_ / "agent.out");
  v1::AgentStatus status;
  grpc::Status st =
      AgentStatus(Channel(addr, Creds(pki_, "site01.contoso.com"), "dp01.contoso.com"), &status);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(status.server_name(), "dp01.contoso.com");
  EXPECT_THAT(status.peer_identity(), HasSubstr("controller 'site01.contoso.com'"));
  EXPECT_FALSE(status.has_datalib());
  EXPECT_GT(status.total_bytes(), 0u);
}

TEST_F(TlsIntegrationTest, WrongRolesArePermissionDeniedAndLogged) {
  const std::string ctl = StartController();
  const std::string agent = StartAgent();
  ASSERT_FALSE(ctl.empty());
  ASSERT_FALSE(agent.empty());
  // An agent certificate used as admin, and a controller certificate too.
  grpc::Status st = ControllerStatus(Channel(ctl, Creds(pki_, "dp01.contoso.com")));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("agent 'dp01.contoso.com'"));
  st = ControllerStatus(Channel(ctl, Creds(pki_, "site01.contoso.com")));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  // An admin certificate used against the agent, and an agent against an agent.
  st = AgentStatus(Channel(agent, Creds(pki_, "ops1"), "dp01.contoso.com"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  st = AgentStatus(Channel(agent, Creds(pki_, "dp01.contoso.com"), "dp01.contoso.com"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  // The refusals name the peer in the daemons' CMTrace logs.
  EXPECT_THAT(ReadFile(dir_ / "controller/logs/distmgr.log"),
              HasSubstr("refused: agent 'dp01.contoso.com'"));
  EXPECT_THAT(ReadFile(dir_ / "dp01/logs/smsdpprov.log"), HasSubstr("refused: admin 'ops1'"));
}

TEST_F(TlsIntegrationTest, NoCertificateOtherCaAndPlaintextFailTheHandshake) {
  const std::string ctl = StartController();
  ASSERT_FALSE(ctl.empty());
  EXPECT_EQ(ControllerStatus(Channel(ctl, Creds(pki_, ""))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ControllerStatus(Channel(ctl, Creds(other_, "ops1"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ControllerStatus(Channel(ctl, grpc::InsecureChannelCredentials())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The controller is still serving the right peer afterwards.
  EXPECT_TRUE(ControllerStatus(Channel(ctl, Creds(pki_, "ops1"))).ok());
}

TEST_F(TlsIntegrationTest, ExpiredAndNotYetValidCertificatesFail) {
  IssueWithLibrary("expired", {.role = Role::kAdmin,
                               .name = "expired",
                               .valid_days = 1,
                               .not_before_offset_seconds = -3 * 86400});
  IssueWithLibrary(
      "future", {.role = Role::kAdmin, .name = "future", .not_before_offset_seconds = 2 * 86400});
  const std::string ctl = StartController();
  ASSERT_FALSE(ctl.empty());
  EXPECT_EQ(ControllerStatus(Channel(ctl, Creds(pki_, "expired"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ControllerStatus(Channel(ctl, Creds(pki_, "future"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // gRPC core's reason reaches the controller's log.
  EXPECT_THAT(ReadFile(dir_ / "controller/logs/distmgr.log"), HasSubstr("component=\"grpc\""));
}

TEST_F(TlsIntegrationTest, ClientRefusesAServerNamingAnotherHost) {
  const std::string agent = StartAgent();
  ASSERT_FALSE(agent.empty());
  // The controller expects dp02 but dp01's agent answers.
  EXPECT_EQ(AgentStatus(Channel(agent, Creds(pki_, "site01.contoso.com"), "dp02.contoso.com"))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsIntegrationTest, ReplacedCertificateIsPickedUpWithoutRestart) {
  const std::string ctl = StartController();
  ASSERT_FALSE(ctl.empty());
  std::string before_pem;
  ASSERT_TRUE(ControllerStatus(Channel(ctl, Creds(pki_, "ops1")), nullptr, &before_pem).ok());
  auto before = ParseCertificatePem(before_pem);
  ASSERT_TRUE(before.ok());

  // Issue a new pair elsewhere, then rename it over the files in use.
  auto staged = testing::StageNewPair(pki_, dir_ / "staging", "controller", "site01.contoso.com");
  std::filesystem::rename(staged.key, pki_ + "/site01.contoso.com.key");
  std::filesystem::rename(staged.cert, pki_ + "/site01.contoso.com.crt");
  auto expected = ParseCertificatePem(ReadFile(pki_ + "/site01.contoso.com.crt"));
  ASSERT_TRUE(expected.ok());
  ASSERT_NE(expected->serial_hex, before->serial_hex);

  std::string seen_serial;
  int failed_calls = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string pem;
    if (!ControllerStatus(Channel(ctl, Creds(pki_, "ops1")), nullptr, &pem).ok()) {
      ++failed_calls;
    } else if (auto info = ParseCertificatePem(pem); info.ok()) {
      seen_serial = info->serial_hex;
      if (seen_serial == expected->serial_hex) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(seen_serial, expected->serial_hex);
  EXPECT_EQ(failed_calls, 0);
  EXPECT_TRUE(controller_->Running());
}

TEST_F(TlsIntegrationTest, ABrokenNewPairKeepsTheOldOneWithAWarning) {
  const std::string ctl = StartController();  // reloads every second
  ASSERT_FALSE(ctl.empty());
  std::string before_pem;
  ASSERT_TRUE(ControllerStatus(Channel(ctl, Creds(pki_, "ops1")), nullptr, &before_pem).ok());
  auto before = ParseCertificatePem(before_pem);
  ASSERT_TRUE(before.ok());
  // A new certificate whose key is not the one in the key file: a rotation
  // that copied only half of the pair.
  auto staged = testing::StageNewPair(pki_, dir_ / "staging", "controller", "site01.contoso.com");
  std::filesystem::rename(staged.cert, pki_ + "/site01.contoso.com.crt");
  const auto log_before = ReadFile(dir_ / "controller/logs/distmgr.log").size();
  int failed_calls = 0, calls = 0;
  std::string last_serial;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(4);
       std::chrono::steady_clock::now() < end; ++calls) {
    std::string pem;
    if (!ControllerStatus(Channel(ctl, Creds(pki_, "ops1")), nullptr, &pem).ok()) {
      ++failed_calls;
    } else if (auto info = ParseCertificatePem(pem); info.ok()) {
      last_serial = info->serial_hex;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(failed_calls, 0) << "of " << calls;
  EXPECT_EQ(last_serial, before->serial_hex) << "the broken pair was taken";
  EXPECT_THAT(ReadFile(dir_ / "controller/logs/distmgr.log").substr(log_before),
              HasSubstr("new TLS files refused, keeping the certificate in use"))
      << "no warning about the broken pair";
  EXPECT_TRUE(controller_->Running());
}

TEST_F(TlsIntegrationTest, TlsOlderThan12IsRefused) {
  const std::string ctl = StartController();
  ASSERT_FALSE(ctl.empty());
  // openssl itself would refuse TLS 1.1 at Debian's security level; lower
  // it, so the refusal seen is the server's.
  for (const char* version : {"-tls1", "-tls1_1"}) {
    auto r = RunCommand({"/bin/sh", "-c",
                         std::string("openssl s_client -connect ") + ctl + " " + version +
                             " -cipher DEFAULT@SECLEVEL=0 -cert " + pki_ + "/ops1.crt -key " +
                             pki_ + "/ops1.key -CAfile " + pki_ + "/ca.crt </dev/null 2>&1"});
    // The server hangs up on the ClientHello: no certificate, no cipher.
    EXPECT_NE(r.exit_code, 0) << version << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("SSL handshake has read 0 bytes")) << version;
    EXPECT_THAT(r.output, HasSubstr("Cipher is (NONE)")) << version;
  }
  // TLS 1.2 with the same client works at the TLS level.
  auto r = RunCommand({"/bin/sh", "-c",
                       "openssl s_client -connect " + ctl + " -tls1_2 -cert " + pki_ +
                           "/ops1.crt -key " + pki_ + "/ops1.key -CAfile " + pki_ +
                           "/ca.crt </dev/null 2>&1"});
  EXPECT_THAT(r.output, HasSubstr("Protocol  : TLSv1.2")) << r.output;
}

TEST_F(TlsIntegrationTest, DaemonsRefuseACertificateOfTheWrongRole) {
  const std::string data = dir_ / "controller";
  auto r = RunCommand({Bin("dp-controller"), "--data-dir", data, "--listen", "127.0.0.1:0",
                       "--cert", pki_ + "/dp01.contoso.com.crt", "--key",
                       pki_ + "/dp01.contoso.com.key", "--ca", pki_ + "/ca.crt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("not a controller certificate"));
  r = RunCommand({Bin("dp-agent"), "--data-dir", dir_ / "dp01", "--content-root", dir_ / "c",
                  "--listen", "127.0.0.1:0", "--cert", pki_ + "/ops1.crt", "--key",
                  pki_ + "/ops1.key", "--ca", pki_ + "/ca.crt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("not an agent certificate"));
  // A key that does not belong to the certificate is caught at start-up.
  r = RunCommand({Bin("dp-controller"), "--data-dir", data, "--listen", "127.0.0.1:0", "--cert",
                  pki_ + "/site01.contoso.com.crt", "--key", pki_ + "/ops1.key", "--ca",
                  pki_ + "/ca.crt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("does not belong to the certificate"));
}

TEST_F(TlsIntegrationTest, ConfigFileWorksAndABadOneNamesFileAndLine) {
  const std::string cfg = dir_ / "controller.toml";
  testing::WriteFile(cfg,
                     "data_dir = \"controller\"\nlisten = \"127.0.0.1:0\"\n[tls]\n"
                     "cert = \"pki/site01.contoso.com.crt\"\nkey = \"pki/site01.contoso.com.key\"\n"
                     "ca = \"pki/ca.crt\"\n");
  controller_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{Bin("dp-controller"), "--config", cfg}, dir_ / "controller.out");
  const std::string addr = testing::WaitForFile(dir_ / "controller/listen.addr");
  ASSERT_FALSE(addr.empty()) << ReadFile(dir_ / "controller.out");
  EXPECT_TRUE(ControllerStatus(Channel(addr, Creds(pki_, "ops1"))).ok());

  testing::WriteFile(cfg, "data_dir = \"controller\"\nlisen = \"127.0.0.1:0\"\n");
  auto r = RunCommand({Bin("dp-controller"), "--config", cfg});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("controller.toml:2: unknown key 'lisen'"));
}

TEST_F(TlsIntegrationTest, DpctlStatusSucceedsForAdminAndFailsClearlyOtherwise) {
  const std::string ctl = StartController();
  ASSERT_FALSE(ctl.empty());
  auto r = RunCommand({Bin("dpctl"), "status", "--controller", ctl, "--cert", pki_ + "/ops1.crt",
                       "--key", pki_ + "/ops1.key", "--ca", pki_ + "/ca.crt", "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"server_name\": \"site01.contoso.com\""));
  // The same through environment variables, as scripts set them.
  r = RunCommand({Bin("dpctl"), "status"}, {{"DPCTL_CONTROLLER", ctl},
                                            {"DPCTL_CERT", pki_ + "/dp01.contoso.com.crt"},
                                            {"DPCTL_KEY", pki_ + "/dp01.contoso.com.key"},
                                            {"DPCTL_CA", pki_ + "/ca.crt"}});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("accepts only admin certificates"));
  r = RunCommand({Bin("dpctl"), "status", "--controller", ctl});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no admin certificate"));
}

}  // namespace
}  // namespace dpr
