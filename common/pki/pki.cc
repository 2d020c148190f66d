#include "common/pki/pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "common/fs/durable_file.h"
#include "common/hash/sha256.h"
#include "common/nal/nal_path.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using EkuPtr =
    std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;

// The OpenSSL error queue as text, emptied.
std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

absl::Status SslError(std::string_view what) {
  return absl::InternalError(fmt::format("{}: {}", what, OpenSslErrors()));
}

absl::StatusOr<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslError("generate EC P-256 key");
  return key;
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslError("encode private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return SslError("encode certificate");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<X509Ptr> CertFromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return cert;
}

absl::StatusOr<PkeyPtr> KeyFromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM private key (or it is encrypted)");
  }
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return SslError(fmt::format("add extension {}={}", OBJ_nid2sn(nid), value));
  }
  return absl::OkStatus();
}

absl::Status AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return SslError(fmt::format("set subject {}={}", field, value));
  }
  return absl::OkStatus();
}

// A certificate with a random serial, validity, subject and public key set;
// not yet signed.
absl::StatusOr<X509Ptr> NewCert(EVP_PKEY* key, int64_t not_before_offset, int64_t valid_days,
                                const std::string& ou, const std::string& cn) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return SslError("new certificate");
  BnPtr serial(BN_new());
  // 127 random bits: positive, unique in practice (RFC 5280 allows 20 octets).
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return SslError("make serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before_offset)) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>(not_before_offset + valid_days * 86400)) == nullptr) {
    return SslError("set validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddName(name, "O", "dpreassign"));
  RETURN_IF_ERROR(AddName(name, "OU", ou));
  RETURN_IF_ERROR(AddName(name, "CN", cn));
  if (X509_set_pubkey(cert.get(), key) != 1) return SslError("set public key");
  return cert;
}

bool IsIpLiteral(const std::string& ip) {
  ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
  if (octets == nullptr) {
    ERR_clear_error();
    return false;
  }
  ASN1_OCTET_STRING_free(octets);
  return true;
}

std::string Asn1String(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string SubjectField(X509* cert, int nid) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return "";
  return Asn1String(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
}

int64_t AsnTimeToUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

bool IsHostName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.front() != '-';
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAgent:
      return "agent";
    case Role::kController:
      return "controller";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(std::string_view name) {
  if (name == "agent") return Role::kAgent;
  if (name == "controller") return Role::kController;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      fmt::format("unknown role '{}' (use agent, controller or admin)", name));
}

absl::StatusOr<KeyAndCert> CreateCa(const CaOptions& options) {
  if (options.common_name.empty()) return absl::InvalidArgumentError("CA name is empty");
  if (options.valid_days <= 0) return absl::InvalidArgumentError("CA validity must be positive");
  ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  ASSIGN_OR_RETURN(X509Ptr cert,
                   NewCert(key.get(), -300, options.valid_days, "ca", options.common_name));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return SslError("set issuer");
  }
  RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return SslError("sign CA certificate");
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

namespace {

// The certificate for `key` (its public half) with the role, names and
// usages of `options`, signed by `ca`.
absl::StatusOr<std::string> SignFor(const KeyAndCert& ca, const CertOptions& options,
                                    EVP_PKEY* key) {
  if (options.name.empty()) return absl::InvalidArgumentError("certificate name is empty");
  if (options.valid_days <= 0) {
    return absl::InvalidArgumentError("certificate validity must be positive");
  }
  for (char c : options.name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '/' || c == '\\' || c == '"') {
      return absl::InvalidArgumentError(
          fmt::format("certificate name '{}' has a character that is not allowed", options.name));
    }
  }
  ASSIGN_OR_RETURN(X509Ptr ca_cert, CertFromPem(ca.cert_pem));
  ASSIGN_OR_RETURN(PkeyPtr ca_key, KeyFromPem(ca.key_pem));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError("CA key does not match the CA certificate");
  }
  std::vector<std::string> sans;
  if (IsHostName(options.name)) sans.push_back("DNS:" + options.name);
  for (const auto& dns : options.extra_dns) {
    if (!IsHostName(dns))
      return absl::InvalidArgumentError(fmt::format("'{}' is not a host name", dns));
    sans.push_back("DNS:" + dns);
  }
  for (const auto& ip : options.ip_addresses) {
    if (!IsIpLiteral(ip))
      return absl::InvalidArgumentError(fmt::format("'{}' is not an IP address", ip));
    sans.push_back("IP:" + ip);
  }
  ASSIGN_OR_RETURN(X509Ptr cert, NewCert(key, options.not_before_offset_seconds, options.valid_days,
                                         std::string(RoleName(options.role)), options.name));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    return SslError("set issuer");
  }
  X509* issuer = ca_cert.get();
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature"));
  // Admins only ever call; agents and controllers both serve and call.
  RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer, NID_ext_key_usage,
                   options.role == Role::kAdmin ? "clientAuth" : "serverAuth,clientAuth"));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  if (!sans.empty()) {
    std::string joined;
    for (const auto& s : sans) joined += (joined.empty() ? "" : ",") + s;
    RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_subject_alt_name, joined));
  }
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) return SslError("sign certificate");
  return CertToPem(cert.get());
}

}  // namespace

