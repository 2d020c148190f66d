#include "common/grpc/validated_tls_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/fs/durable_file.h"
#include "common/log/logging.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr {
namespace {

bool Same(const TlsPem& a, const TlsPem& b) {
  return a.cert == b.cert && a.key == b.key && a.ca == b.ca;
}

absl::Status SetMtime(const std::string& path, int64_t seconds) {
  const struct timespec times[2] = {{static_cast<time_t>(seconds), 0},
                                    {static_cast<time_t>(seconds), 0}};
  if (utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
    return absl::InternalError(fmt::format("utimensat '{}': {}", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> ValidatedTlsFiles::Start(
    const TlsFiles& source, const std::string& active_dir) {
  ASSIGN_OR_RETURN(TlsPem pem, ReadTlsFiles(source));
  ASSIGN_OR_RETURN(CertInfo identity, CheckTlsPem(pem, source));
  RETURN_IF_ERROR(MakeDirs(active_dir, 0700));
  // What an earlier run left (other versions, the older flat layout) goes:
  // nobody reads it before we hand out paths, and stale key copies should
  // not linger.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(active_dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) {
      return absl::InternalError(
          fmt::format("cannot clear '{}': {}", entry.path().string(), ec.message()));
    }
  }
  if (ec) return absl::InternalError(fmt::format("cannot list '{}': {}", active_dir, ec.message()));
  const std::string current = active_dir + "/current";
  TlsFiles active{current + "/cert.pem", current + "/key.pem", current + "/ca.pem",
                  source.reload_seconds};
  std::unique_ptr<ValidatedTlsFiles> v(
      new ValidatedTlsFiles(source, active_dir, std::move(active), identity));
  RETURN_IF_ERROR(v->Install(pem));
  v->last_seen_ = std::move(pem);
  if (source.reload_seconds > 0) v->thread_ = std::thread([p = v.get()] { p->Loop(); });
  return v;
}

// The bytes checked are the bytes installed: a file replaced again between
// the check and the copy cannot slip through.
absl::Status ValidatedTlsFiles::Install(const TlsPem& pem) {
  const unsigned next = version_ + 1;
  const std::string name = fmt::format("v{}", next);
  const std::string dir = active_dir_ + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // left by an attempt that failed
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  RETURN_IF_ERROR(WriteFileDurably(dir + "/ca.pem", pem.ca, {.mode = 0644}));
  RETURN_IF_ERROR(WriteFileDurably(dir + "/key.pem", pem.key, {.mode = 0600}));
  RETURN_IF_ERROR(WriteFileDurably(dir + "/cert.pem", pem.cert, {.mode = 0644}));
  const int64_t mtime = std::max<int64_t>(time(nullptr), last_mtime_ + 1);
  for (const char* file : {"/ca.pem", "/key.pem", "/cert.pem"}) {
    RETURN_IF_ERROR(SetMtime(dir + file, mtime));
  }
  const std::string link = active_dir_ + "/current";
  const std::string tmp = TempPathFor(link);
  unlink(tmp.c_str());
  if (symlink(name.c_str(), tmp.c_str()) != 0) {
    return absl::InternalError(fmt::format("symlink '{}': {}", tmp, std::strerror(errno)));
  }
  if (rename(tmp.c_str(), link.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(
        fmt::format("rename '{}' to '{}': {}", tmp, link, std::strerror(err)));
  }
  RETURN_IF_ERROR(FsyncDir(active_dir_));
  version_ = next;
  last_mtime_ = mtime;
  // The version before stays for a reader that resolved `current` just
  // before the swap; the one before that is a reload period old at least.
  if (next > 2) std::filesystem::remove_all(fmt::format("{}/v{}", active_dir_, next - 2), ec);
  return absl::OkStatus();
}

ValidatedTlsFiles::~ValidatedTlsFiles() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ValidatedTlsFiles::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(source_.reload_seconds),
                       [this] { return stopping_; })) {
    lock.unlock();
    Reload();
    lock.lock();
  }
}

void ValidatedTlsFiles::Reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  CheckOnce();
}

void ValidatedTlsFiles::CheckOnce() {
  auto seen = ReadTlsFiles(source_);
  if (!seen.ok()) {
    // Mid-rename, or gone: look again next time, keep what is in use, and
    // say so once rather than every period.
    const std::string why(seen.status().message());
    if (why != last_read_error_) {
      SPDLOG_WARN("TLS files: {}; keeping the certificate in use", why);
      last_read_error_ = why;
    }
    return;
  }
  last_read_error_.clear();
  if (Same(*seen, last_seen_)) return;
  last_seen_ = *seen;
  auto info = CheckTlsPem(*seen, source_);
  if (info.ok() && (info->common_name != identity_.common_name || info->role != identity_.role)) {
    info = absl::FailedPreconditionError(
        fmt::format("certificate '{}' names '{}' ({}), not '{}' ({}) as at start-up", source_.cert,
                    info->common_name, info->organizational_unit, identity_.common_name,
                    identity_.organizational_unit));
  }
  if (!info.ok()) {
    SPDLOG_WARN("new TLS files refused, keeping the certificate in use (serial {}): {}",
                serial_in_use_, info.status().message());
    return;
  }
  if (auto st = Install(*seen); !st.ok()) {
    SPDLOG_ERROR("new TLS files could not be put in use: {}", st.message());
    return;
  }
  serial_in_use_ = info->serial_hex;
  SPDLOG_INFO("new TLS certificate for '{}' (serial {}, valid until {}) taken into use",
              info->common_name, info->serial_hex, info->not_after_unix);
}

absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> StartDaemonTls(const DaemonConfig& config,
                                                                  Role role) {
  // gRPC is given checked copies under the data folder, so a broken
  // rotation of the admin's files cannot break the daemon.
  ASSIGN_OR_RETURN(auto files,
                   ValidatedTlsFiles::Start({config.cert, config.key, config.ca,
                                             static_cast<unsigned>(config.tls_reload_seconds)},
                                            config.data_dir + "/tls"));
  if (files->identity().role != role) {
    const std::string_view name = RoleName(role);
    return absl::FailedPreconditionError(fmt::format(
        "the certificate given with --cert is not {} {} certificate (make one with 'dpctl tls "
        "cert create --role {} --name <{}>')",
        role == Role::kAgent ? "an" : "a", name, name,
        role == Role::kAgent ? "DP server" : "site server"));
  }
  return files;
}

}  // namespace dpr
