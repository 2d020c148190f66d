// Builds legacy package trees for tests: files with given bytes, empty
// folders, and a deterministic pseudo-random corpus with shared files.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace dpr::testing {

inline void MakeFile(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Writes each {relative path: bytes} below root; a path ending in '/' is an
// empty folder.
inline void MakeTree(const std::string& root, const std::map<std::string, std::string>& files) {
  std::filesystem::create_directories(root);
  for (const auto& [rel, data] : files) {
    if (!rel.empty() && rel.back() == '/') {
      std::filesystem::create_directories(root + "/" + rel);
    } else {
      MakeFile(root + "/" + rel, data);
    }
  }
}

// A deterministic corpus: `packages` package folders below root, files of
// 0..max_size bytes, about a third of them copies of earlier files, some in
// subfolders with non-ASCII names. Returns {package/rel path: bytes}.
inline std::map<std::string, std::string> MakeCorpus(const std::string& root, int packages,
                                                     int files_per_package, size_t max_size,
                                                     uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::map<std::string, std::string> all;
  std::vector<std::string> earlier;
  const char* dirs[] = {"", "x64/", "Support Files/", "Données/", "x64/de-DE/"};
  for (int p = 0; p < packages; ++p) {
    char pkg[16];
    std::snprintf(pkg, sizeof pkg, "ABC%05X", p + 1);
    for (int f = 0; f < files_per_package; ++f) {
      std::string data;
      if (!earlier.empty() && rng() % 3 == 0) {
        data = earlier[rng() % earlier.size()];
      } else {
        size_t size = rng() % (max_size + 1);
        if (f == 0) size = 0;
        data.resize(size);
        for (auto& c : data) c = static_cast<char>(rng());
        earlier.push_back(data);
      }
      const std::string rel =
          std::string(pkg) + "/" + dirs[rng() % 5] + "file" + std::to_string(f) + ".bin";
      all[rel] = data;
    }
  }
  MakeTree(root, all);
  return all;
}

}  // namespace dpr::testing
