// gRPC's file watcher takes whatever certificate files it finds; a rotation
// that replaced the certificate but not its key broke every new handshake
// (tls_integration_test ABrokenNewPairKeepsTheOldOneWithAWarning). So gRPC
// watches copies: this class checks the admin's files whenever they change
// and copies them over only when the pair is whole, chains to the CA and
// names the same identity and role; otherwise it logs a warning and the
// copies in use stay.
//
// The copies are swapped as one: each accepted pair goes into a new folder
// `<active_dir>/v<N>` and the symlink `<active_dir>/current` is renamed over
// to point at it. gRPC reads the key and the certificate one after the other
// and only compares their mtimes (whole seconds) around the reads, so two
// files replaced one by one could be read as new key + old certificate
// (CI saw 4 of 13 handshakes fail that way). Each version's files also get
// an mtime past the previous version's, so a read that straddles the swap
// is always seen by gRPC as changed and read again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/config/daemon_config.h"
#include "common/grpc/tls_credentials.h"

namespace dpr {

class ValidatedTlsFiles {
 public:
  // Checks `source` now (an error refuses to start), copies it into
  // `active_dir` (made 0700) and watches it every source.reload_seconds.
  static absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> Start(const TlsFiles& source,
                                                                  const std::string& active_dir);
  ~ValidatedTlsFiles();
  ValidatedTlsFiles(const ValidatedTlsFiles&) = delete;
  ValidatedTlsFiles& operator=(const ValidatedTlsFiles&) = delete;

  // Looks at the source files now (the watcher does so every period; a
  // daemon also on SIGHUP): a changed, valid pair is put in use.
  void Reload();

  // The files to hand to gRPC (same reload period).
  const TlsFiles& active() const { return active_; }
  const CertInfo& identity() const { return identity_; }

 private:
  ValidatedTlsFiles(TlsFiles source, std::string active_dir, TlsFiles active, CertInfo identity)
      : source_(std::move(source)),
        active_dir_(std::move(active_dir)),
        active_(std::move(active)),
        identity_(std::move(identity)),
        serial_in_use_(identity_.serial_hex) {}
  // Reads the source files; when they differ from what was last looked at,
  // checks them and installs them or warns. Callers hold reload_mu_.
  void CheckOnce();
  // Writes `pem` as the next version and points `current` at it.
  absl::Status Install(const TlsPem& pem);
  void Loop();

  const TlsFiles source_;
  const std::string active_dir_;
  const TlsFiles active_;  // under <active_dir>/current
  const CertInfo identity_;
  TlsPem last_seen_;  // the three files' bytes as last looked at
  std::string serial_in_use_;
  std::string last_read_error_;  // warned about once
  unsigned version_ = 0;         // v<N> that `current` points at
  int64_t last_mtime_ = 0;       // of version_'s files
  std::mutex reload_mu_;         // one CheckOnce at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// A daemon's start-up: checked copies of `config`'s TLS files in
// "<data_dir>/tls", refused (FailedPrecondition, with the dpctl line that
// makes the right one) unless the certificate is of `role`.
absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> StartDaemonTls(const DaemonConfig& config,
                                                                  Role role);

}  // namespace dpr
