#include "agent/local_commands.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_join.h"
#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"
#include "agent/importer/preflight.h"
#include "agent/importer/progress_line.h"
#include "agent/importer/repair.h"
#include "common/status/fmt_absl.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace dpr::agent {
namespace {

struct ConvertArgs {
  std::string legacy_root;
  std::string content_root;
  std::string mode = "auto";
  int jobs = 0;
  std::string packages_file;
  std::string output = "table";
  bool verbose = false;
  std::string progress = "auto";  // auto: when stderr is a terminal
  uint64_t batch_mib = 512;
  uint64_t buffer_kib = importer::ImportOptions{}.buffer_bytes >> 10;
  bool preflight = false;
  bool fsync_each_file = false;
};

struct VerifyArgs {
  std::string content_root;
  std::string repair_from;  // a legacy root to take copies of damaged objects from
  bool no_rehash = false;
  std::string output = "table";
  std::string progress = "auto";
};

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "dp-agent: %s\n", message.c_str());
  return code;
}

// --progress: auto (when stderr is a terminal), always or never.
bool ValidProgress(const std::string& v) { return v == "auto" || v == "always" || v == "never"; }
bool WantProgress(const std::string& v, bool terminal) {
  return v == "always" || (v == "auto" && terminal);
}
void ToStderr(const std::string& text) {
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}
constexpr const char* kProgressHelp =
    "auto (a line redrawn on stderr when it is a terminal), always (also a plain line every "
    "10 s, for logs) or never";

// "<PkgID> <SourceVersion> [keep]" per line; '#' starts a comment.
absl::StatusOr<std::vector<importer::PackageSpec>> ReadPackagesFile(const std::string& path,
                                                                    const std::string& root) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("cannot read packages file '{}'", path));
  std::vector<importer::PackageSpec> out;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string id, version, flag, extra;
    if (!(words >> id)) continue;
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: {}", path, line_no, why));
    };
    if (!(words >> version)) return bad("expected '<PkgID> <SourceVersion> [keep]'");
    if (!contentlib::IsValidPackageId(id)) return bad(fmt::format("bad package ID '{}'", id));
    char* end = nullptr;
    unsigned long v = std::strtoul(version.c_str(), &end, 10);
    if (*end != '\0' || v == 0 || v > 0xFFFFFFFFul)
      return bad(fmt::format("bad source version '{}'", version));
    bool keep = false;
    if (words >> flag) {
      if (flag != "keep") return bad(fmt::format("unknown flag '{}' (only 'keep')", flag));
      keep = true;
    }
    if (words >> extra) return bad("too many words");
    out.push_back({id, static_cast<uint32_t>(v), root + "/" + id, keep});
  }
  return out;
}

absl::StatusOr<std::vector<importer::PackageSpec>> EveryFolder(const std::string& root) {
  std::vector<importer::PackageSpec> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) {
      out.push_back({e.path().filename().string(), 1, e.path().string(), false});
    }
  }
  if (ec)
    return absl::NotFoundError(fmt::format("cannot list legacy root '{}': {}", root, ec.message()));
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.package_id < b.package_id; });
  return out;
}

std::string Mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

