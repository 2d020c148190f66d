// The nine steps with the real dp-controller and dpctl over mutual TLS on
// 127.0.0.1, against a fake agent served from this process (with a real
// agent certificate) until the real agent's service lands. The kill test
// stops the controller dead at every step boundary and inside steps 7 and
// 8, kills it with SIGKILL, restarts it and checks the database ends exactly
// as after an uninterrupted run.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/grpc/tls_credentials.h"
#include "dpreassign/v1/admin.grpc.pb.h"
#include "dpreassign/v1/agent.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/db_dump.h"
#include "tests/support/site_fixture.h"
#include "tests/support/test_support.h"
#include "tests/support/watch_output.h"

namespace dpr {
namespace {

using ::dpr::testing::ChildProcess;
using ::dpr::testing::RunCommand;
using ::dpr::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::dpreassign::v1;

std::string Bin(const std::string& name) { return testing::BinDir() + "/" + name; }

// The agent side of the protocol, in memory: remembers its assignment and
// which packages it has converted, so a resumed conversion reports them as
// already done, as the real one will.
class FakeAgent final : public v1::AgentService::Service {
 public:
  grpc::Status Preflight(grpc::ServerContext*, const v1::PreflightRequest* req,
                         v1::PreflightReport* out) override {
    uint64_t bytes = 0;
    for (const auto& p : req->packages())
      bytes += 1000 * static_cast<uint64_t>(p.package_id().back() - '0' + 1);
    out->set_ok(true);
    out->set_bytes_needed(bytes);
    out->set_bytes_free(free_bytes.load());
    return grpc::Status::OK;
  }
  grpc::Status AssignSite(grpc::ServerContext*, const v1::AssignSiteRequest* req,
                          v1::AssignSiteResponse* out) override {
    std::lock_guard<std::mutex> l(mu);
    out->set_changed(site != req->site_code());
    site = req->site_code();
    controller = req->controller_identity();
    dpid = req->dpid();
    ++assign_calls;
    return grpc::Status::OK;
  }
  grpc::Status ConvertContent(grpc::ServerContext* ctx, const v1::ConvertRequest* req,
                              grpc::ServerWriter<v1::ConvertEvent>* w) override {
    ++convert_calls;
    std::string fail;
    {
      std::lock_guard<std::mutex> l(mu);
      fail = fail_package;
    }
    uint64_t seq = 0;
    for (const auto& p : req->packages()) {
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
      v1::ConvertEvent e;
      e.set_seq(++seq);
      bool done_before;
      {
        std::lock_guard<std::mutex> l(mu);
        done_before = converted.count(p.package_id()) > 0;
      }
      if (!done_before) {
        e.mutable_package_started()->set_package_id(p.package_id());
        w->Write(e);
        std::this_thread::sleep_for(std::chrono::milliseconds(package_ms));
        if (fail == p.package_id()) {
          v1::ConvertEvent f;
          f.set_seq(++seq);
          f.mutable_package_failed()->set_package_id(p.package_id());
          f.mutable_package_failed()->mutable_error()->set_message("disk full");
          w->Write(f);
          continue;
        }
      }
      {
        std::lock_guard<std::mutex> l(mu);
        converted.insert(p.package_id());
        locations.insert(p.location());
      }
      v1::ConvertEvent d;
      d.set_seq(++seq);
      auto* done = d.mutable_package_done();
      done->set_package_id(p.package_id());
      done->mutable_progress()->set_bytes_total(
          1000 * static_cast<uint64_t>(p.package_id().back() - '0' + 1));
      done->set_already_done(done_before);
      done->set_legacy_removed(!p.keep_package_share());
      w->Write(d);
    }
    return grpc::Status::OK;
  }
  grpc::Status VerifyLibrary(grpc::ServerContext*, const v1::VerifyLibraryRequest* req,
                             v1::VerifyReport* out) override {
    std::lock_guard<std::mutex> l(mu);
    ++verify_calls;
    out->set_has_datalib(!converted.empty());
    out->set_has_filelib(!converted.empty());
    out->set_has_pkglib(!converted.empty());
    uint64_t checked = 0;
    for (const auto& id : req->package_ids()) checked += converted.count(id);
    out->set_packages_checked(checked);
    out->set_ok(checked == static_cast<uint64_t>(req->package_ids_size()));
    return grpc::Status::OK;
  }

  void Reset() {
    std::lock_guard<std::mutex> l(mu);
    converted.clear();
    locations.clear();
    site.clear();
    assign_calls = 0;
    fail_package.clear();
  }

