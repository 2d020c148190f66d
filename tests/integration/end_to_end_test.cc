// The seed's scenario with every real binary on 127.0.0.1: one controller,
// two source-site DPs each running dp-agent over legacy package folders;
// DP01 is reassigned to the destination site while DP02 is left alone.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "common/grpc/tls_credentials.h"
#include "common/hash/sha256.h"
#include "dpreassign/v1/admin.grpc.pb.h"
#include "dpreassign/v1/agent.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/db_dump.h"
#include "tests/support/site_fixture.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"
#include "tests/support/watch_output.h"

namespace dpr {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::dpreassign::v1;
using ::dpr::testing::ChildProcess;
using ::dpr::testing::RunCommand;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Bin(const std::string& name) { return testing::BinDir() + "/" + name; }

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = root() + "/pki";
    Dpctl({"tls", "ca", "create", "--dir", pki_}, false);
    for (auto [role, name] :
         std::vector<std::pair<std::string, std::string>>{{"controller", "site01.contoso.com"},
                                                          {"controller", "rogue.contoso.com"},
                                                          {"agent", "DP01.CONTOSO.COM"},
                                                          {"agent", "DP02.CONTOSO.COM"},
                                                          {"admin", "ops1"}}) {
      std::vector<std::string> args = {"tls",    "cert", "create", "--dir", pki_,
                                       "--role", role,   "--name", name};
      if (role != "admin") {
        args.push_back("--ip");
        args.push_back("127.0.0.1");
      }
      Dpctl(args, false);
    }
    // Legacy folders: package i holds a file of its own and one shared by all.
    for (const std::string dp : {"dp01", "dp02"}) {
      for (int i = 0; i < 6; ++i) {
        if (dp == "dp02" && i >= 3) break;
        const std::string id = testing::PackageIdOf(i);
        testing::MakeTree(root() + "/" + dp + "/legacy/SMSPKGD$/" + id,
                          {{"setup.exe", std::string(20000 + i * 100, static_cast<char>('a' + i))},
                           {"common/readme.txt", "shared by every package\n"},
                           {"sub/dir/data.bin", std::string(3000, 'z')}});
      }
    }
    agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_);
    agent2_ = StartAgent("dp02", "DP02.CONTOSO.COM", &agent_proc2_);
    StartController();
  }

  std::string root() const { return dir_.path(); }

  // The controller's admin API, as the admin ops1.
  std::unique_ptr<v1::AdminService::Stub> AdminStub() {
    auto creds =
        MakeChannelCredentials({pki_ + "/ops1.crt", pki_ + "/ops1.key", pki_ + "/ca.crt", 60});
    EXPECT_TRUE(creds.ok()) << creds.status();
    return creds.ok() ? v1::AdminService::NewStub(grpc::CreateChannel(addr_, *creds)) : nullptr;
  }

  // WatchVerifyDistributionPoint as an admin: every event, and how it ended.
  grpc::Status WatchVerify(const std::string& dp, bool repair,
                           std::vector<v1::VerifyEvent>* events) {
    auto stub = AdminStub();
    if (stub == nullptr) return grpc::Status(grpc::StatusCode::INTERNAL, "no credentials");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::VerifyDistributionPointRequest req;
    req.set_dp(dp);
    req.set_repair(repair);
    auto reader = stub->WatchVerifyDistributionPoint(&ctx, req);
    for (v1::VerifyEvent e; reader->Read(&e);) events->push_back(e);
    return reader->Finish();
  }

  testing::CommandResult Dpctl(std::vector<std::string> args, bool to_controller = true) {
    std::vector<std::string> argv = {Bin("dpctl")};
    if (to_controller) {
      for (const std::string& a :
           {std::string("--controller"), addr_, std::string("--cert"), pki_ + "/ops1.crt",
            std::string("--key"), pki_ + "/ops1.key", std::string("--ca"), pki_ + "/ca.crt"}) {
        argv.push_back(a);
      }
    }
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv);
    if (!to_controller) {
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    return r;
  }

  std::string StartAgent(const std::string& dir, const std::string& name,
                         std::unique_ptr<ChildProcess>* proc,
                         const std::string& listen = "127.0.0.1:0", int package_delay_ms = 0,
                         int verify_delay_ms = 0) {
    const std::string data = root() + "/" + dir;
    fs::remove(data + "/listen.addr");
    *proc = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            "/usr/bin/env",
            "DPR_TEST_AGENT_PACKAGE_DELAY_MS=" + std::to_string(package_delay_ms),
            "DPR_TEST_AGENT_VERIFY_DELAY_MS=" + std::to_string(verify_delay_ms),
            Bin("dp-agent"),
            "--data-dir",
            data,
            "--content-root",
            data + "/content",
            "--legacy-root",
            data + "/legacy",
            "--listen",
            listen,
            "--cert",
            pki_ + "/" + name + ".crt",
            "--key",
            pki_ + "/" + name + ".key",
            "--ca",
            pki_ + "/ca.crt",
            "--metrics-listen",
            "127.0.0.1:0"},
        data + ".out");
    return testing::WaitForFile(data + "/listen.addr");
  }

  void StartController(const std::vector<std::string>& extra = {}) {
    const std::string data = root() + "/controller";
    std::vector<std::string> argv = {Bin("dp-controller"),
                                     "--data-dir",
                                     data,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--cert",
                                     pki_ + "/site01.contoso.com.crt",
                                     "--key",
                                     pki_ + "/site01.contoso.com.key",
                                     "--ca",
                                     pki_ + "/ca.crt",
                                     "--inbox-scan-seconds",
                                     "1",
                                     "--metrics-listen",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    controller_ = std::make_unique<ChildProcess>(argv, root() + "/controller.out");
    addr_ = testing::WaitForFile(data + "/listen.addr");
    ASSERT_FALSE(addr_.empty());
  }

  // DP01's agent again, slowed to `package_delay_ms` a package, and the
  // controller restarted with `controller_flags`.
  void RestartSlowAgentAndController(int package_delay_ms,
                                     const std::vector<std::string>& controller_flags) {
    agent_proc1_.reset();
    agent1_ =
        StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", package_delay_ms);
    controller_->Signal(SIGTERM);
    controller_->Wait();
    fs::remove(root() + "/controller/listen.addr");
    StartController(controller_flags);
  }

  void Import(const std::string& dp01_endpoint, const std::string& dp02_endpoint) {
    testing::DemoSite site;
    site.dp01_endpoint = dp01_endpoint;
    site.dp02_endpoint = dp02_endpoint;
    testing::WriteFile(root() + "/inventory.json", testing::DemoInventory(site).dump(2));
    auto r = Dpctl({"inventory", "import", root() + "/inventory.json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Polls job 1 until at least `n` packages are converted (during step 8);
  // returns the count it saw last.
  int WaitForConverted(int n) {
    int converted = 0;
    for (int i = 0; i < 200 && converted < n; ++i) {
      auto j =
          nlohmann::json::parse(Dpctl({"job", "show", "1", "-o", "json"}).output, nullptr, false);
      if (j.is_object() && j.value("step", 0) == 8) converted = j.value("packages_converted", 0);
      if (converted < n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return converted;
  }

  std::vector<std::string> LegacyLeft(const std::string& dp) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(root() + "/" + dp + "/legacy/SMSPKGD$")) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  testing::TempDir dir_;
  std::string pki_;
  std::string addr_;
  std::string agent1_, agent2_;
  std::unique_ptr<ChildProcess> agent_proc1_, agent_proc2_, controller_;
};

TEST_F(EndToEndTest, ReassignsOneDpAndConvertsItsLibraryLeavingTheOtherAlone) {
  Import(agent1_, agent2_);
  auto run = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"});
  ASSERT_EQ(run.exit_code, 0) << run.output << testing::ReadFile(root() + "/dp01.out");
  EXPECT_THAT(run.output, HasSubstr("Completed"));

  // The library holds every package and checks clean, from the agent.
  auto verify = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr("library OK: 6 package(s)"));
  for (const char* sub : {"DataLib", "FileLib", "PkgLib"}) {
    EXPECT_TRUE(fs::is_directory(root() + "/dp01/content/SCCMContentLib/" + std::string(sub)));
  }
  // Legacy folders are gone except the package that keeps its share.
  EXPECT_THAT(LegacyLeft("dp01"), ::testing::ElementsAre(testing::PackageIdOf(1)));
  // DP02: untouched.
  EXPECT_EQ(LegacyLeft("dp02").size(), 3u);
  EXPECT_FALSE(fs::exists(root() + "/dp02/content/SCCMContentLib"));
  // The agent persisted its assignment and says so.
  const std::string ini = testing::ReadFile(root() + "/dp01/assignment.ini");
  EXPECT_THAT(ini, HasSubstr("SiteCode=P01"));
  EXPECT_THAT(ini, HasSubstr("Controller=site01.contoso.com"));
  // Both logs tell the story in CMTrace lines.
  const std::string smsdpprov = testing::ReadFile(root() + "/dp01/logs/smsdpprov.log");
  EXPECT_THAT(smsdpprov, HasSubstr("<![LOG[assigned to site P01 as DPID 6"));
  EXPECT_THAT(smsdpprov, HasSubstr("is in the content library"));
  const std::string distmgr = testing::ReadFile(root() + "/controller/logs/distmgr.log");
  EXPECT_THAT(distmgr, HasSubstr("DP upgrade notification 6.dpu received"));
  // The rows: DP01's packages name the new DP in P01, DP02's are as imported.
  controller_->Signal(SIGTERM);
  EXPECT_EQ(controller_->Wait(std::chrono::seconds(20)), 0);
  const std::string db = testing::DumpSiteDb(root() + "/controller/site.db");
  const std::string dp01_new =
      R"(["Display=\\DP01.CONTOSO.COM\"]MSWNET:["SMS_SITE=P01"]\\DP01.CONTOSO.COM\)";
  const std::string dp01_old =
      R"(["Display=\\DP01.CONTOSO.COM\"]MSWNET:["SMS_SITE=S07"]\\DP01.CONTOSO.COM\)";
  const std::string dp02 =
      R"(["Display=\\DP02.CONTOSO.COM\"]MSWNET:["SMS_SITE=S07"]\\DP02.CONTOSO.COM\)";
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = db.find(needle); at != std::string::npos; at = db.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("PkgServer=" + dp01_new), 6u);
  EXPECT_EQ(count("PkgServer=" + dp01_old), 0u);
  EXPECT_EQ(count("PkgServer=" + dp02), 3u);
  EXPECT_EQ(count("NALPath=" + dp02),
            3u + 3u + 1u + 4u + 1u);  // PkgServers, ContentDPMap, DP, SysRes, MigrationDP
}

// An admin watching a DP's verify gets the agent's progress relayed by the
// controller, then the report; the last progress counts what it reports.
TEST_F(EndToEndTest, AWatchedVerifyStreamsTheAgentsProgressThenTheReport) {
  // Slow packages, so the reassign's watch is surely attached by step 9.
  agent_proc1_.reset();
  agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", 100);
  Import(agent1_, agent2_);
  auto run = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Step 9's check streams the agent's progress to the job's watchers.
  nlohmann::json step9;
  std::istringstream lines(run.output);
  for (std::string line; std::getline(lines, line);) {
    auto e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_object() && e.contains("verify_progress")) step9 = e["verify_progress"];
  }
  ASSERT_TRUE(step9.is_object()) << run.output;
  EXPECT_EQ(step9.value("contents_done", ""), "6") << step9.dump();
  EXPECT_EQ(step9.value("contents_total", ""), "6") << step9.dump();
  std::vector<v1::VerifyEvent> events;
  grpc::Status st = WatchVerify("DP01.CONTOSO.COM", /*repair=*/false, &events);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(events.size(), 2u);
  ASSERT_TRUE(events.back().has_report());
  const v1::VerifyReport& report = events.back().report();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.packages_checked(), 6u);
  const v1::VerifyEvent& last_progress = events[events.size() - 2];
  ASSERT_TRUE(last_progress.has_progress());
  EXPECT_EQ(last_progress.progress().contents_done(), report.contents_checked());
  EXPECT_EQ(last_progress.progress().contents_total(), report.contents_checked());
  EXPECT_EQ(last_progress.progress().objects_done(), report.objects_checked());
  EXPECT_EQ(last_progress.progress().bytes_hashed(), report.bytes_hashed());
  EXPECT_GT(report.bytes_hashed(), 0u);
  for (size_t i = 0; i + 1 < events.size(); ++i) EXPECT_TRUE(events[i].has_progress()) << i;
  // An unknown DP: a clear error, no stream of nothing.
  std::vector<v1::VerifyEvent> none;
  st = WatchVerify("NOSUCH.CONTOSO.COM", /*repair=*/false, &none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("NOSUCH.CONTOSO.COM"));
}

