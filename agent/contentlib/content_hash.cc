#include "agent/contentlib/content_hash.h"

#include <algorithm>
#include <map>
#include <memory>

#include "common/status/fmt_absl.h"
#include "fmt/format.h"

namespace dpr::contentlib {

absl::StatusOr<std::u16string> Utf8ToUtf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  size_t i = 0;
  auto bad = [&] {
    return absl::InvalidArgumentError(fmt::format("name is not valid UTF-8 at byte {}", i));
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      len = 4;
    } else {
      return bad();
    }
    if (i + len > s.size()) return bad();
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return bad();
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are refused.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return bad();
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += len;
  }
  return out;
}

char16_t ToLower16(char16_t c) {
  if (c >= u'A' && c <= u'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;     // Latin-1
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;  // Greek
  if (c >= 0x410 && c <= 0x42F) return c + 32;                // Cyrillic А-Я
  if (c >= 0x400 && c <= 0x40F) return c + 80;                // Cyrillic Ѐ-Џ
  return c;
}

char16_t ToUpper16(char16_t c) {
  if (c >= u'a' && c <= u'z') return c - 32;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

namespace {

struct Node {
  std::u16string name;                                // as on disk
  std::u16string upper;                               // sort key
  std::map<std::string, std::unique_ptr<Node>> dirs;  // keyed by UTF-8 name
  struct File {
    std::u16string name;
    std::u16string upper;
    const Sha256Digest* hash;
  };
  std::vector<File> files;
};

std::u16string Upper(const std::u16string& s) {
  std::u16string out(s);
  for (auto& c : out) c = ToUpper16(c);
  return out;
}

absl::StatusOr<Node*> EnsureDir(Node* root, std::string_view path) {
  Node* node = root;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    start = slash == std::string_view::npos ? path.size() : slash + 1;
    if (part.empty()) continue;
    auto& child = node->dirs[std::string(part)];
    if (!child) {
      child = std::make_unique<Node>();
      auto name = Utf8ToUtf16(part);
      if (!name.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("folder '{}': {}", path, name.status().message()));
      }
      child->name = *name;
      child->upper = Upper(child->name);
    }
    node = child.get();
  }
  return node;
}

class Emitter {
 public:
  void Text(const std::u16string& s) {
    buf_.clear();
    for (char16_t c : s) {
      buf_.push_back(static_cast<char>(c & 0xFF));
      buf_.push_back(static_cast<char>(c >> 8));
    }
    sha_.Update(buf_);
  }
  std::string Finish() { return ToHex(sha_.Finish()); }

 private:
  Sha256 sha_;
  std::string buf_;
};

std::u16string Join(const std::u16string& prefix, const std::u16string& name) {
  std::u16string out = prefix.empty() ? name : prefix + u"\\" + name;
  for (auto& c : out) c = ToLower16(c);
  return out;
}

void Walk(const Node& node, const std::u16string& rel, Emitter& out) {
  std::vector<const Node*> dirs;
  for (const auto& [_, d] : node.dirs) dirs.push_back(d.get());
  std::sort(dirs.begin(), dirs.end(),
            [](const Node* a, const Node* b) { return a->upper < b->upper; });
  std::vector<const Node::File*> files;
  for (const auto& f : node.files) files.push_back(&f);
  std::sort(files.begin(), files.end(),
            [](const Node::File* a, const Node::File* b) { return a->upper < b->upper; });
  // Case-preserving paths for descending; the emitted text is lower-cased.
  for (const Node* d : dirs) out.Text(Join(rel, d->name));
  for (const Node::File* f : files) out.Text(Join(rel, f->name));
  for (const Node::File* f : files) {
    const std::string hex = ToHex(*f->hash);
    out.Text(std::u16string(hex.begin(), hex.end()));
  }
  for (const Node* d : dirs) Walk(*d, rel.empty() ? d->name : rel + u"\\" + d->name, out);
}

}  // namespace

absl::StatusOr<std::string> ComputeContentHash(const std::vector<std::string>& dirs,
                                               const std::vector<HashedFile>& files) {
  Node root;
  for (const auto& d : dirs) {
    auto node = EnsureDir(&root, d);
    if (!node.ok()) return node.status();
  }
  for (const auto& f : files) {
    size_t slash = f.rel_path.rfind('/');
    std::string_view parent = slash == std::string::npos
                                  ? std::string_view()
                                  : std::string_view(f.rel_path).substr(0, slash);
    std::string_view base = slash == std::string::npos
                                ? std::string_view(f.rel_path)
                                : std::string_view(f.rel_path).substr(slash + 1);
    auto node = EnsureDir(&root, parent);
    if (!node.ok()) return node.status();
    auto name = Utf8ToUtf16(base);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("file '{}': {}", f.rel_path, name.status().message()));
    }
    (*node)->files.push_back({*name, Upper(*name), &f.hash});
  }
  Emitter out;
  Walk(root, u"", out);
  return out.Finish();
}

}  // namespace dpr::contentlib