int RunPreflight(const ConvertArgs& a, const std::vector<importer::PackageSpec>& specs,
                 importer::ImportMode mode) {
  const std::string root = std::filesystem::absolute(a.content_root).lexically_normal().string();
  auto r = importer::Preflight(PosixFileSystem(), root, specs, mode);
  if (!r.ok()) return Fail(fmt::format("preflight stopped: {}", r.status().message()));
  if (a.output == "json") {
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& p : r->packages) {
      packages.push_back({{"package_id", p.package_id},
                          {"found", p.found},
                          {"files", p.files},
                          {"bytes", p.bytes},
                          {"error", std::string(p.error.message())}});
    }
    std::printf("%s\n", nlohmann::json{{"ok", r->ok},
                                       {"refusal", std::string(r->refusal.message())},
                                       {"same_filesystem", r->same_filesystem},
                                       {"effective_mode",
                                        std::string(importer::ModeName(r->effective_mode))},
                                       {"files_total", r->files_total},
                                       {"bytes_total", r->bytes_total},
                                       {"bytes_unique", r->bytes_unique},
                                       {"bytes_duplicate", r->bytes_duplicate},
                                       {"bytes_needed", r->bytes_needed},
                                       {"bytes_free", r->bytes_free},
                                       {"largest_package_bytes", r->largest_package_bytes},
                                       {"no_sms_on_drive", r->no_sms_on_drive},
                                       {"packages", packages}}
                            .dump()
                            .c_str());
  } else {
    std::printf("mode      %s (%s filesystem as the library)\n",
                std::string(importer::ModeName(r->effective_mode)).c_str(),
                r->same_filesystem ? "same" : "not the same");
    std::printf("packages  %zu, %llu files, %s\n", r->packages.size(),
                static_cast<unsigned long long>(r->files_total), Mib(r->bytes_total).c_str());
    std::printf("unique    %s (%s duplicate)\n", Mib(r->bytes_unique).c_str(),
                Mib(r->bytes_duplicate).c_str());
    std::printf("space     need %s, have %s; largest package %s\n", Mib(r->bytes_needed).c_str(),
                Mib(r->bytes_free).c_str(), Mib(r->largest_package_bytes).c_str());
    std::printf("%s\n", r->ok ? "ok: the conversion can start"
                              : fmt::format("refused: {}", r->refusal.message()).c_str());
  }
  return r->ok ? 0 : 1;
}