// A library object damaged on the DP whose bytes survive in the package
// share kept there: 'dpctl dp verify' names it, '--repair' has the agent put
// the copy back, and the legacy file is only read.
TEST_F(EndToEndTest, DpVerifyRepairRestoresADamagedObjectFromTheKeptShare) {
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"}).exit_code, 0);
  std::string source, bytes;
  for (const auto& e : fs::recursive_directory_iterator(root() + "/dp01/legacy/SMSPKGD$/" +
                                                        testing::PackageIdOf(1))) {
    if (e.is_regular_file() && e.file_size() > 0) {
      source = e.path().string();
      bytes = testing::ReadFile(source);
      break;
    }
  }
  ASSERT_FALSE(bytes.empty());
  const std::string hash = Sha256Hex(bytes);
  const std::string object =
      root() + "/dp01/content/SCCMContentLib/FileLib/" + hash.substr(0, 4) + "/" + hash;
  ASSERT_TRUE(fs::exists(object)) << object;
  testing::WriteFile(object, "damaged on the DP");

  auto found = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_EQ(found.exit_code, 1) << found.output;
  EXPECT_THAT(found.output, HasSubstr("library has problems"));
  EXPECT_THAT(found.output, HasSubstr(hash));

  auto fixed = Dpctl({"dp", "verify", "DP01.CONTOSO.COM", "--repair"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_THAT(fixed.output, HasSubstr("repaired: " + hash + " from '"));
  EXPECT_THAT(fixed.output, HasSubstr("library OK: 6 package(s)"));
  EXPECT_EQ(testing::ReadFile(object), bytes);
  EXPECT_EQ(testing::ReadFile(source), bytes);
  EXPECT_THAT(testing::ReadFile(root() + "/dp01/logs/smsdpprov.log"),
              HasSubstr("repaired library object " + hash));
  // Nothing left to repair: a plain clean report.
  auto again = Dpctl({"dp", "verify", "DP01.CONTOSO.COM", "--repair", "-o", "json"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  auto json = nlohmann::json::parse(again.output, nullptr, false);
  EXPECT_EQ(json.value("ok", false), true) << again.output;
  EXPECT_FALSE(json.contains("repair")) << again.output;

  // Watched, a repair shows its phases as they begin: the check, the search
  // of the legacy folders, the check again; then the report. A second
  // object has no copy left, so the search lists the whole legacy root,
  // more files than one progress step: the last counts of the search still
  // reach the watcher before the second check begins.
  testing::WriteFile(object, "damaged again");
  const std::string legacy = root() + "/dp01/legacy";
  std::set<std::string> in_legacy;
  for (const auto& e : fs::recursive_directory_iterator(legacy)) {
    if (e.is_regular_file()) in_legacy.insert(Sha256Hex(testing::ReadFile(e.path().string())));
  }
  std::string lost;
  for (const auto& e :
       fs::recursive_directory_iterator(root() + "/dp01/content/SCCMContentLib/FileLib")) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() == 64 && !in_legacy.count(name))
      lost = e.path().string();
  }
  ASSERT_FALSE(lost.empty());
  testing::WriteFile(lost, "no copy of this anywhere");
  fs::create_directories(legacy + "/unrelated");
  for (int i = 0; i < 300; ++i) {
    testing::WriteFile(legacy + "/unrelated/f" + std::to_string(i), std::to_string(i));
  }
  std::vector<v1::VerifyEvent> events;
  grpc::Status st = WatchVerify("DP01.CONTOSO.COM", /*repair=*/true, &events);
  std::vector<v1::VerifyProgress::Phase> phases;
  std::optional<v1::VerifyProgress> searched;
  std::optional<v1::VerifyReport> report;
  for (const auto& e : events) {
    if (e.has_report()) report = e.report();
    if (!e.has_progress()) continue;
    if (phases.empty() || phases.back() != e.progress().phase()) {
      phases.push_back(e.progress().phase());
    }
    if (e.progress().phase() == v1::VerifyProgress::PHASE_REPAIR) searched = e.progress();
  }
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_THAT(phases, ElementsAre(v1::VerifyProgress::PHASE_CHECK, v1::VerifyProgress::PHASE_REPAIR,
                                  v1::VerifyProgress::PHASE_RECHECK));
  ASSERT_TRUE(searched.has_value());
  EXPECT_EQ(searched->objects_damaged(), 2u);
  EXPECT_EQ(searched->objects_repaired(), 1u);
  EXPECT_GE(searched->legacy_files_hashed(), 1u);
  ASSERT_TRUE(report.has_value());
  EXPECT_FALSE(report->ok());
  EXPECT_EQ(report->repair().repaired_size(), 1);
  EXPECT_EQ(report->repair().unrepaired_size(), 1);
  EXPECT_GT(report->repair().legacy_files_seen(), 300u);
  EXPECT_EQ(searched->legacy_files_seen(), report->repair().legacy_files_seen());
  EXPECT_EQ(searched->legacy_files_hashed(), report->repair().legacy_files_hashed());
  EXPECT_EQ(report->repair().legacy_folders_unreadable(), 0u);
  EXPECT_EQ(testing::ReadFile(object), bytes);
}

// An admin's plain (unary) verify whose caller gives up (here its 1 s
// deadline) ends the agent's check too, as the watched one does: the agent,
// holding its check for 30 s, stops within seconds.
TEST_F(EndToEndTest, AnAdminWhoLeavesAPlainVerifyStopsTheAgentsCheck) {
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"}).exit_code, 0);
  agent_proc1_.reset();
  ASSERT_FALSE(
      StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, agent1_, 0, /*verify_delay_ms=*/30000)
          .empty());
  auto stub = AdminStub();
  ASSERT_NE(stub, nullptr);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  v1::VerifyDistributionPointRequest req;
  req.set_dp("DP01.CONTOSO.COM");
  v1::VerifyReport report;
  grpc::Status st = stub->VerifyDistributionPoint(&ctx, req, &report);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  const auto left = std::chrono::steady_clock::now();
  const std::string log = root() + "/dp01/logs/smsdpprov.log";
  while (testing::ReadFile(log).find("library check stopped") == std::string::npos &&
         std::chrono::steady_clock::now() - left < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - left).count();
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("library check stopped: verify cancelled"));
  EXPECT_LT(stop_s, 5.0) << "the agent holds its check for 30 s";
}

