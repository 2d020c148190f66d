// dp-agent convert and verify as an admin runs them offline: a generated
// corpus is converted, verify passes, every legacy file's bytes read back
// from FileLib under the name DataLib gives it, and a flipped byte makes
// verify fail naming the object.
#include <algorithm>
#include <filesystem>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr {
namespace {

using ::dpr::testing::ReadFile;
using ::dpr::testing::RunCommand;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string Agent() { return testing::BinDir() + "/dp-agent"; }

std::map<std::string, std::string> ParseIni(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    std::string line = text.substr(pos, eol - pos);
    pos = eol == std::string::npos ? text.size() : eol + 2;
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

TEST(ConvertIntegrationTest, ConvertVerifyAndReadBack) {
  testing::TempDir dir;
  const std::string legacy = dir / "SMSPKGD$";
  auto corpus = testing::MakeCorpus(legacy, 12, 30, 300000, /*seed=*/7);
  testing::WriteFile(dir / "packages.txt", "# id version [keep]\n");
  {
    std::string list;
    for (const auto& e : fs::directory_iterator(legacy)) {
      const std::string id = e.path().filename().string();
      list += id + " 3" + (id == "ABC00004" ? " keep\n" : "\n");
    }
    testing::WriteFile(dir / "packages.txt", list);
  }
  auto r =
      RunCommand({Agent(), "convert", "--legacy-root", legacy, "--content-root", dir / "content",
                  "--packages", dir / "packages.txt", "--jobs", "2", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto summary = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(summary["packages_done"], 12);
  EXPECT_EQ(summary["files"], corpus.size());

  r = RunCommand({Agent(), "verify", "--content-root", dir / "content"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ok: 12 packages, 12 contents"));

  const std::string lib = dir / "content/SCCMContentLib";
  for (const auto& [path, data] : corpus) {
    const std::string pkg = path.substr(0, path.find('/'));
    const std::string rel = path.substr(path.find('/') + 1);
    auto ini = ParseIni(ReadFile(lib + "/DataLib/" + pkg + ".3/" + rel + ".INI"));
    const std::string hash = ini["Hash"];
    ASSERT_EQ(hash.size(), 64u) << path;
    EXPECT_EQ(ini["Size"], std::to_string(data.size()));
    EXPECT_EQ(ReadFile(lib + "/FileLib/" + hash.substr(0, 4) + "/" + hash), data) << path;
  }
  auto pkglib = ParseIni(ReadFile(lib + "/PkgLib/ABC00001.INI"));
  EXPECT_EQ(pkglib["Version"], "3");
  EXPECT_TRUE(pkglib.count("ABC00001.3"));
  // Only the kept package share is left of the legacy tree.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(legacy)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"ABC00004"});

  // A flipped byte is found and named.
  const std::string first =
      corpus.begin()->second.empty() ? std::next(corpus.begin())->first : corpus.begin()->first;
  const std::string pkg = first.substr(0, first.find('/'));
  auto ini = ParseIni(
      ReadFile(lib + "/DataLib/" + pkg + ".3/" + first.substr(first.find('/') + 1) + ".INI"));
  const std::string object = lib + "/FileLib/" + ini["Hash"].substr(0, 4) + "/" + ini["Hash"];
  std::string bytes = ReadFile(object);
  bytes[bytes.size() / 2] ^= 0x01;
  testing::WriteFile(object, bytes);
  r = RunCommand({Agent(), "verify", "--content-root", dir / "content", "-o", "json"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hash-mismatch"));
  EXPECT_THAT(r.output, HasSubstr(ini["Hash"]));
}

// RELIABILITY row 9: damaged objects are found by verify and, where a
// legacy copy of their bytes still exists (here the kept package share),
// repaired from it; one with no copy left is named as not repaired.
TEST(ConvertIntegrationTest, VerifyRepairsDamagedObjectsFromLegacyCopies) {
  testing::TempDir dir;
  const std::string legacy = dir / "SMSPKGD$";
  auto corpus = testing::MakeCorpus(legacy, 8, 12, 100000, /*seed=*/11);
  std::string list;
  for (const auto& e : fs::directory_iterator(legacy)) {
    const std::string id = e.path().filename().string();
    list += id + " 1" + (id == "ABC00004" ? " keep\n" : "\n");
  }
  testing::WriteFile(dir / "packages.txt", list);
  auto r = RunCommand({Agent(), "convert", "--legacy-root", legacy, "--content-root",
                       dir / "content", "--packages", dir / "packages.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string lib = dir / "content/SCCMContentLib";
  auto object_of = [&](const std::string& path) {
    auto ini = ParseIni(ReadFile(lib + "/DataLib/" + path.substr(0, path.find('/')) + ".1/" +
                                 path.substr(path.find('/') + 1) + ".INI"));
    return ini["Hash"];
  };
  // Three objects the kept share holds copies of, one it does not.
  std::map<std::string, std::string> kept, other;  // hash -> bytes
  for (const auto& [path, data] : corpus) {
    if (data.size() < 2) continue;
    (path.rfind("ABC00004/", 0) == 0 ? kept : other)[object_of(path)] = data;
  }
  for (const auto& [h, _] : kept) other.erase(h);
  ASSERT_GE(kept.size(), 3u);
  ASSERT_GE(other.size(), 1u);
  auto it = kept.begin();
  const std::string flipped = (it++)->first, truncated = (it++)->first, deleted = it->first;
  const std::string lost = other.begin()->first;
  auto obj = [&](const std::string& h) { return lib + "/FileLib/" + h.substr(0, 4) + "/" + h; };
  std::string bytes = ReadFile(obj(flipped));
  bytes[bytes.size() / 2] ^= 0x20;
  testing::WriteFile(obj(flipped), bytes);
  fs::resize_file(obj(truncated), 1);
  fs::remove(obj(deleted));
  bytes = ReadFile(obj(lost));
  bytes[0] ^= 0x01;
  testing::WriteFile(obj(lost), bytes);
  std::map<std::string, std::string> legacy_before;
  for (const auto& e : fs::recursive_directory_iterator(legacy)) {
    if (e.is_regular_file()) legacy_before[e.path().string()] = ReadFile(e.path().string());
  }

  r = RunCommand({Agent(), "verify", "--content-root", dir / "content", "--repair-from", legacy,
                  "-o", "json"});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // the lost one stays damaged
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["repair"]["damaged"], 4);
  std::vector<std::string> repaired = j["repair"]["repaired"];
  std::sort(repaired.begin(), repaired.end());
  std::vector<std::string> want = {flipped, truncated, deleted};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(repaired, want);
  EXPECT_EQ(j["repair"]["unrepaired"], nlohmann::json::array({lost}));
  for (const auto& p : j["problems"]) {
    EXPECT_NE(p["path"].get<std::string>().find(lost), std::string::npos) << p.dump();
  }
  EXPECT_THAT(r.output, HasSubstr("not repaired: " + lost));
  for (const auto& h : want) EXPECT_EQ(ReadFile(obj(h)), kept[h]) << h;
  // The legacy copies were only read.
  for (const auto& [path, data] : legacy_before) EXPECT_EQ(ReadFile(path), data) << path;
}

// A conversion into a log (stderr not a terminal) with --progress always
// ends with a progress line that counts every package, a failed one too,
// and the JSON summary stays one line of its own.
TEST(ConvertIntegrationTest, ProgressAlwaysEndsWithALineCountingEveryPackage) {
  testing::TempDir dir;
  const std::string legacy = dir / "SMSPKGD$";
  testing::MakeCorpus(legacy, 3, 4, 20000, /*seed=*/11);
  testing::WriteFile(dir / "packages.txt", "ABC00001 1\nABC00002 1\nABC00003 1\nABC00009 1\n");
  auto r =
      RunCommand({Agent(), "convert", "--legacy-root", legacy, "--content-root", dir / "content",
                  "--packages", dir / "packages.txt", "--progress", "always", "-o", "json"});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // ABC00009 has no folder
  EXPECT_THAT(r.output, HasSubstr("failed: ABC00009"));
  EXPECT_THAT(r.output,
              ::testing::ContainsRegex("converted 3/4 packages, 1 failed, read [0-9.]+ MiB"));
  const size_t json = r.output.find("\n{");
  ASSERT_NE(json, std::string::npos) << r.output;
  auto summary = nlohmann::json::parse(r.output.substr(json + 1));
  EXPECT_EQ(summary["packages_done"], 3);

  r = RunCommand({Agent(), "convert", "--legacy-root", legacy, "--content-root", dir / "content",
                  "--progress", "sometimes"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--progress must be auto, always or never"));
}

TEST(ConvertIntegrationTest, UsageErrorsExitTwoAndMissingLibraryExitsOne) {
  testing::TempDir dir;
  auto r = RunCommand({Agent(), "convert", "--legacy-root", dir.path(), "--content-root", dir / "c",
                       "--mode", "teleport"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("unknown mode 'teleport'"));
  testing::WriteFile(dir / "p.txt", "ABC00001 one\n");
  r = RunCommand({Agent(), "convert", "--legacy-root", dir.path(), "--content-root", dir / "c",
                  "--packages", dir / "p.txt"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("p.txt:1: bad source version 'one'"));
  r = RunCommand({Agent(), "verify", "--content-root", dir / "nothing-here"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no content library"));
}

}  // namespace
}  // namespace dpr