  std::mutex mu;
  std::set<std::string> converted;
  std::set<std::string> locations;
  std::string site;
  std::string controller;
  uint32_t dpid = 0;
  int assign_calls = 0;
  std::atomic<int> verify_calls{0};
  std::string fail_package;
  int package_ms = 0;
  std::atomic<int> convert_calls{0};
  std::atomic<uint64_t> free_bytes{uint64_t{1} << 40};
};

class ReassignIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(suite_dir_->path() + "/pki");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"tls", "ca", "create", "--dir", *pki_},
             {"tls", "cert", "create", "--dir", *pki_, "--role", "controller", "--name",
              "site01.contoso.com", "--ip", "127.0.0.1"},
             {"tls", "cert", "create", "--dir", *pki_, "--role", "agent", "--name",
              "DP01.CONTOSO.COM", "--ip", "127.0.0.1"},
             {"tls", "cert", "create", "--dir", *pki_, "--role", "agent", "--name",
              "DP02.CONTOSO.COM", "--ip", "127.0.0.1"},
             {"tls", "cert", "create", "--dir", *pki_, "--role", "admin", "--name", "ops1"}}) {
      std::vector<std::string> argv = {Bin("dpctl")};
      argv.insert(argv.end(), args.begin(), args.end());
      auto r = RunCommand(argv);
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }

  void SetUp() override {
    agent1_ = StartInProcess("DP01.CONTOSO.COM", &fake1_, &server1_);
    agent2_ = StartInProcess("DP02.CONTOSO.COM", &fake2_, &server2_);
  }
  void TearDown() override {
    controller_.reset();
    if (server1_) server1_->Shutdown(std::chrono::system_clock::now());
    if (server2_) server2_->Shutdown(std::chrono::system_clock::now());
  }

  // `service` on 127.0.0.1:<ephemeral> with the certificate `cert_name` of
  // the test PKI; its address.
  std::string StartInProcess(const std::string& cert_name, grpc::Service* service,
                             std::unique_ptr<grpc::Server>* server) {
    auto creds = MakeServerCredentials({*pki_ + "/" + cert_name + ".crt",
                                        *pki_ + "/" + cert_name + ".key", *pki_ + "/ca.crt", 60});
    EXPECT_TRUE(creds.ok()) << creds.status();
    int port = 0;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *creds, &port);
    b.RegisterService(service);
    *server = b.BuildAndStart();
    return "127.0.0.1:" + std::to_string(port);
  }

  std::string DataDir() const { return dir_.path() + "/controller"; }

  void StartController(const std::string& fault_point = "") {
    std::filesystem::remove(DataDir() + "/listen.addr");
    std::vector<std::string> argv;
    if (!fault_point.empty()) {
      argv = {"/usr/bin/env", "DPR_TEST_FAULT_POINT=" + fault_point};
    }
    for (const std::string& a :
         {Bin("dp-controller"), std::string("--data-dir"), DataDir(), std::string("--listen"),
          std::string("127.0.0.1:0"), std::string("--cert"), *pki_ + "/site01.contoso.com.crt",
          std::string("--key"), *pki_ + "/site01.contoso.com.key", std::string("--ca"),
          *pki_ + "/ca.crt", std::string("--inbox-scan-seconds"), std::string("1"),
          std::string("--log-level"), std::string("debug")}) {
      argv.push_back(a);
    }
    controller_ = std::make_unique<ChildProcess>(argv, dir_.path() + "/controller.out");
    addr_ = testing::WaitForFile(DataDir() + "/listen.addr");
    ASSERT_FALSE(addr_.empty()) << testing::ReadFile(dir_.path() + "/controller.out");
  }

  testing::CommandResult Dpctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        Bin("dpctl"), "--controller",      addr_,  "--cert",         *pki_ + "/ops1.crt",
        "--key",      *pki_ + "/ops1.key", "--ca", *pki_ + "/ca.crt"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  void ImportDemo() {
    testing::DemoSite site;
    site.dp01_endpoint = agent1_;
    site.dp02_endpoint = agent2_;
    testing::WriteFile(dir_.path() + "/inventory.json", testing::DemoInventory(site).dump(2));
    auto r = Dpctl({"inventory", "import", dir_.path() + "/inventory.json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("imported 2 site(s), 2 distribution point(s), 6 package(s)"));
  }

  nlohmann::json Job(uint64_t id) {
    auto r = Dpctl({"job", "show", std::to_string(id), "-o", "json"});
    if (r.exit_code != 0) return nullptr;
    return nlohmann::json::parse(r.output, nullptr, false);
  }

  // Polls until the job ends; its JSON.
  nlohmann::json WaitForJobEnd(uint64_t id, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto until = std::chrono::steady_clock::now() + limit;
    nlohmann::json j;
    while (std::chrono::steady_clock::now() < until) {
      j = Job(id);
      if (j.is_object() && (j.value("status", "") == "JOB_STATUS_COMPLETED" ||
                            j.value("status", "") == "JOB_STATUS_FAILED")) {
        return j;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return j;
  }

  uint64_t StartJob(const std::string& dp) {
    auto r = Dpctl({"reassign", dp, "--to", "P01", "--detach", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (!j.is_object() || !j.contains("job")) return 0;
    return std::stoull(j["job"].value("job_id", "0"));
  }

  void StopController() {
    controller_->Signal(SIGTERM);
    EXPECT_EQ(controller_->Wait(std::chrono::seconds(20)), 0);
    controller_.reset();
  }

  static inline TempDir* suite_dir_ = new TempDir();
  static inline std::string* pki_ = nullptr;
  TempDir dir_;
  FakeAgent fake1_;
  FakeAgent fake2_;
  std::unique_ptr<grpc::Server> server1_;
  std::unique_ptr<grpc::Server> server2_;
  std::string agent1_;
  std::string agent2_;
  std::unique_ptr<ChildProcess> controller_;
  std::string addr_;
};

TEST_F(ReassignIntegrationTest, RunsToCompletedAndLeavesTheOtherDpAlone) {
  StartController();
  ImportDemo();
  auto plan = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--dry-run"});
  ASSERT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_THAT(plan.output, HasSubstr("7. Upgrade the distribution point's rows"));
  EXPECT_THAT(plan.output, HasSubstr("PkgServers              6 row(s)"));

  // Ineligible: not shared with the destination.
  auto bad = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "S07"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("not a destination site"));

  // Watched to the end by dpctl itself.
  auto run = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("Completed"));
  {
    std::lock_guard<std::mutex> l(fake1_.mu);
    EXPECT_EQ(fake1_.site, "P01");
    EXPECT_EQ(fake1_.controller, "site01.contoso.com");
    EXPECT_EQ(fake1_.dpid, 6u);
    EXPECT_EQ(fake1_.converted.size(), 6u);
    EXPECT_TRUE(fake1_.locations.count("SMSPKGD$\\" + testing::PackageIdOf(0)));
  }
  EXPECT_TRUE(fake2_.converted.empty());
  auto again = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("existing job 1"));

  // This agent has no WatchVerifyLibrary (as one from before it): dpctl's
  // watched verify falls back to the plain call.
  const int verify_calls = fake1_.verify_calls;
  auto verify = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr("library OK"));
  EXPECT_EQ(fake1_.verify_calls, verify_calls + 1);

  auto show = Dpctl({"dp", "show", "DP01.CONTOSO.COM"});
  EXPECT_THAT(show.output, HasSubstr("DPID 6) in site P01"));
  EXPECT_THAT(show.output, HasSubstr("converted"));
  StopController();
  const std::string db = testing::DumpSiteDb(DataDir() + "/site.db");
  // DP02's rows still name DP02 in S07.
  EXPECT_THAT(db,
              HasSubstr("NALPath=[\"Display=\\\\DP02.CONTOSO.COM\\\"]MSWNET:[\"SMS_SITE=S07\"]"));
  const std::string log = testing::ReadFile(DataDir() + "/logs/distmgr.log");
  EXPECT_THAT(log, HasSubstr("component=\"SMS_DISTRIBUTION_MANAGER\""));
  EXPECT_THAT(log, HasSubstr("SQL ("));  // verbose: SQL tracing
  EXPECT_THAT(log, HasSubstr("completed: DataLib, FileLib and PkgLib hold all 6 package(s)"));
}

TEST_F(ReassignIntegrationTest, ConcurrentRequestsMakeOneJob) {
  StartController();
  ImportDemo();
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      uint64_t id = StartJob("DP02.CONTOSO.COM");
      std::lock_guard<std::mutex> l(mu);
      ids.insert(id);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(*ids.begin(), 0u);
  auto end = WaitForJobEnd(*ids.begin());
  EXPECT_EQ(end.value("status", ""), "JOB_STATUS_COMPLETED") << end.dump();
  auto list = Dpctl({"job", "list", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(list.output)["jobs"].size(), 1u);
}

TEST_F(ReassignIntegrationTest, AFailedConversionIsRetriedByADpuDroppedByHand) {
  fake1_.fail_package = testing::PackageIdOf(3);
  StartController();
  ImportDemo();
  uint64_t id = StartJob("DP01.CONTOSO.COM");
  auto failed = WaitForJobEnd(id);
  ASSERT_EQ(failed.value("status", ""), "JOB_STATUS_FAILED") << failed.dump();
  EXPECT_EQ(failed.value("step", 0), 8);
  EXPECT_THAT(failed["last_error"].value("message", ""), HasSubstr("Failed to convert content"));
  EXPECT_THAT(failed["last_error"].value("message", ""), HasSubstr("disk full"));
  // `dpctl dp convert` retries: the agent is asked again (and fails again).
  const int calls = fake1_.convert_calls.load();
  auto retry = Dpctl({"dp", "convert", "DP01.CONTOSO.COM"});
  ASSERT_EQ(retry.exit_code, 0) << retry.output;
  EXPECT_THAT(retry.output, HasSubstr("dropped 6.dpu"));
  for (int i = 0; i < 100 && fake1_.convert_calls.load() == calls; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(fake1_.convert_calls.load(), calls + 1);
  EXPECT_EQ(WaitForJobEnd(id).value("status", ""), "JOB_STATUS_FAILED");
  {
    std::lock_guard<std::mutex> l(fake1_.mu);
    fake1_.fail_package.clear();
  }
  // The seed's tip: an empty <DPID>.dpu in the inbox.
  testing::WriteFile(DataDir() + "/inboxes/distmgr.box/6.dpu", "");
  auto done = WaitForJobEnd(id);
  EXPECT_EQ(done.value("status", ""), "JOB_STATUS_COMPLETED") << done.dump();
  EXPECT_FALSE(std::filesystem::exists(DataDir() + "/inboxes/distmgr.box/6.dpu"));
  // A .dpu for an unknown DP is set aside, not fatal.
  testing::WriteFile(DataDir() + "/inboxes/distmgr.box/99.dpu", "");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(std::filesystem::exists(DataDir() + "/inboxes/distmgr.box/99.dpu"));
  EXPECT_FALSE(std::filesystem::is_empty(DataDir() + "/inboxes/distmgr.box/bad"));
  auto status = Dpctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
}

// Ctrl-C detaches a watcher; the next `dpctl job watch` starts after the
// last event it saw: together they hold every durable event exactly once.
TEST_F(ReassignIntegrationTest, AWatcherDetachesAndResumesLosingNoEvent) {
  fake1_.package_ms = 300;
  StartController();
  ImportDemo();
  const uint64_t id = StartJob("DP01.CONTOSO.COM");
  const std::string cache = dir_.path() + "/cache";
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "XDG_CACHE_HOME=" + cache,
                                   Bin("dpctl"),
                                   "--controller",
                                   addr_,
                                   "--cert",
                                   *pki_ + "/ops1.crt",
                                   "--key",
                                   *pki_ + "/ops1.key",
                                   "--ca",
                                   *pki_ + "/ca.crt",
                                   "job",
                                   "watch",
                                   std::to_string(id),
                                   "-o",
                                   "json"};
  {
    ChildProcess first(argv, dir_.path() + "/watch1.out");
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    first.Signal(SIGINT);
    EXPECT_EQ(first.Wait(), 0);
  }
  {
    ChildProcess second(argv, dir_.path() + "/watch2.out");
    EXPECT_EQ(second.Wait(std::chrono::seconds(30)), 0);
  }
  const auto s1 = testing::DurableSeqs(testing::ReadFile(dir_.path() + "/watch1.out"));
  const std::string second_out = testing::ReadFile(dir_.path() + "/watch2.out");
  const auto s2 = testing::DurableSeqs(second_out);
  auto all = Dpctl({"job", "watch", std::to_string(id), "--from-start", "-o", "json"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  const auto every = testing::DurableSeqs(all.output);
  ASSERT_FALSE(s1.empty());
  ASSERT_FALSE(s2.empty());
  EXPECT_LT(s1.back(), s2.front());
  std::vector<uint64_t> joined = s1;
  joined.insert(joined.end(), s2.begin(), s2.end());
  EXPECT_EQ(joined, every);
  EXPECT_THAT(second_out, HasSubstr("\"finished\":{\"status\":\"JOB_STATUS_COMPLETED\""));
  // A watcher on a terminal-less pipe also got live package progress.
  EXPECT_THAT(testing::ReadFile(dir_.path() + "/watch1.out") + second_out,
              HasSubstr("\"package_started\""));
}

// A controller from before WatchVerifyDistributionPoint: only the plain
// verify, whose request it reads without the repair field.
class OlderController final : public v1::AdminService::Service {
 public:
  grpc::Status VerifyDistributionPoint(grpc::ServerContext*,
                                       const v1::VerifyDistributionPointRequest* req,
                                       v1::VerifyReport* report) override {
    ++plain_calls;
    if (req->dp() != "DP01.CONTOSO.COM") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such DP");
    }
    report->set_ok(true);
    report->set_packages_checked(6);
    report->set_objects_checked(40);
    return grpc::Status::OK;
  }
  std::atomic<int> plain_calls{0};
};

// dpctl against that controller: 'dp verify' falls back to the plain call
// and prints its report; with '--repair' it refuses, naming what to do,
// rather than let the older controller verify without repairing.
TEST_F(ReassignIntegrationTest, DpVerifyFallsBackToThePlainCallOfAnOlderController) {
  OlderController older;
  std::unique_ptr<grpc::Server> server;
  addr_ = StartInProcess("site01.contoso.com", &older, &server);
  ASSERT_NE(server, nullptr);

  auto plain = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_THAT(plain.output, HasSubstr("library OK: 6 package(s), 40 object(s) checked"));
  EXPECT_EQ(older.plain_calls, 1);
  auto json = Dpctl({"dp", "verify", "DP01.CONTOSO.COM", "-o", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_EQ(nlohmann::json::parse(json.output, nullptr, false).value("ok", false), true)
      << json.output;
  EXPECT_EQ(older.plain_calls, 2);

  auto repair = Dpctl({"dp", "verify", "DP01.CONTOSO.COM", "--repair"});
  EXPECT_NE(repair.exit_code, 0) << repair.output;
  EXPECT_THAT(repair.output, HasSubstr("the controller does not offer repairs"));
  EXPECT_THAT(repair.output, HasSubstr("dp-agent verify --repair-from"));
  EXPECT_EQ(older.plain_calls, 2) << "a repair must not turn into a plain verify";

  auto unknown = Dpctl({"dp", "verify", "NOSUCH.CONTOSO.COM"});
  EXPECT_NE(unknown.exit_code, 0) << unknown.output;
  EXPECT_THAT(unknown.output, HasSubstr("no such DP"));
  server->Shutdown(std::chrono::system_clock::now());
}

TEST_F(ReassignIntegrationTest, KilledAtEveryStepBoundaryTheJobEndsAsIfNeverKilled) {
  // The reference: an uninterrupted run.
  StartController();
  ImportDemo();
  uint64_t id = StartJob("DP01.CONTOSO.COM");
  ASSERT_EQ(WaitForJobEnd(id).value("status", ""), "JOB_STATUS_COMPLETED");
  StopController();
  const std::string reference = testing::DumpSiteDb(DataDir() + "/site.db");

  std::vector<std::string> points;
  for (int step = 1; step <= 9; ++step) {
    points.push_back("step" + std::to_string(step) + ".before_commit");
    points.push_back("step" + std::to_string(step) + ".after_commit");
  }
  for (const char* p :
       {"step6.after_assign", "step7.after_PkgServers", "step7.after_PkgStatus",
        "step7.after_ContentDPMap", "step8.package_done#1", "step8.package_done#4"}) {
    points.push_back(p);
  }
  int kills = 0;
  for (const auto& point : points) {
    SCOPED_TRACE(point);
    std::filesystem::remove_all(DataDir());
    fake1_.Reset();
    StartController(point);
    ImportDemo();
    id = StartJob("DP01.CONTOSO.COM");
    ASSERT_FALSE(testing::WaitForFile(DataDir() + "/fault.hit").empty())
        << testing::ReadFile(dir_.path() + "/controller.out");
    controller_->Signal(SIGKILL);
    controller_->Wait();
    ++kills;
    std::filesystem::remove(DataDir() + "/fault.hit");
    StartController();
    auto end = WaitForJobEnd(id);
    ASSERT_EQ(end.value("status", ""), "JOB_STATUS_COMPLETED") << end.dump();
    StopController();
    EXPECT_EQ(testing::DumpSiteDb(DataDir() + "/site.db"), reference);
    std::lock_guard<std::mutex> l(fake1_.mu);
    EXPECT_EQ(fake1_.converted.size(), 6u);
  }
  EXPECT_EQ(kills, static_cast<int>(points.size()));
  std::printf("kill points: %d, all resumed to the reference database\n", kills);
}

}  // namespace
}  // namespace dpr