// The agent dies (kill -9) in the middle of the conversion and comes back:
// the controller's retry with backoff finishes the job with no new command,
// and nothing is lost.
TEST_F(EndToEndTest, AnAgentKilledMidConversionIsRetriedToCompletion) {
  agent_proc1_.reset();
  agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", 400);
  Import(agent1_, agent2_);
  auto start = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach", "-o", "json"});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  // Wait until some but not all packages are converted.
  const int converted = WaitForConverted(2);
  ASSERT_GE(converted, 2);
  ASSERT_LT(converted, 6);
  agent_proc1_->Signal(SIGKILL);
  agent_proc1_->Wait();
  // Back on the same address, at full speed.
  ASSERT_FALSE(StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, agent1_).empty());
  auto watch = Dpctl({"job", "watch", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("job 1 Completed"));
  auto verify = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr("library OK: 6 package(s)"));
  EXPECT_THAT(LegacyLeft("dp01"), ::testing::ElementsAre(testing::PackageIdOf(1)));
  EXPECT_THAT(testing::ReadFile(root() + "/controller/logs/distmgr.log"),
              HasSubstr("conversion stream broke"));
  EXPECT_THAT(testing::ReadFile(root() + "/dp01/logs/smsdpprov.log"),
              HasSubstr("(converted earlier)"));
}