int RunConvert(const ConvertArgs& a) {
  auto mode = importer::ParseMode(a.mode);
  if (!mode.ok()) return Fail(std::string(mode.status().message()), 2);
  if (a.output != "table" && a.output != "json") return Fail("--output must be table or json", 2);
  const std::string root = std::filesystem::absolute(a.legacy_root).lexically_normal().string();
  auto specs =
      a.packages_file.empty() ? EveryFolder(root) : ReadPackagesFile(a.packages_file, root);
  if (!specs.ok()) {
    return Fail(std::string(specs.status().message()),
                specs.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  if (!ValidProgress(a.progress)) return Fail("--progress must be auto, always or never", 2);
  if (a.preflight) return RunPreflight(a, *specs, *mode);
  auto lib = contentlib::ContentLibrary::Open(PosixFileSystem(), a.content_root);
  if (!lib.ok()) return Fail(std::string(lib.status().message()));
  std::vector<std::string> failures, kept;
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::optional<importer::ImportProgressLine> progress;
  if (WantProgress(a.progress, terminal)) progress.emplace(ToStderr, terminal, specs->size());
  auto print = [&](const std::string& line) {
    if (progress) {
      progress->Print(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  };
  auto summary = importer::ImportPackages(
      **lib, *specs,
      {.mode = *mode,
       .jobs = a.jobs,
       .batch_bytes = a.batch_mib << 20,
       .fsync_each_file = a.fsync_each_file,
       .buffer_bytes = a.buffer_kib << 10},
      [&](const importer::ImportEvent& e) {
        using K = importer::ImportEvent::Kind;
        if (e.kind == K::kPackageFailed) {
          failures.push_back(fmt::format("{}: {}", e.package_id, e.error.message()));
          print("failed: " + failures.back());
        } else if (e.kind == K::kPackageDone && !e.legacy_kept.empty()) {
          kept.push_back(fmt::format("{}: {}", e.package_id, e.legacy_kept));
          print("legacy folder kept: " + kept.back());
        }
        if (e.kind == K::kPackageDone && a.verbose) {
          print(fmt::format("done: {} ({} files, {}, {} new{})", e.content_id, e.files_total,
                            Mib(e.bytes_total), Mib(e.bytes_stored),
                            e.already_done ? ", already in the library" : ""));
        }
        if (progress) progress->OnEvent(e);
      });
  if (progress) progress->Finish();
  if (!summary.ok()) return Fail(fmt::format("conversion stopped: {}", summary.status().message()));
  const auto& s = *summary;
  if (a.output == "json") {
    nlohmann::json j{{"packages", s.packages_done + s.packages_failed},
                     {"packages_done", s.packages_done},
                     {"packages_already_done", s.packages_already},
                     {"packages_failed", s.packages_failed},
                     {"files", s.files},
                     {"bytes_read", s.bytes_read},
                     {"bytes_stored", s.bytes_stored},
                     {"bytes_deduplicated", s.bytes_deduplicated},
                     {"seconds", s.seconds},
                     {"seconds_walk", s.seconds_walk},
                     {"seconds_wait_workers", s.seconds_wait},
                     {"seconds_sync", s.seconds_sync},
                     {"seconds_publish", s.seconds_publish},
                     {"batches", s.batches},
                     {"mode", std::string(importer::ModeName(*mode))},
                     {"failures", failures},
                     {"legacy_kept", kept}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("packages  %llu converted (%llu already done), %llu failed\n",
                static_cast<unsigned long long>(s.packages_done),
                static_cast<unsigned long long>(s.packages_already),
                static_cast<unsigned long long>(s.packages_failed));
    std::printf("files     %llu\n", static_cast<unsigned long long>(s.files));
    std::printf("read      %s\n", Mib(s.bytes_read).c_str());
    std::printf("stored    %s new, %s deduplicated\n", Mib(s.bytes_stored).c_str(),
                Mib(s.bytes_deduplicated).c_str());
    std::printf("seconds   %.2f\n", s.seconds);
  }
  return s.packages_failed == 0 ? 0 : 1;
}

int RunVerify(const VerifyArgs& a) {
  if (a.output != "table" && a.output != "json") return Fail("--output must be table or json", 2);
  if (!ValidProgress(a.progress)) return Fail("--progress must be auto, always or never", 2);
  auto lib = contentlib::ContentLibrary::OpenExisting(PosixFileSystem(), a.content_root);
  if (!lib.ok()) return Fail(std::string(lib.status().message()));
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  // A line of its own for each phase (check, repair, check again).
  std::optional<importer::VerifyProgressLine> line;
  std::optional<VerifyPhase> phase;
  importer::VerifyAndRepairOptions options;
  options.rehash = !a.no_rehash;
  options.repair = !a.repair_from.empty();
  options.legacy_root = a.repair_from;
  if (WantProgress(a.progress, terminal)) {
    options.progress = [&](const contentlib::VerifyProgress& p) {
      if (p.phase != phase) {
        if (line) line->Finish();
        line.emplace(ToStderr, terminal);
        phase = p.phase;
      }
      line->OnProgress(p);
    };
  }
  auto verified = importer::VerifyAndRepair(**lib, options);
  if (line) line->Finish();
  if (!verified.ok()) return Fail(std::string(verified.status().message()));
  nlohmann::json repair_json;
  if (verified->repair) {
    const importer::RepairReport& repair = *verified->repair;
    if (repair.folders_unreadable > 0) {
      std::fprintf(stderr,
                   "%llu folder(s) below '%s' could not be read (a copy may be there): %s\n",
                   static_cast<unsigned long long>(repair.folders_unreadable),
                   a.repair_from.c_str(), absl::StrJoin(repair.unreadable, ", ").c_str());
    }
    for (size_t i = 0; i < repair.repaired.size(); ++i) {
      std::fprintf(stderr, "repaired: %s from '%s'\n", repair.repaired[i].c_str(),
                   repair.sources[i].c_str());
    }
    for (const auto& h : repair.unrepaired) {
      std::fprintf(stderr,
                   "not repaired: %s (no file below '%s' has its bytes; send the packages "
                   "using it to the DP again)\n",
                   h.c_str(), a.repair_from.c_str());
    }
    repair_json = {{"damaged", repair.damaged},
                   {"repaired", repair.repaired},
                   {"unrepaired", repair.unrepaired},
                   {"legacy_files_seen", repair.files_seen},
                   {"legacy_files_hashed", repair.files_hashed},
                   {"legacy_folders_unreadable", repair.folders_unreadable},
                   {"unreadable_folders", repair.unreadable}};
  }
  const contentlib::VerifyResult& result = verified->result;
  if (a.output == "json") {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : result.problems) {
      problems.push_back({{"kind", std::string(contentlib::KindName(p.kind))},
                          {"path", p.path},
                          {"detail", p.detail}});
    }
    std::printf("%s\n", nlohmann::json{{"ok", result.ok()},
                                       {"packages", result.packages},
                                       {"contents", result.contents},
                                       {"objects", result.objects},
                                       {"bytes_hashed", result.bytes_hashed},
                                       {"problems", problems},
                                       {"repair", repair_json}}
                            .dump()
                            .c_str());
  } else {
    for (const auto& p : result.problems) {
      std::printf("%-22s %s: %s\n", std::string(contentlib::KindName(p.kind)).c_str(),
                  p.path.c_str(), p.detail.c_str());
    }
    std::printf("%s: %llu packages, %llu contents, %llu objects, %s re-hashed, %zu problems\n",
                result.ok() ? "ok" : "PROBLEMS", static_cast<unsigned long long>(result.packages),
                static_cast<unsigned long long>(result.contents),
                static_cast<unsigned long long>(result.objects), Mib(result.bytes_hashed).c_str(),
                result.problems.size());
  }
  return result.ok() ? 0 : 1;
}

}  // namespace

void AddLocalCommands(CLI::App& app, int* exit_code) {
  auto c = std::make_shared<ConvertArgs>();
  CLI::App* convert = app.add_subcommand(
      "convert", "convert legacy package folders into the content library, locally");
  convert->add_option("--legacy-root", c->legacy_root, "folder holding the package folders")
      ->required();
  convert->add_option("--content-root", c->content_root, "folder to hold SCCMContentLib")
      ->required();
  convert->add_option("--mode", c->mode, "auto, copy or link")->capture_default_str();
  convert->add_option("--jobs", c->jobs, "worker threads (default: the machine's cores)");
  convert->add_option(
      "--packages", c->packages_file,
      "file of lines '<PkgID> <SourceVersion> [keep]' (default: every subfolder, version 1)");
  convert->add_option("-o,--output", c->output, "table or json")->capture_default_str();
  convert->add_flag("-v,--verbose", c->verbose, "a line per package");
  convert->add_option("--progress", c->progress, kProgressHelp)->capture_default_str();
  convert->add_flag("--fsync-each-file", c->fsync_each_file,
                    "fsync every stored file and INI as written (slower; for measuring)");
  convert->add_flag("--preflight", c->preflight,
                    "only check: space needed and free, filesystem, NO_SMS_ON_DRIVE.SMS, folders");
  convert
      ->add_option("--batch-mib", c->batch_mib, "sync and commit after about this much data (MiB)")
      ->capture_default_str();
  convert
      ->add_option("--buffer-kib", c->buffer_kib,
                   "each worker's read buffer (KiB): files up to it are read whole, larger "
                   "ones streamed through it")
      ->capture_default_str()
      ->check(CLI::Range(4, 1 << 20));
  convert->callback([=] { *exit_code = RunConvert(*c); });

  auto v = std::make_shared<VerifyArgs>();
  CLI::App* verify = app.add_subcommand("verify", "re-hash the library and check every reference");
  verify->add_option("--content-root", v->content_root, "folder holding SCCMContentLib")
      ->required();
  verify->add_flag("--no-rehash", v->no_rehash, "check references only, not file bytes");
  verify->add_option("--repair-from", v->repair_from,
                     "replace damaged or missing objects with legacy files of the same bytes "
                     "found below this folder (read only), then verify again");
  verify->add_option("-o,--output", v->output, "table or json")->capture_default_str();
  verify->add_option("--progress", v->progress, kProgressHelp)->capture_default_str();
  verify->callback([=] { *exit_code = RunVerify(*v); });
}

}  // namespace dpr::agent
