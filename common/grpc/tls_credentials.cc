#include "common/grpc/tls_credentials.h"

#include "common/fs/durable_file.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace dpr {

absl::StatusOr<TlsPem> ReadTlsFiles(const TlsFiles& files) {
  if (files.cert.empty() || files.key.empty() || files.ca.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs a certificate, a key and a CA file (--cert, --key, --ca)");
  }
  TlsPem pem;
  ASSIGN_OR_RETURN(pem.cert, ReadFileToString(files.cert, 1 << 20));
  ASSIGN_OR_RETURN(pem.key, ReadFileToString(files.key, 1 << 20));
  ASSIGN_OR_RETURN(pem.ca, ReadFileToString(files.ca, 1 << 20));
  return pem;
}

absl::StatusOr<CertInfo> CheckTlsPem(const TlsPem& pem, const TlsFiles& files) {
  auto info = ParseCertificatePem(pem.cert);
  if (!info.ok()) return Annotate(info.status(), fmt::format("certificate '{}'", files.cert));
  RETURN_IF_ERROR(Annotate(CheckKeyMatchesCert(pem.key, pem.cert),
                           fmt::format("key '{}' and certificate '{}'", files.key, files.cert)));
  RETURN_IF_ERROR(Annotate(VerifyCertificate(pem.cert, pem.ca),
                           fmt::format("certificate '{}' with CA '{}'", files.cert, files.ca)));
  return info;
}

absl::StatusOr<CertInfo> CheckTlsFiles(const TlsFiles& files) {
  ASSIGN_OR_RETURN(TlsPem pem, ReadTlsFiles(files));
  return CheckTlsPem(pem, files);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  RETURN_IF_ERROR(CheckTlsFiles(files).status());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, files.reload_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (!creds) return absl::InternalError("gRPC refused the TLS server credentials");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  RETURN_IF_ERROR(CheckTlsFiles(files).status());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, files.reload_seconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  auto creds = grpc::experimental::TlsCredentials(options);
  if (!creds) return absl::InternalError("gRPC refused the TLS channel credentials");
  return creds;
}

}  // namespace dpr