absl::StatusOr<KeyAndCert> IssueCertificate(const KeyAndCert& ca, const CertOptions& options) {
  ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.cert_pem, SignFor(ca, options, key.get()));
  ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  return out;
}

absl::StatusOr<std::string> SignCertificateRequest(const KeyAndCert& ca, const CertOptions& options,
                                                   std::string_view csr_pem) {
  BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  if (!bio) return SslError("BIO_new_mem_buf");
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr), X509_REQ_free);
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate request (CSR)");
  }
  PkeyPtr key(X509_REQ_get_pubkey(req.get()));
  if (!key) return SslError("the request's public key");
  // Proof that the requester holds the private key.
  if (X509_REQ_verify(req.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the request's signature does not verify");
  }
  const int bits = EVP_PKEY_get_bits(key.get());
  const int type = EVP_PKEY_get_base_id(key.get());
  if (!((type == EVP_PKEY_EC && bits >= 256) || (type == EVP_PKEY_RSA && bits >= 2048) ||
        type == EVP_PKEY_ED25519)) {
    return absl::InvalidArgumentError(fmt::format(
        "the request's key is too weak ({} bits; use EC P-256 or RSA of 2048 bits or more)", bits));
  }
  // Only the public key is taken from the request: role, names and usages
  // are the CA holder's choice, never the requester's.
  return SignFor(ca, options, key.get());
}

absl::StatusOr<CertInfo> ParseCertificatePem(std::string_view pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(pem));
  CertInfo info;
  info.common_name = SubjectField(cert.get(), NID_commonName);
  info.organizational_unit = SubjectField(cert.get(), NID_organizationalUnitName);
  if (SubjectField(cert.get(), NID_organizationName) == "dpreassign") {
    auto role = ParseRole(info.organizational_unit);
    if (role.ok()) info.role = *role;
  }
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      if (gn->type == GEN_DNS) {
        info.dns_names.push_back(Asn1String(gn->d.dNSName));
      } else if (gn->type == GEN_IPADD) {
        const int len = ASN1_STRING_length(gn->d.iPAddress);
        char text[INET6_ADDRSTRLEN] = {};
        if ((len == 4 || len == 16) &&
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), text,
                      sizeof text) != nullptr) {
          info.ip_addresses.push_back(text);
        }
      }
    }
  }
  info.is_ca = X509_check_ca(cert.get()) != 0;
  uint32_t xku = X509_get_extended_key_usage(cert.get());
  info.client_auth = (xku & XKU_SSL_CLIENT) != 0;
  info.server_auth = (xku & XKU_SSL_SERVER) != 0;
  info.not_before_unix = AsnTimeToUnix(X509_get0_notBefore(cert.get()));
  info.not_after_unix = AsnTimeToUnix(X509_get0_notAfter(cert.get()));
  BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    info.serial_hex = hex;
    OPENSSL_free(hex);
  }
  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert.get(), &der);
  if (der_len > 0) {
    Sha256 h;
    h.Update(der, static_cast<size_t>(der_len));
    info.fingerprint_sha256 = ToHex(h.Finish());
    OPENSSL_free(der);
  }
  ERR_clear_error();
  return info;
}

bool CertNamesHost(const CertInfo& info, std::string_view host) {
  for (const auto& dns : info.dns_names) {
    if (SameServer(dns, host)) return true;
  }
  for (const auto& ip : info.ip_addresses) {
    if (ip == host) return true;
  }
  return false;
}

absl::Status CheckKeyMatchesCert(std::string_view key_pem, std::string_view cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem));
  ASSIGN_OR_RETURN(PkeyPtr key, KeyFromPem(key_pem));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

absl::Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem));
  ASSIGN_OR_RETURN(X509Ptr ca, CertFromPem(ca_pem));
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return SslError("set up certificate verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(fmt::format(
        "certificate does not verify against the CA: {}", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

absl::Status CreateCaFiles(const std::string& dir, const CaOptions& options) {
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  ASSIGN_OR_RETURN(KeyAndCert ca, CreateCa(options));
  // Key first: if the certificate write fails, a retry refuses to overwrite
  // the key instead of silently pairing a new certificate with nothing.
  RETURN_IF_ERROR(
      WriteFileDurably(dir + "/ca.key", ca.key_pem, {.mode = 0600, .no_replace = true}));
  return WriteFileDurably(dir + "/ca.crt", ca.cert_pem, {.mode = 0644, .no_replace = true});
}

absl::StatusOr<IssuedFiles> CreateCertFiles(const std::string& dir, const CertOptions& options) {
  KeyAndCert ca;
  ASSIGN_OR_RETURN(ca.cert_pem, ReadFileToString(dir + "/ca.crt", 1 << 20));
  ASSIGN_OR_RETURN(ca.key_pem, ReadFileToString(dir + "/ca.key", 1 << 20));
  ASSIGN_OR_RETURN(KeyAndCert issued, IssueCertificate(ca, options));
  IssuedFiles files{dir + "/" + options.name + ".crt", dir + "/" + options.name + ".key"};
  RETURN_IF_ERROR(
      WriteFileDurably(files.key_path, issued.key_pem, {.mode = 0600, .no_replace = true}));
  RETURN_IF_ERROR(
      WriteFileDurably(files.cert_path, issued.cert_pem, {.mode = 0644, .no_replace = true}));
  return files;
}

}  // namespace dpr
