// Mutual-TLS credentials for servers and channels. Certificates come from
// files watched by gRPC's FileWatcherCertificateProvider: replace the files
// (by rename) and new handshakes use the new pair after at most
// reload_seconds; open connections keep theirs. The files are checked with
// OpenSSL first so a wrong path or mismatched key fails at start-up with a
// clear message instead of as anonymous handshake failures later.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/pki/pki.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace dpr {

struct TlsFiles {
  std::string cert;  // PEM certificate (chain)
  std::string key;   // PEM private key
  std::string ca;    // PEM root(s) that peers must chain to
  unsigned reload_seconds = 60;
};

// Reads and checks the files: present, key matches certificate, certificate
// chains to the CA. Returns the certificate's details.
absl::StatusOr<CertInfo> CheckTlsFiles(const TlsFiles& files);

// The PEM bytes of the three files, as read together.
struct TlsPem {
  std::string cert, key, ca;
};
absl::StatusOr<TlsPem> ReadTlsFiles(const TlsFiles& files);
// CheckTlsFiles on bytes already read; `files` names them in errors.
absl::StatusOr<CertInfo> CheckTlsPem(const TlsPem& pem, const TlsFiles& files);

// Server credentials that require and verify a client certificate from the CA.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

// Channel credentials presenting our certificate and verifying the server's
// chain and host name (the dialled host, or GRPC_SSL_TARGET_NAME_OVERRIDE_ARG).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

}  // namespace dpr
