// The site's own PKI: an EC P-256 CA and the certificates it issues to
// agents, controllers and admins. The role is encoded in the subject as
// OU=<role> (O=dpreassign) and reinforced by the extended key usage (an
// admin certificate is client-only), so a daemon can tell who calls it from
// the verified certificate alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dpr {

enum class Role { kAgent, kController, kAdmin };

std::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(std::string_view name);

struct KeyAndCert {
  std::string key_pem;  // PKCS#8, unencrypted
  std::string cert_pem;
};

struct CaOptions {
  std::string common_name = "dpreassign site CA";
  int64_t valid_days = 3650;
};

struct CertOptions {
  Role role = Role::kAgent;
  std::string name;                       // CN and, when it is a host name, a DNS SAN
  std::vector<std::string> ip_addresses;  // IP SANs (IPv4 or IPv6 literals)
  std::vector<std::string> extra_dns;     // further DNS SANs
  int64_t valid_days = 365;
  // Start of validity relative to now (seconds); a little in the past so a
  // peer whose clock lags still accepts a fresh certificate. Tests move it
  // to make expired or not-yet-valid certificates.
  int64_t not_before_offset_seconds = -300;
};

absl::StatusOr<KeyAndCert> CreateCa(const CaOptions& options);
// Issues a certificate signed by `ca`. InvalidArgument for a bad name or IP.
absl::StatusOr<KeyAndCert> IssueCertificate(const KeyAndCert& ca, const CertOptions& options);
// A certificate for the key of a PEM certificate request (CSR) made where
// the key lives (a DP), so the key never leaves it. The request must verify
// with its own key (proof of possession) and the key be EC P-256 or better,
// RSA 2048 or more, or Ed25519. Only the public key is used: role, names and
// usages come from `options`, never from the request.
absl::StatusOr<std::string> SignCertificateRequest(const KeyAndCert& ca, const CertOptions& options,
                                                   std::string_view csr_pem);

// What a verified certificate says about its holder.
struct CertInfo {
  std::string common_name;
  std::string organizational_unit;
  std::optional<Role> role;  // from OU; nullopt if not one of ours
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool is_ca = false;
  bool client_auth = false;  // extended key usage
  bool server_auth = false;
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
  std::string serial_hex;
  std::string fingerprint_sha256;  // upper-case hex of the DER
};

absl::StatusOr<CertInfo> ParseCertificatePem(std::string_view pem);

// A DNS host name (labels of letters, digits and '-', each 1-63 long): what
// a certificate can name as a DNS subject alternative name.
bool IsHostName(std::string_view name);

// True if the certificate names `host` (DNS SAN, ignoring case, or IP SAN).
bool CertNamesHost(const CertInfo& info, std::string_view host);

// Checks that `key_pem` is the private key of `cert_pem`.
absl::Status CheckKeyMatchesCert(std::string_view key_pem, std::string_view cert_pem);
// Checks that `cert_pem` is signed by `ca_pem` and valid now.
absl::Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem);

// Files: DIR/ca.crt + DIR/ca.key; DIR/NAME.crt + DIR/NAME.key. Keys are
// written mode 0600 and never overwritten (AlreadyExists).
absl::Status CreateCaFiles(const std::string& dir, const CaOptions& options);
struct IssuedFiles {
  std::string cert_path;
  std::string key_path;
};
absl::StatusOr<IssuedFiles> CreateCertFiles(const std::string& dir, const CertOptions& options);

}  // namespace dpr
