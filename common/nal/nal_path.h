// NAL paths: the strings that name a site system in every site-database
// table. Two forms (SITE_DATABASE.md), each shown up to its final backslash:
//   site system: ["Display=\\DP01.CONTOSO.COM\"]MSWNET:["SMS_SITE=S07"]\\DP01.CONTOSO.COM (+ \)
//   share:       MSWNET:["SMS_SITE=S07"]\\DP01.CONTOSO.COM\SMSPKGD$\ABC00001 (+ \)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dpr {

struct NalPath {
  std::string display;    // the Display= value, `\\DP01.CONTOSO.COM\`; empty if absent
  std::string protocol;   // "MSWNET"
  std::string site_code;  // "S07"
  std::string server;     // "DP01.CONTOSO.COM"
  std::string share;      // below the server, `SMSPKGD$\ABC00001\`; empty for a site system

  bool operator==(const NalPath&) const = default;
};

// Strict parse; InvalidArgument names the offending part and its offset.
absl::StatusOr<NalPath> ParseNalPath(std::string_view text);
std::string FormatNalPath(const NalPath& nal);

// The site-system form for `server` in `site_code`.
NalPath SiteSystemNal(std::string_view server, std::string_view site_code);
// The share form: `share` is backslash-separated; a trailing backslash is added.
NalPath ShareNal(std::string_view server, std::string_view site_code, std::string_view share);

// A path below a DP's share root (`SMSPKGD$\S0700001`), as inventories name
// package locations and agents resolve them: backslash- or slash-separated,
// one trailing separator allowed; refused (InvalidArgument, the message reads
// after the path) when empty, absolute, on a drive, with an empty, `.` or `..`
// part, or with a character Windows does not allow in a folder name.
absl::StatusOr<std::vector<std::string>> SplitShareRelativePath(std::string_view path);

// Site codes are three letters or digits ("S07", "ABC").
bool IsValidSiteCode(std::string_view code);
// Server names are compared as Windows does: ignoring ASCII case.
bool SameServer(std::string_view a, std::string_view b);

}  // namespace dpr