// The controller dies (kill -9) mid-conversion while the agent carries on:
// the restarted controller asks again, the agent finishes the running
// conversion first and reports those packages as done, the job completes.
TEST_F(EndToEndTest, AControllerKilledMidConversionResumesWithTheAgentStillWorking) {
  agent_proc1_.reset();
  agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", 300);
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  ASSERT_GE(WaitForConverted(1), 1);
  controller_->Signal(SIGKILL);
  controller_->Wait();
  fs::remove(root() + "/controller/listen.addr");
  StartController();
  auto watch = Dpctl({"job", "watch", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("job 1 Completed"));
  auto verify = Dpctl({"dp", "verify", "DP01.CONTOSO.COM"});
  EXPECT_THAT(verify.output, HasSubstr("library OK: 6 package(s)"));
  EXPECT_THAT(LegacyLeft("dp01"), ::testing::ElementsAre(testing::PackageIdOf(1)));
}

// SIGTERM while the agent checks its library (step 9, hours on a large DP):
// the controller stops promptly and checks again when restarted.
TEST_F(EndToEndTest, AControllerStoppedDuringTheLibraryCheckStopsPromptlyAndResumes) {
  agent_proc1_.reset();
  agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", 0, 30000);
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  const std::string log = root() + "/controller/logs/distmgr.log";
  for (int i = 0; i < 200 && testing::ReadFile(log).find("step 9: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_THAT(testing::ReadFile(log), HasSubstr("step 9: "));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the agent's pause
  const auto t0 = std::chrono::steady_clock::now();
  controller_->Signal(SIGTERM);
  EXPECT_EQ(controller_->Wait(std::chrono::seconds(40)), 0);
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(stop_s, 5.0) << "the agent holds the check for 30 s";
  EXPECT_THAT(testing::ReadFile(log), HasSubstr("interrupted by shutdown at step 9"));
  // The agent again, without the pause; the restarted controller checks.
  agent_proc1_.reset();
  ASSERT_FALSE(StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, agent1_).empty());
  fs::remove(root() + "/controller/listen.addr");
  StartController();
  auto watch = Dpctl({"job", "watch", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("job 1 Completed"));
}

// SIGTERM during a long conversion: the controller stops promptly instead of
// waiting for the conversion, and picks the job up again when restarted.
TEST_F(EndToEndTest, AControllerStoppedMidConversionStopsPromptlyAndResumes) {
  agent_proc1_.reset();
  agent1_ = StartAgent("dp01", "DP01.CONTOSO.COM", &agent_proc1_, "127.0.0.1:0", 1000);
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  ASSERT_GE(WaitForConverted(1), 1);
  const auto t0 = std::chrono::steady_clock::now();
  controller_->Signal(SIGTERM);
  EXPECT_EQ(controller_->Wait(std::chrono::seconds(20)), 0);
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(stop_s, 3.0) << "the remaining packages take about 4 s";
  EXPECT_THAT(testing::ReadFile(root() + "/controller/logs/distmgr.log"),
              HasSubstr("interrupted by shutdown at step 8"));
  fs::remove(root() + "/controller/listen.addr");
  StartController();
  auto watch = Dpctl({"job", "watch", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("job 1 Completed"));
}

// SIGSTOP of the agent mid-stream: keepalive notices the stall, the
// controller retries, and once the agent runs again the job completes.
TEST_F(EndToEndTest, AStalledAgentIsNoticedByKeepaliveAndTheJobCarriesOn) {
  RestartSlowAgentAndController(
      500, {"--agent-keepalive-seconds", "5", "--agent-keepalive-timeout-seconds", "2",
            "--convert-attempts", "10"});
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  ASSERT_GE(WaitForConverted(1), 1);
  const auto t0 = std::chrono::steady_clock::now();
  agent_proc1_->Signal(SIGSTOP);
  double detected = -1;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
    if (testing::ReadFile(root() + "/controller/logs/distmgr.log")
            .find("conversion stream broke") != std::string::npos) {
      detected = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  agent_proc1_->Signal(SIGCONT);
  ASSERT_GT(detected, 0) << "the stall was not noticed in 30 s";
  EXPECT_LT(detected, 5 + 2 + 5) << "keepalive 5 s + timeout 2 s, with slack for loaded CI";
  std::printf("stalled agent noticed after %.1f s (keepalive 5 s, timeout 2 s)\n", detected);
  auto watch = Dpctl({"job", "watch", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("job 1 Completed"));
}

// Dropped connections (RELIABILITY row 14): the controller reaches DP01's
// agent, and the watching dpctl reaches the controller, through TCP
// forwarders; both are killed mid-conversion, which drops every connection
// at once, and started again on the same ports. The controller notices and
// retries, the job completes, and the watcher re-attaches and prints every
// durable event exactly once.
TEST_F(EndToEndTest, DroppedConnectionsAreNoticedRetriedAndTheWatcherLosesNoEvent) {
  RestartSlowAgentAndController(
      400, {"--agent-keepalive-seconds", "5", "--agent-keepalive-timeout-seconds", "2",
            "--convert-attempts", "10"});
  const std::string proxy_py = testing::SourceDir() + "/tests/support/tcp_proxy.py";
  auto start_proxy = [&](const std::string& name, const std::string& listen,
                         const std::string& target, std::unique_ptr<ChildProcess>* proc) {
    const std::string addr_file = root() + "/" + name + ".addr";
    fs::remove(addr_file);
    *proc = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/python3", proxy_py, listen, target, addr_file},
        root() + "/" + name + ".out");
    return testing::WaitForFile(addr_file);
  };
  std::unique_ptr<ChildProcess> agent_proxy, admin_proxy;
  const std::string agent_via = start_proxy("agent-proxy", "127.0.0.1:0", agent1_, &agent_proxy);
  const std::string admin_via = start_proxy("admin-proxy", "127.0.0.1:0", addr_, &admin_proxy);
  ASSERT_FALSE(agent_via.empty());
  ASSERT_FALSE(admin_via.empty());
  Import(agent_via, agent2_);

  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  ChildProcess watcher({Bin("dpctl"), "--controller", admin_via, "--cert", pki_ + "/ops1.crt",
                        "--key", pki_ + "/ops1.key", "--ca", pki_ + "/ca.crt", "job", "watch", "1",
                        "--from-start", "-o", "json"},
                       root() + "/watch.out");
  ASSERT_GE(WaitForConverted(1), 1);
  const auto log_size = testing::ReadFile(root() + "/controller/logs/distmgr.log").size();
  const auto t0 = std::chrono::steady_clock::now();
  agent_proxy->Signal(SIGKILL);
  admin_proxy->Signal(SIGKILL);
  agent_proxy->Wait();
  admin_proxy->Wait();
  double detected = -1;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
    if (testing::ReadFile(root() + "/controller/logs/distmgr.log")
            .find("conversion stream broke", log_size) != std::string::npos) {
      detected = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(detected, 0) << "the dropped agent connection was not noticed in 20 s";
  std::printf("dropped agent connection noticed after %.2f s\n", detected);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_EQ(start_proxy("agent-proxy", agent_via, agent1_, &agent_proxy), agent_via);
  ASSERT_EQ(start_proxy("admin-proxy", admin_via, addr_, &admin_proxy), admin_via);

  EXPECT_EQ(watcher.Wait(std::chrono::seconds(60)), 0);
  const std::string watched = testing::ReadFile(root() + "/watch.out");
  auto all = Dpctl({"job", "watch", "1", "--from-start", "-o", "json"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_THAT(all.output, HasSubstr("JOB_STATUS_COMPLETED"));
  EXPECT_EQ(testing::DurableSeqs(watched), testing::DurableSeqs(all.output)) << watched;
  EXPECT_THAT(watched, HasSubstr("\"finished\":{\"status\":\"JOB_STATUS_COMPLETED\""));
  EXPECT_EQ(Dpctl({"dp", "verify", "DP01.CONTOSO.COM"}).exit_code, 0);
}

// Certificate rotation with streams open (RELIABILITY row 3): the
// controller's pair is replaced (by rename, as an admin would) while it
// streams a conversion from the agent and a dpctl watcher streams the job
// from it. Both streams carry on, calls made during the swap all succeed,
// and a new connection is served with the new certificate.
TEST_F(EndToEndTest, RotatingTheControllerCertificateKeepsOpenStreams) {
  RestartSlowAgentAndController(400, {"--tls-reload-seconds", "1"});
  Import(agent1_, agent2_);
  ASSERT_EQ(Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01", "--detach"}).exit_code, 0);
  ChildProcess watcher(
      {Bin("dpctl"), "--controller", addr_, "--cert", pki_ + "/ops1.crt", "--key",
       pki_ + "/ops1.key", "--ca", pki_ + "/ca.crt", "job", "watch", "1", "-o", "json"},
      root() + "/watch.out");
  ASSERT_GE(WaitForConverted(1), 1);
  auto serial = [&] {
    return RunCommand({"/bin/sh", "-c",
                       "openssl s_client -connect " + addr_ + " -cert " + pki_ + "/ops1.crt -key " +
                           pki_ + "/ops1.key -CAfile " + pki_ +
                           "/ca.crt </dev/null 2>/dev/null | openssl x509 -noout -serial"})
        .output;
  };
  const std::string before = serial();
  ASSERT_THAT(before, HasSubstr("serial="));
  auto staged =
      testing::StageNewPair(pki_, root() + "/staging", "controller", "site01.contoso.com");
  fs::rename(staged.key, pki_ + "/site01.contoso.com.key");
  fs::rename(staged.cert, pki_ + "/site01.contoso.com.crt");
  // Calls for 3 s at least (the swap takes about a reload period), until
  // the new serial is served.
  int calls = 0, failed = 0;
  std::string after;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
    ++calls;
    if (Dpctl({"job", "show", "1", "-o", "json"}).exit_code != 0) ++failed;
    after = serial();
    if (after != before && after.find("serial=") != std::string::npos &&
        std::chrono::steady_clock::now() - t0 > std::chrono::seconds(3)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(after, before) << "the new certificate was not taken into use";
  EXPECT_EQ(failed, 0) << "of " << calls << " calls during the rotation";
  EXPECT_EQ(watcher.Wait(std::chrono::seconds(60)), 0);
  const std::string watched = testing::ReadFile(root() + "/watch.out");
  EXPECT_THAT(watched, HasSubstr("\"finished\":{\"status\":\"JOB_STATUS_COMPLETED\""));
  EXPECT_THAT(watched, Not(HasSubstr("re-attaching"))) << "the watch stream was dropped";
  EXPECT_EQ(testing::ReadFile(root() + "/controller/logs/distmgr.log").find("stream broke"),
            std::string::npos)
      << "the conversion stream was dropped";
  std::printf("rotation with two streams open: %d calls during it, %d failed; %s -> %s\n", calls,
              failed, before.substr(0, before.find('\n')).c_str(),
              after.substr(0, after.find('\n')).c_str());
}

// GET /metrics of a daemon (its data folder holds metrics.addr).
std::string Scrape(const std::string& data_dir) {
  const std::string addr = testing::ReadFile(data_dir + "/metrics.addr");
  auto r =
      RunCommand({"/usr/bin/python3", "-c",
                  "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                  "'http://" +
                      addr.substr(0, addr.find('\n')) + "/metrics', timeout=5).read().decode())"});
  return r.exit_code == 0 ? r.output : "";
}

// The value of the sample `series` ("name" or "name{labels}"), or -1.
double Metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// Issue 7: both daemons' /metrics after a reassignment tell the same story
// as the job: statuses, steps, packages, bytes, dedup, calls by code.
TEST_F(EndToEndTest, BothDaemonsMetricsTellTheReassignment) {
  Import(agent1_, agent2_);
  auto run = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(Dpctl({"job", "show", "99"}).exit_code, 0);
  // Refused by the role gate, before any handler: counted all the same.
  EXPECT_NE(
      RunCommand({Bin("dpctl"), "--controller", addr_, "--cert", pki_ + "/DP01.CONTOSO.COM.crt",
                  "--key", pki_ + "/DP01.CONTOSO.COM.key", "--ca", pki_ + "/ca.crt", "status"})
          .exit_code,
      0);
  auto job = nlohmann::json::parse(Dpctl({"job", "show", "1", "-o", "json"}).output);
  const double packages = job.value("packages_total", 0);
  ASSERT_GT(packages, 0);

  const std::string c = Scrape(root() + "/controller");
  const std::string a = Scrape(root() + "/dp01");
  ASSERT_FALSE(c.empty());
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(Metric(c, "dpr_controller_jobs{status=\"completed\"}"), 1) << c;
  EXPECT_EQ(Metric(c, "dpr_controller_jobs{status=\"failed\"}"), 0);
  for (int step = 1; step <= 9; ++step) {
    EXPECT_EQ(Metric(c, "dpr_controller_step_duration_seconds_count{step=\"" +
                            std::to_string(step) + "\"}"),
              1)
        << "step " << step;
  }
  EXPECT_GT(Metric(c, "dpr_controller_step_duration_seconds_sum{step=\"8\"}"), 0);
  EXPECT_EQ(Metric(c, "dpr_controller_packages_converted_total"), packages);
  EXPECT_EQ(Metric(a, "dpr_agent_packages_converted_total"), packages) << a;
  EXPECT_EQ(Metric(a, "dpr_agent_conversions_total"), 1);
  const double bytes = Metric(a, "dpr_agent_converted_bytes_total");
  EXPECT_GT(bytes, 0);
  EXPECT_EQ(Metric(c, "dpr_controller_converted_bytes_total"), bytes);
  EXPECT_EQ(Metric(c, "dpr_controller_dedup_saved_bytes_total"),
            Metric(a, "dpr_agent_dedup_saved_bytes_total"));
  EXPECT_EQ(
      Metric(a, "dpr_agent_stored_bytes_total") + Metric(a, "dpr_agent_dedup_saved_bytes_total"),
      bytes);
  EXPECT_GT(Metric(a, "dpr_agent_conversion_rate_bytes_per_second"), 0);
  EXPECT_EQ(Metric(a, "dpr_agent_converting"), 0);
  EXPECT_EQ(Metric(c,
                   "dpr_grpc_server_handled_total{grpc_method=\"/dpreassign.v1.AdminService/"
                   "GetJob\",grpc_code=\"NOT_FOUND\"}"),
            1)
      << c;
  EXPECT_EQ(Metric(a,
                   "dpr_grpc_server_handled_total{grpc_method=\"/dpreassign.v1.AgentService/"
                   "ConvertContent\",grpc_code=\"OK\"}"),
            1);
  // Base units and no package IDs in any label.
  EXPECT_THAT(c + a, Not(HasSubstr("package_id")));
  EXPECT_THAT(c + a, Not(HasSubstr(testing::PackageIdOf(1))));
  std::printf(
      "controller: %.0f package(s), %.0f byte(s) converted, %.0f deduplicated; step 8 "
      "took %.3f s\n",
      Metric(c, "dpr_controller_packages_converted_total"),
      Metric(c, "dpr_controller_converted_bytes_total"),
      Metric(c, "dpr_controller_dedup_saved_bytes_total"),
      Metric(c, "dpr_controller_step_duration_seconds_sum{step=\"8\"}"));
}

TEST_F(EndToEndTest, TheAgentObeysOnlyItsAssignedController) {
  Import(agent1_, agent2_);
  auto run = Dpctl({"reassign", "DP01.CONTOSO.COM", "--to", "P01"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Another controller of the same CA: refused by the assigned agent.
  auto creds = MakeChannelCredentials(
      {pki_ + "/rogue.contoso.com.crt", pki_ + "/rogue.contoso.com.key", pki_ + "/ca.crt", 60});
  ASSERT_TRUE(creds.ok());
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("DP01.CONTOSO.COM");
  auto stub = v1::AgentService::NewStub(grpc::CreateCustomChannel(agent1_, *creds, args));
  for (int method = 0; method < 4; ++method) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st;
    if (method == 0) {
      v1::AssignSiteRequest req;
      req.set_site_code("X01");
      req.set_controller_identity("rogue.contoso.com");
      v1::AssignSiteResponse resp;
      st = stub->AssignSite(&ctx, req, &resp);
    } else if (method == 1) {
      v1::VerifyReport resp;
      st = stub->VerifyLibrary(&ctx, {}, &resp);
    } else if (method == 2) {
      auto reader = stub->WatchVerifyLibrary(&ctx, {});
      v1::VerifyEvent e;
      while (reader->Read(&e)) {
      }
      st = reader->Finish();
    } else {
      auto reader = stub->ConvertContent(&ctx, {});
      v1::ConvertEvent e;
      while (reader->Read(&e)) {
      }
      st = reader->Finish();
    }
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr("site01.contoso.com")) << method;
  }
  EXPECT_THAT(testing::ReadFile(root() + "/dp01/assignment.ini"), HasSubstr("SiteCode=P01"));
}

TEST_F(EndToEndTest, TheControllerRefusesAnAgentWhoseCertificateNamesAnotherDp) {
  // DP02's record points at DP01's agent: the handshake must fail.
  Import(agent1_, agent1_);
  auto run = Dpctl({"reassign", "DP02.CONTOSO.COM", "--to", "P01", "--detach"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output,
              HasSubstr("presented a certificate that does not name 'DP02.CONTOSO.COM'"));
  auto jobs = Dpctl({"job", "list", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(jobs.output).value("jobs", nlohmann::json::array()).size(), 0u);
  EXPECT_EQ(LegacyLeft("dp01").size(), 6u);  // nothing touched
}

}  // namespace
}  // namespace dpr
