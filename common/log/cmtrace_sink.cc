#include "common/log/cmtrace_sink.h"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr {
namespace {

// The closing marker cannot appear inside a message, or readers would cut it
// short there.
std::string EscapeText(std::string_view text) {
  std::string out(text);
  constexpr std::string_view kEnd = "]LOG]!>";
  for (size_t pos = 0; (pos = out.find(kEnd, pos)) != std::string::npos;) {
    out.replace(pos, kEnd.size(), "]LOG] !>");
    pos += kEnd.size() + 1;
  }
  return out;
}

std::string EscapeAttr(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '"') {
      out += "&quot;";
    } else if (c == '\r' || c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

int CmtraceType(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::warn:
      return 2;
    case spdlog::level::err:
    case spdlog::level::critical:
      return 3;
    default:
      return 1;
  }
}

std::string_view BaseName(const char* path) {
  std::string_view s(path);
  auto pos = s.find_last_of('/');
  return pos == std::string_view::npos ? s : s.substr(pos + 1);
}

}  // namespace

std::string FormatCmtraceLine(const spdlog::details::log_msg& msg,
                              std::optional<int> utc_offset_minutes) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const auto secs = duration_cast<seconds>(since_epoch);
  const int millis = static_cast<int>(duration_cast<milliseconds>(since_epoch - secs).count());
  std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  int offset_minutes;
  if (utc_offset_minutes.has_value()) {
    offset_minutes = *utc_offset_minutes;
    std::time_t shifted = t + static_cast<std::time_t>(offset_minutes) * 60;
    gmtime_r(&shifted, &tm);
  } else {
    localtime_r(&t, &tm);
    offset_minutes = static_cast<int>(tm.tm_gmtoff / 60);
  }
  const int bias = -offset_minutes;
  std::string file;
  if (!msg.source.empty())
    file = fmt::format("{}:{}", BaseName(msg.source.filename), msg.source.line);
  return fmt::format(
      "<![LOG[{}]LOG]!><time=\"{:02}:{:02}:{:02}.{:03}{}{}\" date=\"{:02}-{:02}-{:04}\" "
      "component=\"{}\" context=\"\" type=\"{}\" thread=\"{}\" file=\"{}\">\r\n",
      EscapeText(std::string_view(msg.payload.data(), msg.payload.size())), tm.tm_hour, tm.tm_min,
      tm.tm_sec, millis, bias >= 0 ? "+" : "", bias, tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
      EscapeAttr(std::string_view(msg.logger_name.data(), msg.logger_name.size())),
      CmtraceType(msg.level), msg.thread_id, EscapeAttr(file));
}

absl::StatusOr<std::shared_ptr<CmtraceFileSink>> CmtraceFileSink::Open(const std::string& path,
                                                                       uint64_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (f == nullptr) return ErrnoError(errno, fmt::format("open log file '{}'", path));
  struct stat st {};
  uint64_t size = ::fstat(fileno(f), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return std::shared_ptr<CmtraceFileSink>(new CmtraceFileSink(path, f, size, max_bytes));
}

CmtraceFileSink::CmtraceFileSink(std::string path, std::FILE* file, uint64_t size,
                                 uint64_t max_bytes)
    : path_(std::move(path)), file_(file), size_(size), max_bytes_(max_bytes) {}

CmtraceFileSink::~CmtraceFileSink() {
  if (file_ != nullptr) std::fclose(file_);
}

void CmtraceFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  if (file_ == nullptr) return;
  const std::string line = FormatCmtraceLine(msg);
  if (max_bytes_ > 0 && size_ + line.size() > max_bytes_ && size_ > 0) RollOver();
  if (file_ == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), file_);
  // Admins tail these logs while a job runs; a line must be visible at once.
  std::fflush(file_);
  size_ += line.size();
}

void CmtraceFileSink::flush_() {
  if (file_ != nullptr) std::fflush(file_);
}

void CmtraceFileSink::RollOver() {
  std::fclose(file_);
  std::string old = path_;
  if (old.size() >= 4 && old.compare(old.size() - 4, 4, ".log") == 0) {
    old.replace(old.size() - 4, 4, ".lo_");
  } else {
    old += ".lo_";
  }
  std::rename(path_.c_str(), old.c_str());
  file_ = std::fopen(path_.c_str(), "ab");
  size_ = 0;
}

}  // namespace dpr
